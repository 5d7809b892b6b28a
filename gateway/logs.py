"""Logging: the error log through `logging`, the access log written directly.

The access log bypasses `logging` on purpose: one line per request is on the
hot path, and a formatted write to a buffered stream costs a fraction of a
LogRecord. Lines are flushed by the server's once-a-second tick (at once when
the stream is a terminal) and at shutdown. SIGUSR1 reopens the files by name
(after logrotate renamed them), as nginx's USR1 does.
"""

from __future__ import annotations

import json
import logging
import sys
from time import perf_counter
from typing import TYPE_CHECKING, Protocol, TextIO

from gateway.errors import StartupError
from gateway.types import client_target

if TYPE_CHECKING:
    from gateway.http.cycle import RequestCycle
    from gateway.http.protocol import HttpProtocol
    from gateway.http.websocket import WebSocketConnection

ERROR_FORMAT = "%(asctime)s [%(levelname)s] %(name)s: %(message)s"
VHOST_LOG_KEY = "gateway.access_log"  # set by the router when a vhost has its own access_log
_open_logs: set[AccessLog] = set()


def flush_access_logs() -> None:
    """Flush every open access log (the server's and the vhosts' own); once a second."""
    for access_log in list(_open_logs):
        access_log.flush()


def reopen_access_logs() -> int:
    """Open every access log file again by its name (logrotate renamed it: SIGUSR1); how many were."""
    return sum(access_log.reopen() for access_log in list(_open_logs))


def configure_logging(level: str = "info") -> None:
    """Send gateway's error log to stderr (once; repeated calls only set the level)."""
    logger = logging.getLogger("gateway")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(ERROR_FORMAT))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(level.upper())


class RequestLog(Protocol):
    """What the core calls once per request: an AccessLog, NullAccessLog, or metrics' RecordingAccessLog."""

    def log(self, protocol: HttpProtocol, cycle: RequestCycle | WebSocketConnection) -> None: ...
    def log_refused(self, protocol: HttpProtocol, status: int, size: int = 0) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...


class AccessLog:
    """One line per request, in Apache's combined format or as JSON."""

    def __init__(self, stream: TextIO, fmt: str, close: bool = False, path: str | None = None) -> None:
        self.stream = stream
        self.json = fmt == "json"
        self.close_stream = close
        self.path = path  # the file's name, to reopen it after a rotation
        self.immediate = stream.isatty()
        _open_logs.add(self)

    @classmethod
    def open(cls, target: str, fmt: str, key: str = "access_log") -> AccessLog | NullAccessLog:
        """The log target names ("off", "-" or a file to append to); StartupError names key when it cannot open."""
        if target == "off":
            return NullAccessLog()
        if target == "-":
            return cls(sys.stdout, fmt)
        try:
            stream = _open_file(target)
        except OSError as exc:
            raise StartupError(f"{key} = {target!r}: cannot open it for writing: {exc.strerror or exc}") from None
        return cls(stream, fmt, close=True, path=target)

    def reopen(self) -> bool:
        """Write on to a file of the log's name (what is buffered goes to the old one); False if not a file.

        A file that cannot be opened now leaves the log writing where it was, and says so.
        """
        if self.path is None:
            return False
        try:
            stream = _open_file(self.path)
        except OSError as exc:
            logging.getLogger("gateway.error").error(
                "%s: cannot reopen the access log (%s); still writing to the file open before",
                self.path,
                exc.strerror or exc,
            )
            return False
        old, self.stream = self.stream, stream
        old.close()
        return True

    def log(self, protocol: HttpProtocol, cycle: RequestCycle | WebSocketConnection) -> None:
        scope = cycle.scope
        own = scope.get(VHOST_LOG_KEY)
        if own is not None and own is not self:
            own.log(protocol, cycle)  # the vhost's own access_log
            return
        referer = user_agent = host = "-"
        for name, value in scope["headers"]:
            if name == b"referer":
                referer = value.decode("latin-1")
            elif name == b"user-agent":
                user_agent = value.decode("latin-1")
            elif name == b"host":
                host = value.decode("latin-1")
        target = client_target(scope)
        user = scope.get("user") if isinstance(scope.get("user"), str) else None
        duration = perf_counter() - cycle.started
        client = scope.get("client")  # a trusted proxy's X-Forwarded-For may have replaced the peer
        self._write(
            protocol,
            client[0] if client else "-",
            scope.get("method", "GET"),  # a websocket scope has none: its handshake was a GET
            target,
            f"HTTP/{scope['http_version']}",
            cycle.status,
            cycle.sent,
            referer,
            user_agent,
            user or "-",
            duration,
            host,
        )

    def log_refused(self, protocol: HttpProtocol, status: int, size: int = 0) -> None:
        """A request the core answered itself (400, 408, 413, ...): little is known of it but its answer's size."""
        self._write(protocol, protocol.client_ip or "-", "-", "-", "-", status, size, "-", "-", "-", 0.0, "-")

    def _write(
        self,
        protocol: HttpProtocol,
        client: str,
        method: str,
        target: str,
        version: str,
        status: int,
        size: int,
        referer: str,
        user_agent: str,
        user: str,
        duration: float,
        host: str,
    ) -> None:
        when = protocol.state.common.log_time
        if self.json:
            line = (
                json.dumps(
                    {
                        "time": when,
                        "host": _text(host),
                        "client": client,
                        "user": user,
                        "method": method,
                        "target": _text(target),
                        "protocol": version,
                        "status": status,
                        "bytes": size,
                        "referer": _text(referer),
                        "user_agent": _text(user_agent),
                        "duration_ms": round(duration * 1000, 3),
                    }
                )
                + "\n"
            )
        else:
            request = "-" if method == "-" else f"{method} {target} {version}"
            line = (
                f'{client} - {user} [{when}] "{_quote(request)}" {status} {size or "-"} '
                f'"{_quote(referer)}" "{_quote(user_agent)}"\n'
            )
        self.stream.write(line)
        if self.immediate:
            self.stream.flush()

    def flush(self) -> None:
        self.stream.flush()

    def close(self) -> None:
        self.flush()
        _open_logs.discard(self)
        if self.close_stream:
            self.stream.close()


class NullAccessLog:
    """access_log = "off"."""

    def log(self, protocol: HttpProtocol, cycle: RequestCycle | WebSocketConnection) -> None:
        own = cycle.scope.get(VHOST_LOG_KEY)
        if own is not None and own is not self:
            own.log(protocol, cycle)

    def log_refused(self, protocol: HttpProtocol, status: int, size: int = 0) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def _open_file(path: str) -> TextIO:
    return open(path, "a", encoding="utf-8", buffering=65536)  # kept open: AccessLog.close() closes it


# Header values and the target are bytes decoded as latin-1, one character a byte: what is not printable
# ASCII is written as \xHH of that byte, as nginx writes it, so a line is ASCII whatever a client sent.
_ESCAPES = {code: f"\\x{code:02X}" for code in (*range(0x20), *range(0x7F, 0x100))}
_ESCAPES |= {ord('"'): '\\"', ord("\\"): "\\\\"}


def _quote(text: str) -> str:
    """Escape what would break the line's quoting or hide what the client sent."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return text.translate(_ESCAPES)


def _text(value: str) -> str:
    """A latin-1-decoded value as the UTF-8 text it usually is, for JSON (other bytes as \\xHH)."""
    if value.isascii():
        return value
    return value.encode("latin-1", "replace").decode("utf-8", "backslashreplace")
