"""The connections to one upstream: opened on demand, kept alive between requests, bounded.

Rules:
- Idle connections wait last-in first-out (the most recently used is the
  least likely to have been closed by the upstream), at most `keepalive` of
  them; each is closed after `keepalive_timeout` seconds idle (a timer
  handle, no task). One found closed is dropped, never handed out.
- With `max_connections`, at most that many requests use the upstream at
  once; one more waits for a slot up to connect_timeout, then is refused
  with a retryable 503 (another upstream may have room).
- Connect failures and timeouts are retryable errors: nothing was sent.
"""

from __future__ import annotations

import asyncio

from adapters._proxy_connection import UpstreamConnection, UpstreamError


class ConnectionPool:
    """Connections to one address (a TCP host and port, or a Unix socket path)."""

    def __init__(
        self,
        label: str,
        host: str,
        port: int,
        path: str,
        keepalive: int,
        keepalive_timeout: float,
        connect_timeout: float,
        max_connections: int = 0,
    ) -> None:
        self.label = label
        self.host = host
        self.port = port
        self.path = path
        self.keepalive = keepalive
        self.keepalive_timeout = keepalive_timeout
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.slots = asyncio.Semaphore(max_connections) if max_connections else None
        self.idle: list[UpstreamConnection] = []
        self.closed = False  # the upstream was removed or the client closed: nothing more is kept
        self.opened = 0  # connections opened so far (tests read it to see reuse)

    async def acquire(self, fresh: bool = False) -> UpstreamConnection:
        """A connection for one request: the newest idle one still open (unless fresh), else a new one."""
        if self.slots is not None:
            await self._take_slot(self.slots)
        try:
            while self.idle and not fresh:
                connection = self.idle.pop()
                if not connection.closed:
                    return connection
            return await self.connect()
        except BaseException:
            if self.slots is not None:
                self.slots.release()
            raise

    async def _take_slot(self, slots: asyncio.Semaphore) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                await slots.acquire()
        except TimeoutError:
            raise UpstreamError(
                f"all {self.max_connections} connections (max_connections) stayed busy for {self.connect_timeout:g}s",
                status=503,
                retryable=True,
            ) from None

    def release(self, connection: UpstreamConnection, reusable: bool) -> None:
        """Give a connection back after its request: kept idle if it can carry another, else closed."""
        if reusable and self.keepalive and not connection.closed and not self.closed:
            if len(self.idle) >= self.keepalive:
                self.idle.pop(0).close()
            self.idle.append(connection)
            connection.idle_timer = connection.loop.call_later(self.keepalive_timeout, self._expire, connection)
        else:
            connection.close()
        if self.slots is not None:
            self.slots.release()

    def _expire(self, connection: UpstreamConnection) -> None:
        connection.idle_timer = None
        if connection in self.idle:
            self.idle.remove(connection)
        connection.close()

    async def connect(self) -> UpstreamConnection:
        """A new connection within connect_timeout; UpstreamError (retryable) when that fails."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                connection = await self._open()
        except TimeoutError:
            raise UpstreamError(
                f"no connection within connect_timeout ({self.connect_timeout:g}s)", status=504, retryable=True
            ) from None
        except OSError as exc:
            raise UpstreamError(f"cannot connect: {exc.strerror or exc}", retryable=True) from None
        self.opened += 1
        return connection

    async def _open(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        if self.path:
            _, connection = await loop.create_unix_connection(UpstreamConnection, self.path)
        else:
            _, connection = await loop.create_connection(UpstreamConnection, self.host, self.port)
        return connection

    def close(self) -> None:
        """Close the idle connections (at shutdown); those in use close when their request ends."""
        self.closed = True
        for connection in self.idle:
            connection.close()
        self.idle.clear()
