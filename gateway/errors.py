"""Errors that cross module boundaries, each caught at one named place."""

from __future__ import annotations


class ConfigError(Exception):
    """Every problem found in a configuration, reported together.

    Each problem is (source, key path, message); cli.py prints one line per
    problem and exits 2. The config package never prints.
    """

    def __init__(self, problems: list[tuple[str, str, str]], partial: object = None) -> None:
        self.problems = problems
        self.partial = partial  # the Config as far as it could be read, for a second look (gateway check)
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [
            f"{source}: {key}: {message}" if key else f"{source}: {message}" if source else message
            for source, key, message in self.problems
        ]


class HttpError(Exception):
    """A request the core refuses before any app sees it (400, 408, 413, ...)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail
        super().__init__(f"{status} {detail}")


class AppLoadError(Exception):
    """An app named by the config or the command line could not be imported."""


class StartupError(Exception):
    """The server could not start: a listener failed or lifespan startup failed."""


class ResponseAborted(Exception):
    """A handler gives up on a response it has started (its backend broke) and has logged why.

    The core closes the connection (the client sees a truncated response, as
    with nginx) without logging a traceback for it.
    """
