"""Sending a file for ASGI's http.response.pathsend.

Measured with bench/pathsend.py (numbers in the README's performance notes):
on uvloop, which has no loop.sendfile, os.sendfile straight to the socket
whenever the transport's buffer is empty, and the transport for whatever the
socket would not take at once. On plain asyncio, loop.sendfile does the same
job itself. Files above READ_ONCE_LIMIT are never read whole into memory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from gateway.http.protocol import HttpProtocol

CHUNK = 256 * 1024
MODE_ENV = "GATEWAY_PATHSEND"  # "sendfile" (default) or "read": for bench/pathsend.py only


async def send_file(protocol: HttpProtocol, file: BinaryIO, count: int) -> int:
    """Write count bytes of file to the client; returns the bytes written."""
    if count <= 0:
        return 0  # loop.sendfile and os.sendfile read a count of 0 as "to the end"
    transport = protocol.transport
    sock = transport.get_extra_info("socket")
    if _MODE == "read" or sock is None or transport.get_extra_info("sslcontext") is not None:
        return await _read_and_write(protocol, file, count)
    if not protocol.uses_uvloop:
        return await protocol.loop.sendfile(transport, file, 0, count)
    return await _sendfile_hybrid(protocol, file.fileno(), sock.fileno(), count)


async def _read_and_write(protocol: HttpProtocol, file: BinaryIO, count: int) -> int:
    offset = 0
    while offset < count and not protocol.closed:
        data = os.pread(file.fileno(), min(CHUNK, count - offset), offset)
        if not data:
            break
        protocol.transport.write(data)
        offset += len(data)
        if protocol.write_paused:
            await protocol.drain()
    return offset


async def _sendfile_hybrid(protocol: HttpProtocol, file_fd: int, sock_fd: int, count: int) -> int:
    """os.sendfile while the transport holds nothing, the transport otherwise.

    uvloop owns the socket's fd, so we cannot wait for it to be writable
    ourselves: when the socket is full, chunks go through the transport, which
    waits for writability, and sendfile resumes once its buffer is empty.
    """
    transport = protocol.transport
    offset = 0
    while offset < count and not protocol.closed:
        if transport.get_write_buffer_size() == 0:
            try:
                sent = os.sendfile(sock_fd, file_fd, offset, count - offset)
            except BlockingIOError:
                sent = -1
            except OSError:
                return offset
            if sent == 0:
                break
            if sent > 0:
                offset += sent
                continue
        data = os.pread(file_fd, min(CHUNK, count - offset), offset)
        if not data:
            break
        transport.write(data)
        offset += len(data)
        if protocol.write_paused:
            await protocol.drain()
    return offset


_MODE = os.environ.get(MODE_ENV, "sendfile")
