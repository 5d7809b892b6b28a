"""The WSGI side of a request without any I/O: the environ (PEP 3333), wsgi.input and wsgi.errors.

Rules:
- Strings are "bytes as latin-1" (PEP 3333 §"Unicode Issues"): PATH_INFO is the
  percent-decoding of the raw path's bytes, decoded as latin-1, so an app that
  encodes it back to latin-1 gets the client's exact bytes.
- SCRIPT_NAME is the scope's root_path (the router appends the route's prefix);
  PATH_INFO is what follows it.
- Headers become HTTP_* (RFC 3875 §4.1.18). A `Proxy` header never becomes
  HTTP_PROXY (CVE-2016-5385, "httpoxy"), and names with an underscore are
  dropped, as nginx, Apache and gunicorn do: "X-Auth_User" must not pass as
  "X-Auth-User". Repeated headers are joined with ", " (RFC 9110 §5.3),
  Cookie with "; " (RFC 6265 §5.4).
- SERVER_NAME and SERVER_PORT come from Host when there is one, else from the
  socket the request arrived on.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from gateway.types import Scope

logger = logging.getLogger("gateway.adapters.wsgi")

_HEADER_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
    b"proxy": "",  # "" = dropped
}
_HEADER_CACHE_MAX = 512  # names seen beyond this many are converted each time, not remembered
_DEFAULT_PORTS = {"http": "80", "https": "443"}


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
    scheme: str = scope.get("scheme", "http")
    script_name: str = scope.get("root_path", "")
    if not script_name.isascii():
        script_name = script_name.encode("utf-8").decode("latin-1")
    path = _path_info(scope)
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    environ["REQUEST_METHOD"] = scope["method"]
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path
    environ["QUERY_STRING"] = scope["query_string"].decode("latin-1")
    environ["SERVER_PROTOCOL"] = "HTTP/" + scope["http_version"]
    environ["wsgi.url_scheme"] = scheme
    _add_headers(environ, scope["headers"])
    host = environ.get("HTTP_HOST")
    if host:
        environ["SERVER_NAME"], environ["SERVER_PORT"] = split_host(host, scheme)
    else:
        server = scope.get("server")
        port = server[1] if server else None
        if server and port is not None:
            environ["SERVER_NAME"], environ["SERVER_PORT"] = server[0], str(port)
        else:  # a Unix socket, or an ASGI server that did not say
            environ["SERVER_NAME"], environ["SERVER_PORT"] = "localhost", _DEFAULT_PORTS.get(scheme, "80")
    client = scope.get("client")
    if client:
        environ["REMOTE_ADDR"] = client[0]
        environ["REMOTE_PORT"] = str(client[1])
    user = scope.get("user")
    if isinstance(user, str):
        environ["REMOTE_USER"] = user
    return environ


def _path_info(scope: Scope) -> str:
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return str(scope["path"]).encode("utf-8").decode("latin-1")
    return unquote_to_bytes(raw).decode("latin-1") if b"%" in raw else raw.decode("latin-1")


def _add_headers(environ: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        key = _HEADER_KEYS.get(name)
        if key is None:
            key = _header_key(name)
        if not key:
            continue
        text = value.decode("latin-1")
        if key in environ:
            text = environ[key] + ("; " if key == "HTTP_COOKIE" else ", ") + text
        environ[key] = text


def _header_key(name: bytes) -> str:
    """HTTP_X_FOO for b"x-foo"; "" for names that must not reach the app."""
    lower = name.lower()
    if lower in _HEADER_KEYS:
        key = _HEADER_KEYS[lower]
    elif b"_" in lower:
        key = ""
    else:
        key = "HTTP_" + lower.decode("latin-1").upper().replace("-", "_")
    if len(_HEADER_KEYS) < _HEADER_CACHE_MAX:
        _HEADER_KEYS[name] = key
    return key


def split_host(host: str, scheme: str) -> tuple[str, str]:
    """(SERVER_NAME, SERVER_PORT) from a Host value: "a.example:8080", "[::1]:8080", "a.example"."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            name, rest = host[: end + 1], host[end + 1 :]
            return name, rest[1:] if rest.startswith(":") and rest[1:] else _DEFAULT_PORTS.get(scheme, "80")
    name, _, port = host.partition(":")
    return name, port or _DEFAULT_PORTS.get(scheme, "80")


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
