"""The HTTP rules a static file server answers by, without I/O (RFC 9110 §8.8, §12.5.3, §13, §14).

Rules:
- Validators: a strong ETag per file (mtime and size, plus the coding of a
  precompressed sibling) and Last-Modified at whole seconds.
- If-None-Match compares weakly and, when present, If-Modified-Since is not
  looked at (§13.2.2). An unparsable date is ignored (§13.1.3).
- Range: only "bytes"; a header we cannot parse is ignored (a full 200), one
  whose ranges all fall outside the file is a 416 (§14.1.1). Ranges are
  sorted and overlapping or adjacent ones merged (§14.3 allows it), and more
  than MAX_RANGES ranges are ignored: both keep multipart answers small.
- If-Range holds only for our exact strong ETag or exact Last-Modified (§13.1.5).
- Content-Type from the extension; text/* says charset=utf-8.
- A precompressed sibling by the compress stage's Accept-Encoding rules
  (q-values, `*`, identity rated higher wins).
"""

from __future__ import annotations

import email.utils
import mimetypes
import os

from gateway.stages._compress_negotiate import negotiate

MAX_RANGES = 64
_DIGITS_MAX = 18  # longer numbers are beyond any file and would only cost int() time
_codings_memo: dict[tuple[bytes, tuple[str, ...]], str | None] = {}
MEDIA_TYPES = {
    ".html": "text/html",
    ".htm": "text/html",
    ".css": "text/css",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".csv": "text/csv",
    ".xml": "application/xml",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".webmanifest": "application/manifest+json",
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".mp3": "audio/mpeg",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    ".br": "application/octet-stream",
}


def http_date(timestamp: float) -> bytes:
    return email.utils.formatdate(timestamp, usegmt=True).encode("ascii")


def parse_http_date(value: bytes) -> int | None:
    """Seconds since the epoch of an HTTP-date (any of the three RFC 9110 forms), or None."""
    parsed = email.utils.parsedate_tz(value.decode("latin-1"))
    if parsed is None:
        return None
    try:
        return email.utils.mktime_tz(parsed)
    except (OverflowError, ValueError):
        return None


def etag_listed(header: bytes, etag: bytes) -> bool:
    """If-None-Match: does the list name our ETag (weak comparison) or "*"?"""
    if header == etag:
        return True
    header = header.strip()
    if header == b"*":
        return True
    for tag in header.split(b","):
        tag = tag.strip()
        if tag.startswith(b"W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


def not_modified(inm: bytes | None, ims: bytes | None, etag: bytes, last_modified: bytes, mtime: int) -> bool:
    """True when a GET or HEAD gets 304 Not Modified (§13.2.2 steps 3 and 4)."""
    if inm is not None:
        return etag_listed(inm, etag)
    if ims is None:
        return False
    if ims == last_modified:
        return True
    since = parse_http_date(ims)
    return since is not None and mtime <= since


def if_range_holds(value: bytes, etag: bytes, last_modified: bytes) -> bool:
    return value.strip() in (etag, last_modified)


def parse_ranges(value: bytes, size: int) -> list[tuple[int, int]] | None:
    """Inclusive (first, last) byte ranges; None to ignore the header, [] when none is satisfiable."""
    unit, equals, specs = value.partition(b"=")
    if not equals or unit.strip().lower() != b"bytes":
        return None
    items = [item.strip(b" \t") for item in specs.split(b",")]
    items = [item for item in items if item]
    if not items or len(items) > MAX_RANGES:
        return None
    ranges: list[tuple[int, int]] = []
    for item in items:
        first, dash, last = item.partition(b"-")
        if not dash or (first and not first.isdigit()) or (last and not last.isdigit()) or not (first or last):
            return None
        if first:
            start = _number(first, size)
            end = _number(last, size) if last else size - 1
            if last and end < start:  # "5-1" is not a range (§14.1.1)
                return None
            if start < size:
                ranges.append((start, min(end, size - 1)))
        else:
            suffix = _number(last, size)
            if suffix > 0 and size > 0:
                ranges.append((max(0, size - suffix), size - 1))
    return _coalesce(ranges)


def _number(digits: bytes, cap: int) -> int:
    return int(digits) if len(digits) <= _DIGITS_MAX else cap


def _coalesce(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def multipart_plan(
    ranges: list[tuple[int, int]], size: int, content_type: bytes, boundary: bytes
) -> tuple[list[tuple[bytes, int, int]], bytes, int]:
    """A multipart/byteranges body (RFC 9110 §14.6): (part head, first, last) per range, the closing
    delimiter, and the total length for Content-Length."""
    parts: list[tuple[bytes, int, int]] = []
    total = 0
    for start, end in ranges:
        head = b"\r\n--%b\r\ncontent-type: %b\r\ncontent-range: bytes %d-%d/%d\r\n\r\n" % (
            boundary,
            content_type,
            start,
            end,
            size,
        )
        parts.append((head, start, end))
        total += len(head) + end - start + 1
    tail = b"\r\n--%b--\r\n" % boundary
    return parts, tail, total + len(tail)


def preferred_coding(accept_encoding: bytes, available: tuple[str, ...]) -> str | None:
    """The coding of `available` (in the server's order of preference) the client rates highest.

    None for identity: also when the client rates identity above every
    sibling (the compress stage's negotiation, so both answer alike).
    """
    key = (accept_encoding, available)
    try:
        return _codings_memo[key]
    except KeyError:
        pass
    best = negotiate(accept_encoding, available)
    if len(_codings_memo) >= 256:  # a handful of distinct values in practice; stay bounded anyway
        _codings_memo.clear()
    _codings_memo[key] = best
    return best


def content_type_of(path: bytes) -> bytes:
    """Content-Type by the file name's extension: our table for the web's types, then the system's.

    A name the system reads as compressed ("x.tar.bz2") is application/octet-stream: its
    encoding is the file's own, never a Content-Encoding to undo.
    """
    name = os.fsdecode(path.rpartition(b"/")[2])
    kind = MEDIA_TYPES.get(os.path.splitext(name)[1].lower())
    if kind is None:
        guessed, encoding = mimetypes.guess_type(name, strict=False)
        kind = guessed if guessed is not None and encoding is None else "application/octet-stream"
    if kind.startswith("text/"):
        kind += "; charset=utf-8"
    return kind.encode("latin-1")
