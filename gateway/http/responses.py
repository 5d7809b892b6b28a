"""Bytes the core writes itself: status lines, the Date header, error pages."""

from __future__ import annotations

import http
import time
from email.utils import formatdate

# RFC 9110's names where Python 3.11's are older (RFC 7231's "Request Entity Too Large" and so on).
_PHRASES = {
    **{status.value: status.phrase for status in http.HTTPStatus},
    413: "Content Too Large",
    414: "URI Too Long",
    416: "Range Not Satisfiable",
    422: "Unprocessable Content",
}
STATUS_LINES: dict[int, bytes] = {
    code: f"HTTP/1.1 {code} {phrase}\r\n".encode("ascii") for code, phrase in _PHRASES.items()
}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"

# The 500 page's detail for an app that failed before its response began (the log says how).
APP_FAILED = "The application raised an error; the traceback is in the server's log."


# RFC 9110 §5.6.2: a field name is a token of these (a space or colon in one would read as another field).
_TCHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_TCHAR_BYTES = frozenset(_TCHARS.encode("ascii"))
_TCHAR_TEXT = frozenset(_TCHARS)


def is_token(name: bytes | str) -> bool:
    """Whether a header name is a token; callers remember the names that were (apps repeat a few)."""
    chars = _TCHAR_TEXT if isinstance(name, str) else _TCHAR_BYTES
    return bool(name) and chars.issuperset(name)


def field_problem(name: bytes, value: bytes) -> str | None:
    """Why an app's header field may not be sent, or None (for heads built off the hot path)."""
    if not is_token(name):
        return f"the header name {bytes(name)!r} is not a token"
    if b"\r" in value or b"\n" in value or b"\0" in value:
        return f"the {bytes(name)!r} header's value contains a CR, LF or NUL character"
    return None


def status_line(status: int) -> bytes:
    """The cached status line, or one built for a code outside http.HTTPStatus."""
    line = STATUS_LINES.get(status)
    if line is None:
        line = f"HTTP/1.1 {status} \r\n".encode("ascii")
    return line


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """Header fields as the lines of a head, each `name: value` and CRLF (trusted: no CR or LF inside)."""
    return b"".join(name + b": " + value + b"\r\n" for name, value in headers)


def reason(status: int) -> str:
    return _PHRASES.get(status, "")


class CommonHeaders:
    """The Date and Server lines of every response, rebuilt once a second by the ticker."""

    __slots__ = ("block", "lines", "log_time", "server")

    def __init__(self, server_header: str) -> None:
        self.server = f"server: {server_header}\r\n".encode("latin-1") if server_header else b""
        self.lines = 2 if server_header else 1
        self.block = b""
        self.log_time = ""
        self.refresh()

    def refresh(self) -> None:
        now = time.time()
        self.block = b"date: " + formatdate(now, usegmt=True).encode("ascii") + b"\r\n" + self.server
        self.log_time = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))


def error_response(status: int, detail: str, common: CommonHeaders) -> bytes:
    """A small plain-text response that ends the connection (for refused requests)."""
    body = f"{status} {reason(status)}\n{detail}\n".encode()
    head = (
        status_line(status)
        + common.block
        + b"content-type: text/plain; charset=utf-8\r\n"
        + b"content-length: "
        + str(len(body)).encode("ascii")
        + b"\r\n"
        + b"connection: close\r\n\r\n"
    )
    return head + body
