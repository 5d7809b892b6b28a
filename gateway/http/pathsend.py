"""Sending a file for ASGI's http.response.pathsend.

Measured with bench/pathsend.py (numbers in the README's performance notes):
on uvloop, which has no loop.sendfile, os.sendfile straight to the socket,
waiting for writability on a dup() of its fd (one per connection) when the
socket is full. On plain asyncio, loop.sendfile does the same job itself.
Files are never read whole into memory (GATEWAY_PATHSEND=read, for the
bench, reads in chunks).

With os.sendfile the socket is corked (TCP_CORK) from the response head to
the file's end, as nginx's tcp_nopush does: the head no longer leaves in a
packet of its own. bench/static.py's 1 MiB file: 1.18x nginx corked, 0.94x
not, paired rounds against the same nginx.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.http.protocol import HttpProtocol

CHUNK = 256 * 1024
OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a FIFO does not hang the loop at open()
MODE_ENV = "GATEWAY_PATHSEND"  # "sendfile" (default) or "read": for bench/pathsend.py only


async def send_file(protocol: HttpProtocol, head: bytes, fd: int, count: int) -> int:
    """Write the response head, then count bytes of the file open at fd, to the client; the file's bytes written."""
    transport = protocol.transport
    if count <= 0:
        transport.write(head)
        return 0  # loop.sendfile and os.sendfile read a count of 0 as "to the end"
    sent = send_now(protocol, head, fd, count)
    if sent is not None:
        return sent if sent == count else await send_rest(protocol, fd, sent, count)
    transport.write(head)
    if _MODE != "read" and connection_socket(protocol):  # plain asyncio: loop.sendfile does it
        with os.fdopen(fd, "rb", closefd=False) as file:  # (it takes a file object)
            return await protocol.loop.sendfile(transport, file, 0, count)
    return await _read_and_write(protocol, fd, count)


def send_now(protocol: HttpProtocol, head: bytes, fd: int, count: int) -> int | None:
    """The head, then as much of the file as the socket takes at once: the file's bytes sent, without waiting.

    The socket stays corked until send_rest() has sent the rest (or is
    uncorked here when all went out). None where this connection does not
    use os.sendfile (TLS, plain asyncio, GATEWAY_PATHSEND=read): nothing was
    written, and send_file() does it all.
    """
    if _MODE == "read" or not protocol.uses_uvloop:
        return None
    sock = connection_socket(protocol)
    if sock is None:
        return None
    corked = _cork(sock, True)
    transport = protocol.transport
    transport.write(head)
    sent = 0
    if not transport.get_write_buffer_size():  # else the head waits in the transport: sendfile must not pass it
        try:
            sent = os.sendfile(sock.fileno(), fd, 0, count)
        except BlockingIOError:
            pass
        except OSError:
            return 0  # the client has gone: send_rest() finds the connection closed
    if sent == count and corked:
        _cork(sock, False)
    return sent


async def send_rest(protocol: HttpProtocol, fd: int, offset: int, count: int) -> int:
    """The file's bytes from offset to count after send_now(), waiting as the socket fills; then uncorks."""
    sock = protocol.file_socket
    if sock is None:
        return offset
    try:
        return await _sendfile_hybrid(protocol, fd, sock.fileno(), offset, count)
    finally:
        if not protocol.closed:
            _cork(sock, False)


def connection_socket(protocol: HttpProtocol) -> socket.socket | None:
    """The connection's socket for sendfile and TCP_CORK, or None (TLS, or a transport without one).

    A dup() of the transport's fd, made at the connection's first file and
    closed by the protocol when the connection ends: uvloop refuses
    add_writer on its own fd, and each get_extra_info("socket").setsockopt()
    builds a socket object with a getsockname() call.
    """
    sock = protocol.file_socket
    if sock is None and not protocol.file_socket_checked:
        protocol.file_socket_checked = True
        transport = protocol.transport
        own = transport.get_extra_info("socket")
        if own is not None and transport.get_extra_info("sslcontext") is None:
            sock = protocol.file_socket = socket.socket(own.family, own.type, own.proto, os.dup(own.fileno()))
    return sock


def _cork(sock: socket.socket, on: bool) -> bool:
    """TCP_CORK: hold partial segments, so the head leaves with the file's first bytes (nginx's tcp_nopush)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)
    except OSError:
        return False
    return True


async def _read_and_write(protocol: HttpProtocol, fd: int, count: int) -> int:
    offset = 0
    while offset < count and not protocol.closed:
        data = os.pread(fd, min(CHUNK, count - offset), offset)
        if not data:
            break
        protocol.transport.write(data)
        offset += len(data)
        if protocol.write_paused:
            await protocol.drain()
    return offset


async def _sendfile_hybrid(protocol: HttpProtocol, file_fd: int, sock_fd: int, offset: int, count: int) -> int:
    """os.sendfile from offset to count, waiting for writability on sock_fd, the connection's own dup.

    The transport must hold nothing while sendfile writes beside it.
    """
    transport = protocol.transport
    loop = protocol.loop
    while offset < count and not protocol.closed:
        if transport.get_write_buffer_size():
            await _transport_drained(protocol)
            continue
        try:
            sent = os.sendfile(sock_fd, file_fd, offset, count - offset)
        except BlockingIOError:
            await _writable(protocol, loop, sock_fd)
            continue
        except OSError:
            break
        if sent == 0:
            break
        offset += sent
    return offset


async def _writable(protocol: HttpProtocol, loop: asyncio.AbstractEventLoop, fd: int) -> None:
    """Wait until the socket takes more; the protocol's sweep cancels a wait longer than send_timeout."""
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_writer(fd, wake)
    protocol.file_waiting_since = loop.time()
    try:
        await ready
    finally:
        protocol.file_waiting_since = 0.0
        loop.remove_writer(fd)


async def _transport_drained(protocol: HttpProtocol) -> None:
    """Wait until the transport's own buffer (the response head, rarely) has gone out."""
    while protocol.transport.get_write_buffer_size() and not protocol.closed:
        if protocol.write_paused:
            await protocol.drain()
        else:
            await asyncio.sleep(0.001)


_MODE = os.environ.get(MODE_ENV, "sendfile")
