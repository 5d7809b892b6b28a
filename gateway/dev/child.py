"""The serving process of `gateway dev`: `python -m gateway.dev.child CONFIG --listen fd:N --status-fd M`.

One child serves the whole config on the listeners its supervisor bound
(inherited as fd:N), until SIGTERM. It tells the supervisor how its start
went over the status socket (fd M), one byte each: R once it accepts
connections (the Server writes it, as a worker of gateway/supervisor.py
does, through GATEWAY_READY_FD; that also keeps it from writing the pid
file, which belongs to `gateway serve`), F when the config or an app could
not load. A failed child stays up and answers every request with 503 and
the error text (a page a browser shows, rather than a request that hangs),
until the next change replaces it; the R its error page then sends does not
undo the F.

With --standby it starts ahead of need: Python and gateway imported, it waits
for G on the status socket before it reads the config. The supervisor keeps
one ready, so a reload costs the app's import, not the interpreter's start.

SIGINT is ignored: Ctrl-C in a terminal reaches the whole process group, and
the supervisor turns it into one SIGTERM here. When the supervisor dies, the
status socket reads EOF and the child stops itself, so none is orphaned.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO, cast

from adapters._loading import prepend_sys_path
from gateway.config.loader import load
from gateway.config.schema import Config, ServerSettings
from gateway.dev.console import AccessConsole, Paint, console_handler, format_traceback
from gateway.dev.plan import PYTHON_HANDLERS
from gateway.dev.pool_watch import watch_pools
from gateway.errors import AppLoadError, ConfigError
from gateway.http.state import ServerState
from gateway.runner import resolve
from gateway.server import Server
from gateway.supervisor import READY_FD_ENV
from gateway.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger("gateway.dev")
GRACE = 5.0  # seconds in-flight requests get when a change or Ctrl-C stops this process
READY, FAILED = b"R", b"F"  # on the status socket; the Server itself writes READY
GO = b"G"  # from the supervisor to a standby child: load and serve now
SETTLE = 0.05  # seconds between closing the listeners and closing idle connections
_IMPORT_MACHINERY = (__file__, importlib.__file__)


class Status:
    """The status socket to the supervisor, and the log records the error page repeats."""

    def __init__(self, fd: int | None) -> None:
        self.sock = socket.socket(fileno=fd) if fd is not None else None
        self.errors: list[str] = []
        self.stop_requested = False
        self.go = threading.Event()
        if self.sock is not None:
            self.sock.set_inheritable(False)  # php-cgi and CGI scripts must not hold it
            os.environ[READY_FD_ENV] = str(fd)
            threading.Thread(target=self._watch_supervisor, name="supervisor-watch", daemon=True).start()

    def send(self, message: bytes) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(message)

    def _watch_supervisor(self) -> None:
        """G: go. EOF: the supervisor is gone; stop as if it had asked."""
        assert self.sock is not None
        with contextlib.suppress(OSError):
            while data := self.sock.recv(64):
                if GO in data:
                    self.go.set()
        os.kill(os.getpid(), signal.SIGTERM)


class ConsoleFilter(logging.Filter):
    """Drops the server's start/stop lines, and keeps error text for the 503 page.

    The supervisor narrates restarts ("ready", "reload"), so "gateway serving
    on"/"gateway stopping"/"gateway stopped" at each one would be noise.
    """

    def __init__(self, status: Status) -> None:
        super().__init__()
        self.status = status
        self.plain = Paint(False)

    def filter(self, record: logging.LogRecord) -> bool:
        lifecycle = ("gateway serving on", "gateway stop")
        if record.name == "gateway.server" and isinstance(record.msg, str) and record.msg.startswith(lifecycle):
            return False
        if record.levelno >= logging.ERROR:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += "\n" + format_traceback(record.exc_info[1], self.plain)
            self.status.errors.append(text)
        return True


class DevServer(Server):
    """The server with dev's signals: SIGTERM stops it (twice: at once); SIGINT is the supervisor's."""

    def __init__(self, config: Config, app: ASGIApp, status: Status) -> None:
        super().__init__(config, app)
        self.status = status
        self.pool_watchers: list[asyncio.Task[None]] = []

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGTERM, self._on_stop_signal)
        self._install_reopen_signal(loop)

    def _on_stop_signal(self) -> None:
        self.status.stop_requested = True
        super()._on_stop_signal()

    async def on_serving(self) -> None:
        """Isolated routes' pools restart alone when their app's files change (pool_watch.py)."""
        self.pool_watchers = watch_pools(self.app, self.config)

    async def _drain(self, state: ServerState, grace: float) -> None:
        """Let a connection accepted just before the stop deliver its request before idle ones close.

        Without the pause, one accepted in the same loop turn as SIGTERM is
        closed as idle before its first bytes are read: the client of a
        reload would see an empty reply instead of a response.
        """
        await asyncio.sleep(SETTLE)
        await super()._drain(state, grace)


class LoadFailed(Exception):
    """The config or an app could not load; what went wrong is already on the console."""


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    status = Status(args.status_fd)
    _configure_console(status, args.log_level)
    fds = [int(spec[3:]) for spec in args.listen]
    backups = [os.dup(fd) for fd in fds]  # the error page's listeners, should Server close the originals
    if args.standby:
        status.go.wait()
    overrides: dict[str, Any] = {
        "listen": tuple(args.listen),
        "access_log": "-",  # the console, rendered for people by AccessConsole
        "access_log_format": "json",
    }
    try:
        config, app = prepare(Path(args.config), overrides)
    except LoadFailed:
        pass
    else:
        grace = min(config.server.shutdown_timeout, GRACE)
        code = DevServer(with_grace(config, grace), app, status).run()
        if code == 0 or status.stop_requested:
            return 0
    return serve_error_page(backups, status)


def prepare(config_path: Path, overrides: dict[str, Any]) -> tuple[Config, ASGIApp]:
    """The config and its app; LoadFailed (after printing why) when either cannot load."""
    try:
        config = load(config_path)
    except ConfigError as exc:
        _report(exc.lines())
        raise LoadFailed from None
    if not preimport(config):
        raise LoadFailed
    try:
        return resolve([str(config_path)], **overrides)
    except ConfigError as exc:
        _report(exc.lines())
    except AppLoadError as exc:
        cause = exc.__cause__
        logger.error("%s", exc, exc_info=cause if isinstance(cause, Exception) else None)
    raise LoadFailed


def preimport(config: Config) -> bool:
    """Import each in-process app's module once, so that an error shows its traceback.

    The router would report it as one config line ("importing 'app' raised
    SyntaxError: ..."), which is right for `gateway check` but hides where
    the error is. A module that does not exist is left to the router, whose
    message says where it looked.
    """
    ok, tried = True, set()
    for where, module, folders in app_modules(config):
        if module in tried:  # a failed import is tried again by Python: once is enough here
            continue
        tried.add(module)
        prepend_sys_path([str(f) for f in folders])
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and (module == exc.name or module.startswith(exc.name + ".")):
                continue
            ok = _import_failed(where, module, exc)
        except (Exception, SystemExit) as exc:
            ok = _import_failed(where, module, exc)
    return ok


def app_modules(config: Config) -> list[tuple[str, str, list[Path]]]:
    """(where, module, folders to import from) for each inline asgi/wsgi route, or the top-level app."""
    base = config.config_dir
    if config.app:
        return [("app", config.app.partition(":")[0], [base])]
    found = []
    for vhost in config.vhosts:
        for route in vhost.routes:
            if route.handler in PYTHON_HANDLERS and route.options.app and not route.isolation.isolated:
                folders = [base / f for f in route.options.pythonpath]
                found.append((route.where, route.options.app.partition(":")[0], [*folders, base]))
    return found


def _import_failed(where: str, module: str, exc: BaseException) -> bool:
    exc.with_traceback(_without_machinery(exc.__traceback__))
    logger.error("%s: importing %r failed", where, module, exc_info=exc)
    return False


def _without_machinery(tb: TracebackType | None) -> TracebackType | None:
    """The traceback from the app's first frame (not this module's or importlib's)."""
    while tb is not None and tb.tb_frame.f_code.co_filename in _IMPORT_MACHINERY:
        tb = tb.tb_next
    return tb


def _report(lines: list[str]) -> None:
    for line in lines:
        logger.error("%s", line)


def with_grace(config: Config, grace: float) -> Config:
    return replace(config, server=replace(config.server, shutdown_timeout=grace))


def serve_error_page(fds: list[int], status: Status) -> int:
    """Answer 503 with the error text on the same listeners until SIGTERM."""
    text = "\n".join(status.errors) or "the serving process could not start (see the console)"
    logger.info(
        "fix it and save: gateway dev restarts by itself (until then every request gets a 503 with this error)",
        extra={"label": "wait"},
    )
    status.send(FAILED)
    settings = ServerSettings(
        listen=tuple(f"fd:{fd}" for fd in fds), access_log="-", access_log_format="json", shutdown_timeout=1.0
    )
    DevServer(Config(server=settings), error_page(text), status).run()
    return 0


def error_page(text: str) -> ASGIApp:
    """An app answering 503 with the error, plain text so that curl and browsers both show it."""
    body = (
        "gateway dev: the app could not start.\n\n"
        f"{text}\n\n"
        "Fix it and save: gateway dev restarts on its own and this page becomes the app again.\n"
    ).encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"retry-after", b"1"),
    ]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body if scope["method"] != "HEAD" else b""})

    return app


def _configure_console(status: Status, level: str) -> None:
    handler = console_handler(sys.stderr)
    handler.addFilter(ConsoleFilter(status))
    root = logging.getLogger("gateway")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(level.upper())
    sys.stdout = cast(TextIO, AccessConsole(sys.stdout))


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway.dev.child")
    parser.add_argument("config")
    parser.add_argument("--listen", action="append", default=[], help="fd:N, inherited from the supervisor")
    parser.add_argument("--status-fd", type=int, default=None)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--standby", action="store_true", help="wait for G on the status socket before loading")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main())
