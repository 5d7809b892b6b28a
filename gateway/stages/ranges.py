"""Byte ranges for every handler's responses: `ranges = true` (the default) or `ranges = false`.

RFC 9110 §14. The innermost output filter, so it sees the handler's own
response. It acts only where that is safe without buffering:

- a 200 answer to GET or HEAD with a Content-Length, no Content-Encoding, and
  no Accept-Ranges or Content-Range of its own (a handler that speaks ranges
  itself, as the static handler does, is left alone) is *eligible* and
  advertises `Accept-Ranges: bytes`;
- for an eligible answer to a GET with one `Range: bytes=...` (§14.1.2), the
  body streams through with everything outside the range skipped: 206 with
  Content-Range, or 416 with `Content-Range: bytes */length` when the range
  starts past the end (§15.5.17);
- a Range that is not one well-formed byte range (several ranges, another
  unit, bad syntax) is ignored and the full 200 goes out, which §14.2
  allows; so does an If-Range (§13.1.5) that does not match the response's
  strong ETag or exact Last-Modified;
- an http.response.pathsend answer is sliced by reading the file's range.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

from gateway.stages import Report
from gateway.stages._compress_files import open_size, pieces
from gateway.types import ASGIApp, HandlerContext, Headers, Later, Message, Receive, RespondNow, Scope, Send, Whole

KEYS = ("ranges",)
ORDER = 80

NOT_SATISFIABLE: Final = (-1, -1)
_BODY = "http.response.body"
_OWN_RANGES = frozenset({b"accept-ranges", b"content-range", b"content-encoding"})
_MAX_DIGITS = 18  # beyond any real length; int() of a 5000-digit string would raise


@dataclass(frozen=True, slots=True)
class Options:
    """Nothing to tune: ranges are on or off."""


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> Options | None:
    """On unless `ranges = false`."""
    value = values.get("ranges", True)
    if not isinstance(value, bool):
        report("ranges", f"expected true or false, got {value!r}")
        return None
    return Options() if value else None


def parse_range(value: bytes, length: int) -> tuple[int, int] | None:
    """(first, end) with end exclusive; NOT_SATISFIABLE; or None to ignore the header and send it all."""
    unit, equals, spec = value.partition(b"=")
    if not equals or unit.strip(b" \t").lower() != b"bytes" or spec.find(b",") >= 0 or length == 0:
        return None
    first, dash, last = spec.strip(b" \t").partition(b"-")
    if not dash or not (first or last) or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # "-500": the last 500 bytes, or all of a shorter body
        suffix = _number(last)
        return NOT_SATISFIABLE if suffix == 0 else (max(0, length - suffix), length)
    start = _number(first)
    if last and _number(last) < start:  # "5-1" is not a range: ignore the header (§14.1.1)
        return None
    if start >= length:
        return NOT_SATISFIABLE
    return (start, min(_number(last) + 1, length) if last else length)


def _number(digits: bytes) -> int:
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def if_range_holds(value: bytes, etag: bytes | None, last_modified: bytes | None) -> bool:
    """§13.1.5: a strong ETag match or the exact Last-Modified; a weak tag never matches."""
    value = value.strip(b" \t")
    if value.startswith(b'"'):
        return etag is not None and etag.strip(b" \t") == value
    if value.startswith(b"W/"):
        return False
    return last_modified is not None and last_modified.strip(b" \t") == value


def wrap(options: Options, app: ASGIApp) -> ASGIApp:
    """The app with ranges served from its full responses."""

    async def ranges_stage(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or (method != "GET" and method != "HEAD"):
            await app(scope, receive, send)
            return
        wanted = if_range = None
        if method == "GET":  # §14.2: Range means nothing for other methods
            for name, value in scope["headers"]:
                if name == b"range":
                    wanted = value
                elif name == b"if-range":
                    if_range = value
        if wanted is None and method == "GET":
            await app(scope, receive, send)  # on for every route: a request without Range pays nothing more
            return
        await app(scope, receive, _Response(send, wanted, if_range))

    inner: RespondNow | None = getattr(app, "gateway_respond_now", None)
    if inner is not None:
        # A GET without Range passes through untouched: the app may answer it at once (gateway/types.py).
        def respond_now(scope: Scope) -> Whole | Later | None:
            if scope["method"] != "GET":
                return None
            for name, _ in scope["headers"]:
                if name == b"range":
                    return None
            return inner(scope)

        ranges_stage.gateway_respond_now = respond_now  # type: ignore[attr-defined]
    return ranges_stage


# The states of one response.
_START, _SLICING, _DONE, _PASS, _HELD = range(5)


class _Response:
    """The send of one response through ranges."""

    __slots__ = ("end", "first", "held", "if_range", "position", "send", "state", "wanted")

    def __init__(self, send: Send, wanted: bytes | None, if_range: bytes | None) -> None:
        self.send = send
        self.wanted = wanted
        self.if_range = if_range
        self.state = _START
        self.first = self.end = self.position = 0
        self.held: Message | None = None  # a start without Content-Length, until the body shows its length

    async def __call__(self, message: Message) -> None:
        state, kind = self.state, message["type"]
        if state == _PASS:
            await self.send(message)
        elif state == _START and kind == "http.response.start":
            await self._start(message)
        elif state == _SLICING and kind == _BODY:
            await self._slice(message)
        elif state == _SLICING and kind == "http.response.pathsend":
            await self._slice_file(message["path"])
        elif state == _DONE and kind.startswith("http.response."):
            return  # the rest of a body whose range has already gone out
        elif state == _HELD:
            await self._after_held(message)
        else:
            await self.send(message)

    async def _start(self, message: Message) -> None:
        self.state = _PASS
        headers = message.get("headers", ())
        length = etag = last_modified = None
        if message["status"] != 200:
            await self.send(message)
            return
        for name, value in headers:
            lname = name.lower()
            if lname == b"content-length":
                length = int(value) if value.isdigit() and len(value) <= _MAX_DIGITS and length is None else -1
            elif lname in _OWN_RANGES:
                length = -1
                break
            elif lname == b"etag":
                etag = value
            elif lname == b"last-modified":
                last_modified = value
        if length is None and self.wanted is not None:
            self.state, self.held = _HELD, message  # PHP, CGI: a whole small body in one message has a length
            return
        if length is None or length < 0:
            await self.send(message)
            return
        span = None
        if self.wanted is not None and (self.if_range is None or if_range_holds(self.if_range, etag, last_modified)):
            span = parse_range(self.wanted, length)
        if span is None:
            await self.send({**message, "headers": [*headers, (b"accept-ranges", b"bytes")]})
        elif span == NOT_SATISFIABLE:
            await self._not_satisfiable(length)
        else:
            await self._partial(message, headers, span, length)

    async def _after_held(self, message: Message) -> None:
        """The first message after a held start: a complete body gives the length ranges need."""
        held, self.held = self.held, None
        assert held is not None
        if message["type"] != _BODY or message.get("more_body", False):
            self.state = _PASS
            await self.send(held)
            await self.send(message)
            return
        body = message.get("body", b"")
        self.state = _START
        await self._start({**held, "headers": [*held.get("headers", ()), (b"content-length", b"%d" % len(body))]})
        if self.state == _SLICING:
            await self._slice(message)
        elif self.state == _PASS:
            await self.send(message)

    async def _partial(self, message: Message, headers: Any, span: tuple[int, int], length: int) -> None:
        self.state = _SLICING
        self.first, self.end = span
        edited: Headers = [(name, value) for name, value in headers if name.lower() != b"content-length"]
        edited += [
            (b"content-length", b"%d" % (self.end - self.first)),
            (b"content-range", b"bytes %d-%d/%d" % (self.first, self.end - 1, length)),
            (b"accept-ranges", b"bytes"),
        ]
        await self.send({**message, "status": 206, "headers": edited})

    async def _not_satisfiable(self, length: int) -> None:
        self.state = _DONE
        headers = [(b"content-range", b"bytes */%d" % length), (b"content-length", b"0")]
        await self.send({"type": "http.response.start", "status": 416, "headers": headers})
        await self.send({"type": _BODY, "body": b"", "more_body": False})

    async def _slice(self, message: Message) -> None:
        body = message.get("body", b"")
        begin = self.position
        self.position += len(body)
        low, high = max(self.first - begin, 0), min(self.end - begin, len(body))
        piece = body[low:high] if low < high else b""
        done = self.position >= self.end or not message.get("more_body", False)
        if done:
            self.state = _DONE
        if piece or done:
            await self.send({"type": _BODY, "body": piece, "more_body": not done})

    async def _slice_file(self, path: str) -> None:
        self.state = _DONE
        fd, size = open_size(path)
        try:
            for piece in pieces(fd, self.first, min(self.end, size)):
                await self.send({"type": _BODY, "body": piece, "more_body": True})
        finally:
            os.close(fd)
        await self.send({"type": _BODY, "body": b"", "more_body": False})
