"""What a static route's request path names on disk, looked up and cached by raw path.

Rules:
- Only files under root. The path below the route's mount comes from
  raw_path, cut at "/" with each segment percent-decoded once on its own: a
  segment that decodes to "..", or holds "/" or "\\", is a 404 (no client
  needs one; refusing beats normalising), and one holding NUL is a 400 (no
  file name can hold it, so the request is malformed). Empty and "."
  segments are skipped. (The core refuses a path whose ".." climbs above
  "/" too; nothing here relies on it: routing sees the normalised path,
  files are found from raw_path.) Symlinks may lead anywhere inside root;
  one that leads out is a 404 unless follow_symlinks is on. Only regular
  files are opened, with O_NONBLOCK so a FIFO swapped in cannot stall the loop.
- A directory asked for without its trailing slash is ADD_SLASH (a 301); with
  it, the first index file, else a Listing when autoindex is on, else 404.
- A file found is cached under its raw_path with its response headers built,
  and with its body when ≤ SMALL_FILE; the cache holds ≤ CACHE_BYTES (bodies
  plus ENTRY_OVERHEAD each) and ≤ CACHE_ENTRIES entries, oldest out first.
  Lookups run on the loop: a realpath, a stat per file and sibling, and an
  open and read for small files. An entry is trusted for REVALIDATE seconds,
  then looked up again and rebuilt only if a stat changed.
"""

from __future__ import annotations

import os
import stat
from collections import OrderedDict
from time import monotonic
from typing import TYPE_CHECKING
from urllib.parse import unquote_to_bytes

from adapters._static_http import content_type_of, http_date
from gateway.http.pathsend import OPEN_FLAGS
from gateway.http.responses import header_lines
from gateway.stages.errors import GATEWAY_MADE
from gateway.types import Headers, Scope, Send, Whole

if TYPE_CHECKING:
    from gateway.http.cycle import RequestCycle

SMALL_FILE = 64 * 1024
CACHE_BYTES = 32 * 1024 * 1024
CACHE_ENTRIES = 10_000
ENTRY_OVERHEAD = 1024  # an entry's headers and bookkeeping, counted against CACHE_BYTES
REVALIDATE = 1.0
# Single bytes tested as ints: `b"%" in raw` costs a caught TypeError in CPython 3.11.
_PERCENT, _SLASH, _BACKSLASH, _NUL = ord("%"), ord("/"), ord("\\"), 0
SIBLINGS = (("br", b".br"), ("gzip", b".gz"))  # the server's order of preference


class Reply:
    """A fixed answer (errors, 405), built once."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, text: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        self.status = status
        self.body = f"{text}\n".encode()
        self.headers: Headers = [(b"content-type", b"text/plain; charset=utf-8"), *headers]

    async def send(self, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status, "headers": self.headers[:], GATEWAY_MADE: True}
        await send(start)
        await send({"type": "http.response.body", "body": self.body})


NOT_FOUND = Reply(404, "Not Found")
FORBIDDEN = Reply(403, "Forbidden")
BAD_REQUEST = Reply(400, "Bad Request: the path holds a NUL byte")


class AddSlash:
    """A directory asked for without its trailing slash (static files and CGI folders alike)."""

    async def send(self, scope: Scope, send: Send) -> None:
        """301 to the path with its slash, rebuilt from the non-empty segments so it can never start with "//"."""
        raw_path: bytes = scope["raw_path"]
        location = b"/" + b"/".join(part for part in raw_path.split(b"/") if part) + b"/"
        query: bytes = scope["query_string"]
        if query:
            location += b"?" + query
        headers = [(b"location", location), (b"content-type", b"text/plain; charset=utf-8")]
        await send({"type": "http.response.start", "status": 301, "headers": headers})
        await send({"type": "http.response.body", "body": b"Moved Permanently\n"})


class Listing:
    """A directory without an index file, to be listed (autoindex)."""

    __slots__ = ("path",)

    def __init__(self, path: bytes) -> None:
        self.path = path


ADD_SLASH = AddSlash()
Signature = tuple[int, int, int, int]


def _signature(info: os.stat_result) -> Signature:
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


class Located:
    """A regular file found for a path, with its precompressed siblings: what a cache entry is checked against."""

    __slots__ = ("info", "path", "siblings", "signature")

    def __init__(self, path: bytes, info: os.stat_result, siblings: list[tuple[str, bytes, os.stat_result]]) -> None:
        self.path = path
        self.info = info
        self.siblings = siblings
        self.signature = (path, _signature(info), tuple((c, p, _signature(i)) for c, p, i in siblings))


class Representation:
    """One file's bytes as sent (identity, or a precompressed sibling), with its headers built."""

    __slots__ = (
        "body",
        "content_type",
        "etag",
        "full",
        "last_modified",
        "meta",
        "mtime",
        "not_modified",
        "path",
        "size",
        "whole",
        "whole_not_modified",
    )

    def __init__(
        self, path: bytes, info: os.stat_result, body: bytes | None, content_type: bytes, coding: str, common: Headers
    ) -> None:
        self.path = os.fsdecode(path)  # for http.response.pathsend
        self.body = body
        self.size = len(body) if body is not None else info.st_size
        self.mtime = int(info.st_mtime)
        self.content_type = content_type
        suffix = b"-" + coding.encode("ascii") if coding else b""
        self.etag = b'"%x-%x%b"' % (info.st_mtime_ns, info.st_size, suffix)
        self.last_modified = http_date(info.st_mtime)
        self.not_modified: Headers = [(b"etag", self.etag), (b"last-modified", self.last_modified), *common]
        self.meta: Headers = [*self.not_modified, (b"accept-ranges", b"bytes")]
        if coding:
            self.meta.append((b"content-encoding", coding.encode("ascii")))
        # A body in memory goes out in one message: the core counts its Content-Length (also for HEAD).
        length = [] if body is not None else [(b"content-length", b"%d" % self.size)]
        self.full: Headers = [(b"content-type", content_type), *length, *self.meta]
        # The same answers for the core's gateway_respond_now (gateway/http/whole.py), byte for byte.
        full_fields = header_lines(
            [*self.full, (b"content-length", b"%d" % self.size)] if body is not None else self.full
        )
        self.whole: Whole | FileAnswer = (200, full_fields, body) if body is not None else FileAnswer(self)
        self.whole_not_modified: Whole = (304, header_lines(self.not_modified), b"")


