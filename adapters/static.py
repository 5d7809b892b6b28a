"""The `static` handler: files under `root`, small hot ones answered from memory.

Speed is the point (bench/static.py runs it beside nginx): no thread on the
hot path, no system call for a file answered from the cache, headers built
once per file, large files through the core's http.response.pathsend.

- _static_files.py: which file a path names (and what is refused: "..",
  encoded slashes, NUL, symlinks out of root), and the cache.
- _static_http.py: validators and 304, Range and 416, Accept-Encoding, types.
- _static_listing.py: the autoindex page.
- here: the options, the handler, and the answers. GET and HEAD only (405
  otherwise); Range applies to GET only (RFC 9110 §14.2); a Range of a large
  file is read with os.pread, CHUNK at a time, under the core's backpressure;
  a precompressed sibling (name.br, name.gz) goes to clients that accept it,
  with its own ETag, and every answer for such a name says Vary: Accept-Encoding.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
from dataclasses import dataclass, field
from time import monotonic

from adapters._static_files import (
    FORBIDDEN,
    NOT_FOUND,
    REVALIDATE,
    AddSlash,
    File,
    FileAnswer,
    FileTable,
    Listing,
    Reply,
    Representation,
)
from adapters._static_http import if_range_holds, multipart_plan, not_modified, parse_ranges, preferred_coding
from adapters._static_listing import render_listing
from gateway.http.pathsend import OPEN_FLAGS
from gateway.types import ASGIApp, HandlerContext, Receive, Scope, Send, Whole

CHUNK = 256 * 1024
_WANTED = frozenset({b"accept-encoding", b"if-none-match", b"if-modified-since", b"range", b"if-range"})
NOT_ALLOWED = Reply(405, "Method Not Allowed", ((b"allow", b"GET, HEAD"),))


@dataclass(frozen=True, slots=True)
class StaticOptions:
    root: str = field(default="", metadata={"doc": "the folder served; a relative path starts at the config's folder"})
    index: tuple[str, ...] = field(
        default=("index.html",), metadata={"doc": "file names tried in order for a directory's URL"}
    )
    follow_symlinks: bool = field(
        default=False, metadata={"doc": "also serve symlinks leading out of root (those inside always work)"}
    )
    max_age: float = field(
        default=0.0,
        metadata={"kind": "duration", "doc": 'Cache-Control max-age, as 3600 or "1h"; 0 sends no Cache-Control'},
    )
    autoindex: bool = field(default=False, metadata={"doc": "list directories that have no index file (else 404)"})
    precompressed: bool = field(
        default=True, metadata={"doc": "serve name.br or name.gz in place of name to clients that accept them"}
    )


class StaticHandler:
    """Files under a root, with validators, ranges and precompressed siblings."""

    Options = StaticOptions

    def __init__(self, options: StaticOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context

    def problems(self) -> list[tuple[str, str]]:
        found = [
            ("index", f"entry {name!r} must be a plain file name (no '/', '.' or '..')")
            for name in self.options.index
            if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
        ]
        if not self.options.root:
            return [("root", 'missing; the folder to serve, as in root = "public"'), *found]
        reason = self.context.folder_problem(self.options.root)
        return [*found, ("root", reason)] if reason else found

    def app(self) -> ASGIApp:
        if not mimetypes.inited:
            mimetypes.init()  # reads the system's mime.types once, not on a request
        root = os.fsencode(os.path.realpath(self.context.resolve(self.options.root or ".")))
        options = self.options
        table = FileTable(
            root,
            self.context.mount,
            options.index,
            options.follow_symlinks,
            options.precompressed,
            options.autoindex,
            int(options.max_age),
        )
        return StaticFiles(table)

    async def startup(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


class StaticFiles:
    """The ASGI app of one static route."""

    def __init__(self, table: FileTable) -> None:
        self.table = table
        self.cache = table.cache  # the same dict, one attribute closer to the hot path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if method != "GET" and method != "HEAD":
            if scope["type"] == "websocket":  # no method: refuse the handshake
                await send({"type": "websocket.close", "code": 1003})
            else:
                await NOT_ALLOWED.send(send)
            return
        raw_path: bytes = scope["raw_path"]
        found = self.cache.get(raw_path)
        if found is None or monotonic() - found.checked >= REVALIDATE:
            looked = self.table.lookup(raw_path)
            if isinstance(looked, (Reply, AddSlash, Listing)):
                await self.answer_other(looked, scope, send)
                return
            found = looked
        rep, inm, ims, ranges, if_range = _conditions(found, scope["headers"])
        if (inm is not None or ims is not None) and not_modified(inm, ims, rep.etag, rep.last_modified, rep.mtime):
            await send({"type": "http.response.start", "status": 304, "headers": rep.not_modified[:]})
            await send({"type": "http.response.body", "body": b""})
            return
        if ranges is not None and method == "GET":
            wanted = _wanted_ranges(ranges, if_range, rep)
            if wanted is not None:
                await send_ranges(rep, wanted, send)
                return
        await send({"type": "http.response.start", "status": 200, "headers": rep.full[:]})
        if rep.body is not None:
            await send({"type": "http.response.body", "body": rep.body})
        else:
            await send({"type": "http.response.pathsend", "path": rep.path})

    def gateway_respond_now(self, scope: Scope) -> Whole | FileAnswer | None:
        """The whole answer for a fresh cache hit the core can write at once (gateway/http/whole.py).

        Only files already cached: 200s from memory, a large file's 200 sent
        from the cycle (FileAnswer), and 304s; anything else (a file not cached
        yet or gone, a Range on GET) is None and goes through __call__ as usual.
        """
        method = scope["method"]
        if method != "GET" and method != "HEAD":
            return None
        raw_path = scope["raw_path"]
        found = self.cache.get(raw_path)
        if found is None:
            return None
        if monotonic() - found.checked >= REVALIDATE:
            looked = self.table.lookup(raw_path)  # a stat per second: as __call__ would, without the task
            if not isinstance(looked, File):
                return None
            found = looked
        headers = scope["headers"]
        for name, _ in headers:
            if name in _WANTED:
                break
        else:  # no validator, range or coding asked for: the usual request
            return found.identity.whole
        rep, inm, ims, ranges, _ = _conditions(found, headers)
        if (inm is not None or ims is not None) and not_modified(inm, ims, rep.etag, rep.last_modified, rep.mtime):
            return rep.whole_not_modified
        if ranges is not None and method == "GET":
            return None
        return rep.whole

    async def answer_other(self, found: Reply | AddSlash | Listing, scope: Scope, send: Send) -> None:
        if isinstance(found, Reply):
            await found.send(send)
        elif isinstance(found, AddSlash):
            await found.send(scope, send)
        else:
            await self.send_listing(found.path, scope, send)

    async def send_listing(self, directory: bytes, scope: Scope, send: Send) -> None:
        """The autoindex page, built in a thread: listing a directory is not the hot path."""
        try:
            page = await asyncio.to_thread(render_listing, directory, scope["path"], self.table.visible)
        except PermissionError:
            await FORBIDDEN.send(send)
            return
        except OSError:
            await NOT_FOUND.send(send)
            return
        headers = [(b"content-type", b"text/html; charset=utf-8"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": page})


Conditions = tuple[Representation, bytes | None, bytes | None, bytes | None, bytes | None]


def _conditions(found: File, headers: list[tuple[bytes, bytes]]) -> Conditions:
    """The representation the client accepts, and its If-None-Match, If-Modified-Since, Range, If-Range."""
    rep = found.identity
    inm = ims = ranges = if_range = accept = None
    for name, value in headers:
        if name in _WANTED:
            if name == b"accept-encoding":
                accept = value
            elif name == b"if-none-match":
                inm = value
            elif name == b"if-modified-since":
                ims = value
            elif name == b"range":
                ranges = value
            else:
                if_range = value
    if accept is not None and found.codings:
        coding = preferred_coding(accept, found.codings)
        if coding is not None:
            rep = found.variants[coding]
    return rep, inm, ims, ranges, if_range


def _wanted_ranges(header: bytes, if_range: bytes | None, rep: Representation) -> list[tuple[int, int]] | None:
    """The ranges to send, [] for a 416, or None for the whole file (also when If-Range fails)."""
    if if_range is not None and not if_range_holds(if_range, rep.etag, rep.last_modified):
        return None
    return parse_ranges(header, rep.size)


async def send_ranges(rep: Representation, ranges: list[tuple[int, int]], send: Send) -> None:
    """206 with one range or multipart/byteranges with several; 416 when none is satisfiable."""
    if not ranges:
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-range", b"bytes */%d" % rep.size),
            *rep.not_modified,
        ]
        await send({"type": "http.response.start", "status": 416, "headers": headers})
        await send({"type": "http.response.body", "body": b"Range Not Satisfiable\n"})
        return
    if len(ranges) == 1:
        start, end = ranges[0]
        pieces, tail = [(b"", start, end)], b""
        headers = [
            (b"content-type", rep.content_type),
            (b"content-length", b"%d" % (end - start + 1)),
            (b"content-range", b"bytes %d-%d/%d" % (start, end, rep.size)),
            *rep.meta,
        ]
    else:
        boundary = os.urandom(12).hex().encode("ascii")
        pieces, tail, total = multipart_plan(ranges, rep.size, rep.content_type, boundary)
        headers = [
            (b"content-type", b"multipart/byteranges; boundary=" + boundary),
            (b"content-length", b"%d" % total),
            *rep.meta,
        ]
    body = rep.body
    if body is not None:
        await send({"type": "http.response.start", "status": 206, "headers": headers})
        data = b"".join(head + body[start : end + 1] for head, start, end in pieces) + tail
        await send({"type": "http.response.body", "body": data})
        return
    try:
        fd = os.open(rep.path, OPEN_FLAGS)
    except OSError:  # removed since it was looked up
        await NOT_FOUND.send(send)
        return
    try:
        await send({"type": "http.response.start", "status": 206, "headers": headers})
        await _stream(fd, pieces, tail, send)
    finally:
        os.close(fd)


async def _stream(fd: int, pieces: list[tuple[bytes, int, int]], tail: bytes, send: Send) -> None:
    """Byte ranges of a large file, CHUNK at a time; the core's send() waits while the client is slow."""
    for head, start, end in pieces:
        pending = head
        offset = start
        while offset <= end:
            data = os.pread(fd, min(CHUNK, end + 1 - offset), offset)
            if not data:  # the file shrank: end here, and the core closes the connection (body too short)
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send({"type": "http.response.body", "body": pending + data if pending else data, "more_body": True})
            pending = b""
            offset += len(data)
    await send({"type": "http.response.body", "body": tail, "more_body": False})
