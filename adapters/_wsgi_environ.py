"""The WSGI side of a request without any I/O: the environ (PEP 3333), wsgi.input and wsgi.errors.

Rules:
- Strings are "bytes as latin-1" (PEP 3333 §"Unicode Issues"): PATH_INFO is the
  percent-decoding of the raw path's bytes, decoded as latin-1, so an app that
  encodes it back to latin-1 gets the client's bytes; with dot segments and
  repeated slashes cleaned as for routing (the path the route was chosen by).
- SCRIPT_NAME is the scope's root_path (the router appends the route's prefix);
  PATH_INFO is what follows it.
- The CGI meta-variables it shares with CGI and FastCGI (HTTP_*, SERVER_NAME,
  REMOTE_ADDR...) come from _meta_variables.py, with their rules.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from adapters._meta_variables import add_request_variables, decoded_path
from gateway.types import Scope

logger = logging.getLogger("gateway.adapters.wsgi")


def base_environ(errors: ErrorStream) -> dict[str, Any]:
    """The keys that are the same for every request of one handler."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        # wsgi.input ends where the body ends, even for a chunked body (werkzeug reads it then).
        "wsgi.input_terminated": True,
    }


def environ_for(scope: Scope, base: dict[str, Any]) -> dict[str, Any]:
    """The environ of an HTTP scope; the caller adds wsgi.input."""
    environ = base.copy()
    script_name: str = scope.get("root_path", "")
    if not script_name.isascii():
        script_name = script_name.encode("utf-8").decode("latin-1")
    path = decoded_path(scope)
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path
    environ["wsgi.url_scheme"] = scope.get("scheme", "http")
    add_request_variables(environ, scope)
    return environ


class ClientDisconnected(OSError):
    """The client went away: raised by wsgi.input's reads and by write() (an OSError, like a broken pipe)."""


class WsgiInput:
    """wsgi.input: the request body, fetched one ASGI message at a time as the app reads.

    `fetch()` blocks until the next message's bytes arrive and returns
    (bytes, more). Only the message being read is held, so memory stays at
    one message (the core bounds those) unless the app asks for more at once.
    """

    __slots__ = ("buffer", "fetch", "more", "pos")

    def __init__(self, fetch: Callable[[], tuple[bytes, bool]] | None) -> None:
        self.fetch = fetch
        self.more = fetch is not None
        self.buffer = b""
        self.pos = 0

    def _fill(self) -> bool:
        """The next message into the (exhausted) buffer; False at the end of the body."""
        if not self.more or self.fetch is None:
            return False
        self.buffer, self.more = self.fetch()
        self.pos = 0
        return True

    def read(self, size: int | None = -1) -> bytes:
        wanted = sys.maxsize if size is None or size < 0 else size
        parts: list[bytes] = []
        have = 0
        while True:
            buffer, pos = self.buffer, self.pos
            take = min(len(buffer) - pos, wanted - have)
            if take:
                parts.append(buffer if pos == 0 and take == len(buffer) else buffer[pos : pos + take])
                self.pos = pos + take
                have += take
            if have >= wanted or not self._fill():
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readline(self, size: int | None = -1) -> bytes:
        limit = sys.maxsize if size is None or size < 0 else size
        parts: list[bytes] = []
        have = 0
        while True:
            buffer, pos = self.buffer, self.pos
            end = buffer.find(b"\n", pos, pos + (limit - have))
            if end >= 0:
                parts.append(buffer[pos : end + 1])
                self.pos = end + 1
                break
            take = min(len(buffer) - pos, limit - have)
            if take:
                parts.append(buffer[pos : pos + take])
                self.pos = pos + take
                have += take
            if have >= limit or not self._fill():
                break
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        total = sys.maxsize if hint is None or hint <= 0 else hint
        lines: list[bytes] = []
        size = 0
        while size < total:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            size += len(line)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        while line := self.readline():
            yield line


NO_BODY = WsgiInput(None)  # shared: a body-less request's wsgi.input never changes state


class ErrorStream:
    """wsgi.errors: each line the app writes becomes one log record of gateway.adapters.wsgi."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.local = threading.local()  # a partial line waits per thread, so threads do not interleave

    def write(self, text: str) -> int:
        pending: str = getattr(self.local, "text", "") + text
        *lines, self.local.text = pending.split("\n")
        for line in lines:
            logger.error("%s: %s", self.where, line)
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        pending: str = getattr(self.local, "text", "")
        if pending:
            self.local.text = ""
            logger.error("%s: %s", self.where, pending)
