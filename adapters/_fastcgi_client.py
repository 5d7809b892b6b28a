"""FastCGI connections over Unix or TCP sockets, and the pool that bounds them.

One request at a time per connection (php-cgi and php-fpm cannot multiplex,
so request id is always 1). The pool holds at most `size` connections: a
FastCGI child serves one connection until that connection closes, so with
FCGI_KEEP_CONN more pooled connections than children would leave requests
queued behind idle connections (measured with nginx: about a second). Beyond
`size`, requests wait their turn for a connection.

A kept connection whose child exits is seen closing while idle and dropped;
the pool never hands out a closed one. One that receives bytes while idle
is closed: every request is id 1, so they would answer the next request. A child that exits after
PHP_FCGI_MAX_REQUESTS would close its connection just as the next request
is written to it, so a connection that has carried `max_uses` requests is
closed by us first (php.py passes pool.max_requests).

Flow control both ways: writing STDIN waits while the socket's buffer is
full (pause_writing), and reading STDOUT pauses while more than HIGH_WATER
bytes wait for a slow client.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections import deque
from time import monotonic
from typing import Any, Protocol

from adapters._backend_writes import WriteFlow
from adapters._fastcgi_records import ProtocolError, Record, RecordReader

HIGH_WATER = 256 * 1024
CONNECT_RETRY_FIRST = 0.02
CONNECT_RETRY_MAX = 0.5
RETRYABLE_CONNECT = frozenset({errno.ENOENT, errno.ECONNREFUSED, errno.EAGAIN})


class BackendError(Exception):
    """The FastCGI server broke the exchange (a malformed record, a closed connection); the message is for the log."""


class RecordWaiter(Protocol):
    """A taskless request on a connection (_fastcgi_later.py): offered each read, told of records or the end."""

    def data_arrived(self, data: bytes) -> bool: ...

    def records_arrived(self) -> None: ...


class FastCgiConnection(WriteFlow):
    """One socket to a FastCGI server; records arrive in `pending`, a reader awaits them."""

    peer = "the FastCGI server"
    failure = BackendError

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = RecordReader()
        self.pending: deque[Record] = deque()
        self.buffered = 0
        self.closed = False
        self.error: ProtocolError | None = None
        self.reading_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.writing_paused = False
        self.uses = 0
        self.idle = False  # kept in the pool between requests: whatever arrives then belongs to no request
        self.taken_at = 0.0  # when a request took it from the idle ones (the loop's clock)
        self.later: RecordWaiter | None = None  # a taskless request's, called as records arrive (_fastcgi_later.py)
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # set by connection_made

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        # Kept for the waits: asyncio.get_running_loop() makes a getpid() system call each time on 3.11.
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        if self.idle:
            # Records no request asked for (every request is id 1): kept, they would answer the next
            # request on this connection. Such a server is done with it, as nginx decides.
            self.close()
            return
        later = self.later
        if later is not None and not self.pending and not self.reader.buffered and later.data_arrived(data):
            return  # a whole response, answered from these bytes
        try:
            records = self.reader.feed(data)
        except ProtocolError as exc:
            self.error = exc
            self.close()
            return
        for record in records:
            self.pending.append(record)
            self.buffered += len(record.content)
        if self.buffered > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        if self.later is not None:
            self.later.records_arrived()
        else:
            self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too: a FastCGI server that stops sending is done with us

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.later is not None:
            self.later.records_arrived()
        self._wake()
        self.release_drain()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def records(self) -> list[Record]:
        """The records that arrived since the last call, waiting for one; [] once the connection is closed."""
        while not self.pending:
            if self.error is not None:
                raise BackendError(f"malformed FastCGI from the server: {self.error}")
            if self.closed:
                return []
            self.waiter = self.loop.create_future()
            await self.waiter
        records = list(self.pending)
        self.consumed()
        return records

    def consumed(self) -> None:
        """The pending records are taken: read on."""
        self.pending.clear()
        self.buffered = 0
        if self.reading_paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()
            self.reading_paused = False

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
        self.closed = True


class SlotWaiter(Protocol):
    """A request queued for a connection without a task of its own (_fastcgi_later.py)."""

    def slot_given(self) -> None: ...


class FastCgiPool:
    """At most `size` connections to one address, reused when keep_conn is on.

    A request holds one of `size` slots from acquire (or take_slot) to
    release. Requests beyond that queue in order: a task's as a future it
    awaits, a taskless one's (a Later) as a SlotWaiter called when its turn
    comes; release hands the slot straight to the first of them.
    """

    def __init__(self, address: str, size: int, keep_conn: bool, connect_timeout: float, max_uses: int = 0) -> None:
        self.address = address
        self.max_uses = max_uses
        self.size = size
        self.keep_conn = keep_conn
        self.connect_timeout = connect_timeout
        self.free = size or sys.maxsize  # slots not held
        self.waiting: deque[asyncio.Future[None] | SlotWaiter] = deque()
        self.idle: list[FastCgiConnection] = []
        self.busy = 0  # connections handed out: requests the server is serving (for the metrics)
        self.queued = 0  # requests waiting for a connection

    async def acquire(self, held: bool = False) -> FastCgiConnection:
        """A connection for one request: an idle one still open, else a new one (held: the slot is ours already)."""
        if not held and not self.take_slot():
            await self._wait_slot()
        try:
            connection = self.take_idle()
            if connection is None:
                self.busy += 1
                connection = await self.connect()
                connection.uses = 1
            return connection
        except BaseException:
            self.busy -= 1
            self.give_slot()
            raise

    def take_slot(self) -> bool:
        """A slot now, if one is free and nobody is queued before us."""
        if self.free and not self.waiting:
            self.free -= 1
            return True
        return False

    def take_idle(self) -> FastCgiConnection | None:
        """An idle connection still open, counted busy, for a request that holds a slot; None when there is none."""
        idle = self.idle
        while idle:
            connection = idle.pop()
            if not connection.closed:
                connection.idle = False
                connection.taken_at = monotonic()
                connection.uses += 1
                self.busy += 1
                return connection
        return None

    def queue(self, waiter: SlotWaiter) -> None:
        self.queued += 1
        self.waiting.append(waiter)

    def unqueue(self, waiter: SlotWaiter) -> None:
        """A queued request gone (timed out, shut down) before its turn."""
        if waiter in self.waiting:
            self.waiting.remove(waiter)
            self.queued -= 1

    async def _wait_slot(self) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.queued += 1
        self.waiting.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.give_slot()  # given as we were cancelled: pass it on
            elif future in self.waiting:
                self.waiting.remove(future)
                self.queued -= 1
            raise

    def give_slot(self) -> None:
        """A slot is released: to the first request queued, else back to the free ones."""
        waiting = self.waiting
        while waiting:
            waiter = waiting.popleft()
            self.queued -= 1
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_result(None)
                    return
            else:
                waiter.slot_given()
                return
        self.free += 1

    def release(self, connection: FastCgiConnection, reusable: bool) -> None:
        worn = self.max_uses and connection.uses >= self.max_uses
        # Records or a partial one left after END_REQUEST (in the same read) belong to no request.
        leftover = connection.pending or connection.reader.buffered
        if reusable and self.keep_conn and not connection.closed and not worn and not leftover:
            connection.idle = True
            self.idle.append(connection)
        else:
            connection.close()
        self.busy -= 1
        self.give_slot()

    async def connect(self) -> FastCgiConnection:
        """A new connection; a server that is (re)starting gets until connect_timeout to accept."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        delay = CONNECT_RETRY_FIRST
        while True:
            try:
                return await self._open()
            except OSError as exc:
                if exc.errno not in RETRYABLE_CONNECT or loop.time() + delay > deadline:
                    raise BackendError(f"cannot connect to the FastCGI server at {self.address}: {exc}") from exc
            await asyncio.sleep(delay)
            delay = min(delay * 2, CONNECT_RETRY_MAX)

    async def _open(self) -> FastCgiConnection:
        loop = asyncio.get_running_loop()
        if self.address.startswith("unix:"):
            _, protocol = await loop.create_unix_connection(FastCgiConnection, self.address[5:])
        else:
            host, _, port = self.address.rpartition(":")
            _, protocol = await loop.create_connection(FastCgiConnection, host.strip("[]"), int(port))
            sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return protocol

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def check_address(address: str) -> str | None:
    """Why an `address` value is unusable, or None: "unix:/path", "host:port", "[v6]:port"."""
    if address.startswith("unix:"):
        return None if address[5:].startswith("/") or address[5:] else "a Unix socket needs a path: unix:/run/x.sock"
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return 'expected "unix:/path/to.sock" or "host:port", as in "127.0.0.1:9000"'
    return None
