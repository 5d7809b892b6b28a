"""The write side of a connection to a backend (an HTTP upstream, a FastCGI server): flow control.

transport.write() never blocks; when the socket's send buffer fills, asyncio
calls pause_writing() and the writer of a request body waits in drain()
until resume_writing() (or until the connection is lost, which drain() turns
into the subclass's error). Shared by UpstreamConnection (_proxy_connection.py)
and FastCgiConnection (_fastcgi_client.py), which only differ in how they
name the peer and which error they raise.
"""

from __future__ import annotations

import asyncio


class WriteFlow(asyncio.Protocol):
    """Mixed into a backend connection; its __init__ sets writing_paused = False and drain_waiter = None."""

    peer = "the backend"  # in error messages: "the upstream", "the FastCGI server"
    failure: type[Exception] = ConnectionError
    transport: asyncio.Transport | None
    loop: asyncio.AbstractEventLoop
    closed: bool
    writing_paused: bool
    drain_waiter: asyncio.Future[None] | None

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self.release_drain()

    def release_drain(self) -> None:
        """Wake a writer waiting in drain() (the buffer emptied, or the connection is gone)."""
        waiter, self.drain_waiter = self.drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def write(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            raise self.failure(f"{self.peer} closed the connection while the request was being sent")
        self.transport.write(data)

    async def drain(self) -> None:
        """Wait while the socket's send buffer is full (the peer is not reading the body yet)."""
        while self.writing_paused and not self.closed:
            self.drain_waiter = self.loop.create_future()
            await self.drain_waiter
        if self.closed:
            raise self.failure(f"{self.peer} closed the connection while the request body was being sent")
