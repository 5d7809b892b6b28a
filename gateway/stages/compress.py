"""Response compression: `compress = true | { algorithms, min_size, types, level }`.

Rules, decided from the request and the response head (the start is held
back only until the first body message shows whether the size is known):

- A response is *compressible* when its status carries a body (not 1xx, 204,
  206 or 304), it has no Content-Encoding, no `Cache-Control: no-transform`,
  and its Content-Type matches `types`. Every compressible response says
  `Vary: Accept-Encoding` (merged into an existing Vary), whether or not this
  client gets it compressed, so a cache keeps the variants apart.
- It is compressed when the client accepts one of `algorithms` (see
  _compress_negotiate), the request asked for no Range (a slice of a
  compressed stream is not what the client asked for), and the body is not
  known to be smaller than `min_size` (known from Content-Length, from a whole
  body in its first message, or from a pathsend file's size).
- Compressing drops Content-Length (the core then sizes or chunks the
  output) and Accept-Ranges (the compressed stream is not ranged here) and
  makes a strong ETag weak (W/), as nginx does: the bytes differ, the meaning
  does not.
- Streaming stays streaming: each body message is compressed and flushed on
  its own, so it reaches the client decodable as it arrives.
- HEAD gets the head a GET would get (Content-Encoding, no Content-Length,
  weak ETag) and an empty body; nothing is compressed for it.
- http.response.pathsend: when compressing, the file is read in pieces and
  sent as compressed body messages; below min_size it goes out untouched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.config.units import parse_size
from gateway.config.validate import did_you_mean
from gateway.stages import Report
from gateway.stages._compress_codecs import DEFAULT_LEVELS, LEVEL_RANGES, Encoder, encoder_factory, oneshot
from gateway.stages._compress_files import open_size, pieces
from gateway.stages._compress_negotiate import MediaTypes, negotiate, pattern_problem
from gateway.types import ASGIApp, HandlerContext, Headers, Message, Receive, Scope, Send

KEYS = ("compress",)
ORDER = 70

ALGORITHMS = ("br", "zstd", "gzip")
DEFAULT_MIN_SIZE = 1024
DEFAULT_TYPES = (
    "text/*",
    "application/json",
    "application/*+json",
    "application/x-ndjson",
    "application/javascript",
    "application/x-javascript",
    "application/ecmascript",
    "application/xml",
    "application/*+xml",
    "application/wasm",
    "application/vnd.ms-fontobject",
    "font/ttf",
    "font/otf",
    "image/svg+xml",
    "image/x-icon",
    "image/vnd.microsoft.icon",
    "image/bmp",
)
_TABLE_KEYS = ("algorithms", "min_size", "types", "level")
_NO_BODY = frozenset({204, 206, 304})
_VALIDATED = frozenset({206, 304})  # answers about a full response: they say what it would have said
_NO_TRANSFORM = re.compile(rb"no-transform", re.IGNORECASE)  # not `b"..." in value`: see gateway/http/parser.py
_CACHE_SIZE = 256  # distinct Accept-Encoding values remembered per route


@dataclass(frozen=True, slots=True)
class Coding:
    """One algorithm, ready to use: its token, a per-response encoder maker and a whole-body compressor."""

    token: bytes
    encoder: Callable[[], Encoder]
    whole: Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True)
class Options:
    algorithms: tuple[str, ...]  # server preference among equal weights
    codings: dict[str, Coding]
    min_size: int
    types: MediaTypes


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> Options | None:
    """Options from `compress = true` or a table; None when absent, false, or wrong."""
    value = values.get("compress")
    if value is None or value is False:
        return None
    if value is not True and not isinstance(value, dict):
        report("compress", 'expected true, false or a table such as { algorithms = ["br", "gzip"], min_size = "1KiB" }')
        return None
    table: dict[str, Any] = value if isinstance(value, dict) else {}
    problems: list[tuple[str, str]] = []
    for key in table:
        if key not in _TABLE_KEYS:
            known = ", ".join(_TABLE_KEYS)
            problems.append((f"compress.{key}", f"unknown key{did_you_mean(key, _TABLE_KEYS)}; known keys: {known}"))
    algorithms = _algorithms(table.get("algorithms", list(ALGORITHMS)), problems)
    levels = _levels(table.get("level", {}), problems)
    types = table.get("types", list(DEFAULT_TYPES))
    if not isinstance(types, list) or not types:
        problems.append(("compress.types", 'expected a list of media types such as ["text/*", "application/json"]'))
    else:
        problems += [(f"compress.types[{i}]", p) for i, t in enumerate(types) if (p := pattern_problem(t))]
    try:
        min_size = parse_size(table.get("min_size", DEFAULT_MIN_SIZE))
    except ValueError as error:
        problems.append(("compress.min_size", str(error)))
    for key, message in problems:
        report(key, message)
    if problems:
        return None
    codings = {a: Coding(a.encode(), encoder_factory(a, levels[a]), oneshot(a, levels[a])) for a in algorithms}
    return Options(algorithms, codings, min_size, MediaTypes(types))


def _algorithms(value: object, problems: list[tuple[str, str]]) -> tuple[str, ...]:
    expected = 'expected a list drawn from "br", "zstd" and "gzip", such as ["br", "gzip"]'
    if not isinstance(value, list) or not value or not all(isinstance(a, str) for a in value):
        problems.append(("compress.algorithms", expected))
        return ()
    for index, name in enumerate(value):
        if name not in ALGORITHMS:
            hint = did_you_mean(name, ALGORITHMS)
            problems.append((f"compress.algorithms[{index}]", f"unknown algorithm {name!r}{hint}"))
    if len(set(value)) != len(value):
        problems.append(("compress.algorithms", "an algorithm is listed twice"))
    return tuple(value)


def _levels(value: object, problems: list[tuple[str, str]]) -> dict[str, int]:
    levels = dict(DEFAULT_LEVELS)
    if not isinstance(value, dict):
        problems.append(("compress.level", "expected a table such as { br = 4, zstd = 3, gzip = 5 }"))
        return levels
    for name, level in value.items():
        if name not in LEVEL_RANGES:
            problems.append((f"compress.level.{name}", f"unknown algorithm{did_you_mean(name, ALGORITHMS)}"))
            continue
        low, high = LEVEL_RANGES[name]
        if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= high:
            problems.append((f"compress.level.{name}", f"expected a whole number from {low} to {high}, got {level!r}"))
        else:
            levels[name] = level
    return levels


def wrap(options: Options, app: ASGIApp) -> ASGIApp:
    """The app with its responses compressed for clients that accept it."""
    algorithms = options.algorithms
    chosen: dict[bytes, str | None] = {}  # Accept-Encoding value → algorithm: a few values repeat endlessly

    def choose(accept: bytes) -> Coding | None:
        try:
            name = chosen[accept]
        except KeyError:
            if len(chosen) >= _CACHE_SIZE:
                chosen.clear()
            name = chosen[accept] = negotiate(accept, algorithms)
        return None if name is None else options.codings[name]

    async def compress_stage(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        accept: bytes | None = None
        ranged = False
        validators = b""
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept = value if accept is None else accept + b"," + value
            elif name == b"range":
                ranged = True
            elif name == b"if-none-match":
                validators = value if not validators else validators + b"," + value
        coding = None if ranged or accept is None else choose(accept)
        await app(scope, receive, _Response(options, send, coding, scope["method"] == "HEAD", validators))

    return compress_stage


# The states of one response.
_START, _HELD, _ENCODING, _HEAD_DRAIN, _PASS = range(5)
_BODY = "http.response.body"


class _Response:
    """The send of one response through compress: decide at the head, then pass through or encode."""

    __slots__ = ("coding", "encoder", "head_only", "held", "known_size", "options", "send", "state", "validators")

    def __init__(
        self, options: Options, send: Send, coding: Coding | None, head_only: bool, validators: bytes = b""
    ) -> None:
        self.options = options
        self.send = send
        self.coding = coding
        self.head_only = head_only
        self.validators = validators  # the request's If-None-Match, for a 304's ETag
        self.state = _START
        self.held: Message = {}
        self.known_size: int | None = None
        self.encoder: Encoder | None = None

    async def __call__(self, message: Message) -> None:
        state, kind = self.state, message["type"]
        if state == _PASS:
            await self.send(message)
        elif state == _START and kind == "http.response.start":
            await self._start(message)
        elif state == _HELD and kind == _BODY:
            await self._first_body(message)
        elif state == _HELD and kind == "http.response.pathsend":
            await self._pathsend(message["path"])
        elif state == _ENCODING and kind == _BODY:
            await self._encode(message)
        elif state == _HEAD_DRAIN and kind in (_BODY, "http.response.pathsend"):
            if not message.get("more_body", False):
                self.state = _PASS
                await self.send({"type": _BODY, "body": b"", "more_body": False})
        elif state == _HELD:  # something unforeseen before the body: give up compressing
            await self._release()
            await self.send(message)
        else:
            await self.send(message)

    async def _start(self, message: Message) -> None:
        headers = message.get("headers", ())
        if message["status"] in _VALIDATED:
            self.state = _PASS
            await self.send(self._as_the_full_response(message))
            return
        if not self._compressible(message["status"], headers):
            self.state = _PASS
            await self.send(message)
            return
        self.held = {**message, "headers": _with_vary(headers)}
        if self.coding is None or (self.known_size is not None and self.known_size < self.options.min_size):
            await self._release()
        else:
            self.state = _HELD

    def _compressible(self, status: int, headers: Any) -> bool:
        if status < 200 or status in _NO_BODY:
            return False
        content_type, untouchable, self.known_size = _scan(headers)
        return not untouchable and content_type is not None and content_type in self.options.types

    def _as_the_full_response(self, message: Message) -> Message:
        """A 206 or 304 of what could be compressed says what the full response would (RFC 9110 §15.3.7, §15.4.5).

        Its Vary: Accept-Encoding (a 304 without Content-Type is taken as
        compressible), and on a 304 the weak ETag the client holds when it got
        the compressed 200: a cache matches the 304 to what it stored by it.
        """
        headers = message.get("headers", ())
        content_type, untouchable, _ = _scan(headers)
        if untouchable or (content_type is None and message["status"] != 304):
            return message
        if content_type is not None and content_type not in self.options.types:
            return message
        edited = _with_vary(headers)
        if message["status"] == 304 and self.validators:
            edited = [(name, self._held_etag(value) if name.lower() == b"etag" else value) for name, value in edited]
        return {**message, "headers": edited}

    def _held_etag(self, etag: bytes) -> bytes:
        weak = etag if etag.startswith(b"W/") else b"W/" + etag
        return weak if weak in self.validators and etag not in _strong_tags(self.validators) else etag

    async def _release(self) -> None:
        """Send the held head as it is (with its Vary) and pass the rest through."""
        self.state = _PASS
        await self.send(self.held)

    async def _send_encoded_head(self) -> None:
        assert self.coding is not None
        headers: Headers = []
        for name, value in self.held["headers"]:
            lname = name.lower()
            if lname == b"content-length" or lname == b"accept-ranges":
                continue
            if lname == b"etag" and value.startswith(b'"'):
                value = b"W/" + value
            headers.append((name, value))
        headers.append((b"content-encoding", self.coding.token))
        await self.send({**self.held, "headers": headers})

    async def _first_body(self, message: Message) -> None:
        assert self.coding is not None
        more = message.get("more_body", False)
        body = message.get("body", b"")
        # A whole body in one message tells its size; for HEAD, only if the app sent the body anyway.
        if not more and self.known_size is None and len(body) < self.options.min_size and (body or not self.head_only):
            await self._release()
            await self.send(message)
        elif self.head_only:
            await self._head(final=not more)
        elif not more:
            self.state = _PASS
            await self._send_encoded_head()
            await self.send({"type": _BODY, "body": self.coding.whole(body), "more_body": False})
        else:
            self.encoder = self.coding.encoder()
            self.state = _ENCODING
            await self._send_encoded_head()
            await self._encode(message)

    async def _encode(self, message: Message) -> None:
        assert self.encoder is not None
        body = message.get("body", b"")
        if message.get("more_body", False):
            if body:
                await self.send({"type": _BODY, "body": self.encoder.chunk(body), "more_body": True})
            return
        self.state = _PASS
        data, self.encoder = self.encoder.last(body), None
        await self.send({"type": _BODY, "body": data, "more_body": False})

    async def _head(self, final: bool) -> None:
        """HEAD: the head a GET would get, then an empty body that leaves the size unsaid."""
        self.state = _PASS if final else _HEAD_DRAIN
        await self._send_encoded_head()
        await self.send({"type": _BODY, "body": b"", "more_body": True})
        if final:
            await self.send({"type": _BODY, "body": b"", "more_body": False})

    async def _pathsend(self, path: str) -> None:
        assert self.coding is not None
        if self.head_only:
            await self._head(final=True)
            return
        fd, size = open_size(path)
        try:
            if size < self.options.min_size:
                await self._release()
                await self.send({"type": "http.response.pathsend", "path": path})
                return
            self.state = _PASS
            encoder = self.coding.encoder()
            await self._send_encoded_head()
            for piece in pieces(fd, 0, size):
                data = encoder.feed(piece)
                if data:
                    await self.send({"type": _BODY, "body": data, "more_body": True})
            await self.send({"type": _BODY, "body": encoder.last(b""), "more_body": False})
        finally:
            os.close(fd)


def _scan(headers: Any) -> tuple[bytes | None, bool, int | None]:
    """(Content-Type, whether compress must leave the body alone (Content-Encoding, no-transform), Content-Length)."""
    content_type = length = None
    untouchable = False
    for name, value in headers:
        lname = name.lower()
        if lname == b"content-type":
            content_type = value
        elif lname == b"content-encoding" or (lname == b"cache-control" and _NO_TRANSFORM.search(value)):
            untouchable = True
        elif lname == b"content-length":
            length = int(value) if value.isdigit() and len(value) <= 18 else None
    return content_type, untouchable, length


def _strong_tags(validators: bytes) -> list[bytes]:
    """The strong entity-tags of an If-None-Match value."""
    return [tag.strip() for tag in validators.split(b",") if tag.strip().startswith(b'"')]


def _with_vary(headers: Any) -> Headers:
    """The headers with Accept-Encoding in Vary, merged into the last Vary field if there is one."""
    edited: Headers = [(name, value) for name, value in headers]
    last = -1
    for index, (name, value) in enumerate(edited):
        if name.lower() == b"vary":
            lowered = value.lower()
            if lowered.find(b"accept-encoding") >= 0 or value.strip() == b"*":
                return edited
            last = index
    if last < 0:
        edited.append((b"vary", b"Accept-Encoding"))
    else:
        name, value = edited[last]
        edited[last] = (name, value + b", Accept-Encoding" if value.strip() else b"Accept-Encoding")
    return edited