class FileAnswer:
    """A large file's 200 for the core's respond-now (a Later): head lines built once, the bytes by sendfile.

    Stateless, so one per representation serves every request: begin()
    hands the cycle everything (cycle.respond_file), and the cycle's own
    task, if the socket does not take the whole file at once, is what a
    timeout or shutdown cancels.
    """

    __slots__ = ("lines", "path", "size")

    def __init__(self, rep: Representation) -> None:
        fields = [field for field in rep.full if field[0] != b"content-length"]  # last, where the core puts it
        self.lines = header_lines([*fields, (b"content-length", b"%d" % rep.size)])
        self.path = rep.path
        self.size = rep.size

    def begin(self, cycle: RequestCycle) -> None:
        cycle.respond_file(200, self.lines, self.path, self.size)

    def cancel(self) -> None:
        pass  # nothing is in flight once begin() has returned


class File:
    """A cache entry: the identity representation and the precompressed ones, by coding."""

    __slots__ = ("checked", "codings", "cost", "identity", "signature", "variants")

    def __init__(
        self, identity: Representation, variants: dict[str, Representation], signature: object, checked: float
    ) -> None:
        self.identity = identity
        self.variants = variants
        self.codings = tuple(variants)
        self.signature = signature
        self.checked = checked
        reps = (identity, *variants.values())
        self.cost = sum(ENTRY_OVERHEAD + (len(r.body) if r.body is not None else 0) for r in reps)


Found = File | Reply | AddSlash | Listing


