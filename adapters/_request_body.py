"""The request body for programs that read stdin (CGI, FastCGI): streamed, or spooled when its length is unknown.

CGI and FastCGI responders learn the body's size from CONTENT_LENGTH and read
exactly that much (PHP reads nothing without it). A Content-Length body is
streamed as it arrives, message by message, under the core's flow control, so
a 1 GiB upload never sits in memory. A chunked body has no length until its
end: it is spooled first (in memory up to SPOOL_IN_MEMORY, then a temporary
file; the core's max_body_size bounds it), as nginx does with
fastcgi_request_buffering.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from typing import IO

from gateway.types import Receive, Scope

SPOOL_IN_MEMORY = 1024 * 1024
SPOOL_READ = 256 * 1024


class ClientGone(Exception):
    """The client disconnected while its body was being read."""


def declared_length(scope: Scope) -> int | None:
    """The body's length from Content-Length, 0 for no body, None when chunked (length unknown)."""
    chunked = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value)
        if name == b"transfer-encoding":
            chunked = True
    return None if chunked else 0


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """Each non-empty piece of the body as the client sends it."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("the client disconnected before its body ended")
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def spool(receive: Receive) -> tuple[int, IO[bytes]]:
    """The whole body in a file object positioned at 0, and its length."""
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 (returned open)
    size = 0
    try:
        async for chunk in body_chunks(receive):
            spooled.write(chunk)
            size += len(chunk)
    except BaseException:
        spooled.close()
        raise
    spooled.seek(0)
    return size, spooled


def spooled_chunks(spooled: IO[bytes]) -> AsyncIterator[bytes]:
    """A spooled body read back in pieces, as body_chunks yields a live one."""

    async def chunks() -> AsyncIterator[bytes]:
        with spooled:
            while chunk := spooled.read(SPOOL_READ):
                yield chunk

    return chunks()


async def request_body(scope: Scope, receive: Receive) -> tuple[int, AsyncIterator[bytes]]:
    """(CONTENT_LENGTH, the body's pieces): streamed when its length is known, else spooled first."""
    length = declared_length(scope)
    if length is None:
        length, spooled = await spool(receive)
        return length, spooled_chunks(spooled)
    if length == 0:
        return 0, no_body()
    return length, body_chunks(receive)


async def no_body() -> AsyncIterator[bytes]:
    """A body of nothing, for a request without one."""
    return
    yield  # pragma: no cover (makes this an async generator)
