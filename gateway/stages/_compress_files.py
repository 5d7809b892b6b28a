"""Reading an http.response.pathsend file in pieces, for the output filters that must see its bytes.

compress turns a pathsend into compressed body messages, and ranges turns it
into the requested slice. Both read with os.pread on the event loop, as the
core's own read fallback does (gateway/http/pathsend.py): a read of a piece
from the page cache costs less than a hop to a thread, and only one piece is
ever held in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

CHUNK = 256 * 1024


def open_size(path: str) -> tuple[int, int]:
    """An open read-only fd on path and the file's size; the caller closes the fd."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        return fd, os.fstat(fd).st_size
    except OSError:
        os.close(fd)
        raise


def pieces(fd: int, offset: int, end: int) -> Iterator[bytes]:
    """The bytes of fd from offset up to end (exclusive) in pieces of at most CHUNK; stops early at EOF."""
    while offset < end:
        data = os.pread(fd, min(CHUNK, end - offset), offset)
        if not data:
            return
        offset += len(data)
        yield data