class FileTable:
    """The files one static route serves, by raw path."""

    def __init__(
        self,
        root: bytes,
        mount: str,
        index: tuple[str, ...],
        follow: bool,
        siblings: bool,
        autoindex: bool,
        max_age: int,
    ) -> None:
        self.root = root
        self.root_slash = root if root.endswith(b"/") else root + b"/"
        self.mount = [segment.encode("utf-8") for segment in mount.split("/") if segment]
        self.index = tuple(os.fsencode(name) for name in index)
        self.follow = follow
        self.siblings = SIBLINGS if siblings else ()
        self.autoindex = autoindex
        self.cache_control: Headers = [(b"cache-control", b"max-age=%d" % max_age)] if max_age > 0 else []
        self.cache: OrderedDict[bytes, File] = OrderedDict()
        self.cache_bytes = 0

    def lookup(self, raw_path: bytes) -> Found:
        """What raw_path names now; a cached file stays as it is while its stat is unchanged."""
        located = self.locate(raw_path)
        if not isinstance(located, Located):
            self.forget(raw_path)
            return located
        now = monotonic()
        cached = self.cache.get(raw_path)
        if cached is not None and cached.signature == located.signature:
            cached.checked = now
            self.cache.move_to_end(raw_path)
            return cached
        built = self.build(located, now)
        if isinstance(built, File):
            self.remember(raw_path, built)
        else:
            self.forget(raw_path)
        return built

    def locate(self, raw_path: bytes) -> Located | Reply | AddSlash | Listing:
        below = segments_below(raw_path, self.mount)
        if isinstance(below, Reply):
            return below
        path = self.confine(self.root + b"/" + b"/".join(below) if below else self.root)
        if path is None:
            return NOT_FOUND
        info = _stat(path)
        if isinstance(info, Reply):
            return info
        if stat.S_ISDIR(info.st_mode):
            return self.locate_index(path) if raw_path.endswith(b"/") else ADD_SLASH
        if raw_path.endswith(b"/") or not stat.S_ISREG(info.st_mode):
            return NOT_FOUND
        return Located(path, info, self.find_siblings(path))

    def confine(self, path: bytes) -> bytes | None:
        """The path to open: resolved and inside root, or None; unchanged when symlinks may lead out."""
        if self.follow:
            return path
        real = os.path.realpath(path)
        return real if real == self.root or real.startswith(self.root_slash) else None

    def locate_index(self, directory: bytes) -> Located | Reply | Listing:
        for name in self.index:
            candidate = self.confine(directory + b"/" + name)
            if candidate is None:
                continue
            info = _stat(candidate)
            if not isinstance(info, Reply) and stat.S_ISREG(info.st_mode):
                return Located(candidate, info, self.find_siblings(candidate))
        return Listing(directory) if self.autoindex else NOT_FOUND

    def find_siblings(self, path: bytes) -> list[tuple[str, bytes, os.stat_result]]:
        found = []
        for coding, suffix in self.siblings:
            candidate = path + suffix
            try:
                info = os.stat(candidate)  # the usual answer, ENOENT, costs one call
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode) and self.confine(candidate) is not None:
                found.append((coding, candidate, info))
        return found

    def build(self, located: Located, now: float) -> File | Reply:
        common = [*self.cache_control, *([(b"vary", b"accept-encoding")] if located.siblings else [])]
        content_type = content_type_of(located.path)
        try:
            identity = _represent(located.path, content_type, "", common)
        except PermissionError:
            return FORBIDDEN
        except OSError:
            return NOT_FOUND
        variants = {}
        for coding, path, _ in located.siblings:
            try:
                variants[coding] = _represent(path, content_type, coding, common)
            except OSError:
                continue
        return File(identity, variants, located.signature, now)

    def remember(self, raw_path: bytes, entry: File) -> None:
        self.forget(raw_path)
        self.cache[raw_path] = entry
        self.cache_bytes += entry.cost
        while self.cache_bytes > CACHE_BYTES or len(self.cache) > CACHE_ENTRIES:
            _, oldest = self.cache.popitem(last=False)
            self.cache_bytes -= oldest.cost

    def forget(self, raw_path: bytes) -> None:
        entry = self.cache.pop(raw_path, None)
        if entry is not None:
            self.cache_bytes -= entry.cost

    def visible(self, entry: os.DirEntry[bytes]) -> bool:
        """Whether a listing shows an entry: not a symlink leading out of root, unless those are followed."""
        return self.follow or not entry.is_symlink() or self.confine(entry.path) is not None


def path_segments(raw_path: bytes) -> list[bytes] | Reply:
    """The path's segments, each percent-decoded on its own; a refusal for any that could escape."""
    if raw_path[:1] != b"/":
        return NOT_FOUND
    segments = []
    for raw in raw_path.split(b"/"):
        if not raw:
            continue
        segment = unquote_to_bytes(raw) if _PERCENT in raw else raw
        if _NUL in segment:
            return BAD_REQUEST
        if segment == b".." or _SLASH in segment or _BACKSLASH in segment:
            return NOT_FOUND
        if segment != b".":
            segments.append(segment)
    return segments


def segments_below(raw_path: bytes, mount: list[bytes]) -> list[bytes] | Reply:
    """path_segments() of a path under a route's mount, without the mount's own; a 404 outside it."""
    segments = path_segments(raw_path)
    if isinstance(segments, Reply):
        return segments
    count = len(mount)
    if segments[:count] != mount:
        return NOT_FOUND
    return segments[count:]


def _stat(path: bytes) -> os.stat_result | Reply:
    try:
        return os.stat(path)
    except PermissionError:
        return FORBIDDEN
    except (OSError, ValueError):
        return NOT_FOUND


def _represent(path: bytes, content_type: bytes, coding: str, common: Headers) -> Representation:
    """Open the file (proving it readable and regular) and keep its bytes when it is small."""
    fd = os.open(path, OPEN_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileNotFoundError(path)
        body = _read_small(fd) if info.st_size <= SMALL_FILE else None
    finally:
        os.close(fd)
    return Representation(path, info, body, content_type, coding, common)


def _read_small(fd: int) -> bytes | None:
    """The whole file, or None when it has grown past SMALL_FILE since fstat."""
    chunks: list[bytes] = []
    total = 0
    while True:
        data = os.read(fd, SMALL_FILE + 1 - total)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
        total += len(data)
        if total > SMALL_FILE:
            return None
