"""One TLS listener: accept, look at the first byte, handshake, then the HTTP core as on any listener.

Rules:
- A TLS connection starts with a handshake record (content type 0x16,
  RFC 8446 §5.1). The first byte is peeked (MSG_PEEK, so OpenSSL still reads
  it) before any TLS starts: anything else is a plain-HTTP client on the
  HTTPS port, which gets a plain-text 400 saying so, as nginx does, rather
  than a handshake failure it would show as a reset.
- header_timeout runs from the accept: waiting for the first byte, the
  handshake and the request head share it, so a client that connects and
  never completes a handshake is cut off like one that never sends a head.
- Connections still in their handshake are not the core's yet (its
  max_connections counts served ones); they are bounded by max_connections
  themselves, tracked, and cancelled when the listener closes.
- The certificates are asked for per connection (`certificates()`), so a
  reload serves new connections the new ones and leaves open ones alone.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from gateway.http.protocol import HEAD_TIMER, LINGER_SECONDS, HttpProtocol
from gateway.http.responses import error_response

if TYPE_CHECKING:
    from gateway.http.state import ServerState

logger = logging.getLogger("gateway.error")
HANDSHAKE_RECORD = b"\x16"
ACCEPT_RETRY = 0.5  # seconds to wait when accept() fails for want of file descriptors
PLAIN_HTTP_DETAIL = "The plain HTTP request was sent to an HTTPS port: use an https:// address for this port."


class TlsHttpProtocol(HttpProtocol):
    """The HTTP core on a TLS connection: its head timeout counts from the accept, not the handshake's end.

    Its requests get scope["scheme"] = "https" from ServerState.scope_template (the transport has an
    sslcontext); a WebSocket scope on such a connection is "wss", derived from that same scheme.
    """

    def __init__(self, state: ServerState, accepted: float) -> None:
        super().__init__(state)
        self.accepted = accepted

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.timer == HEAD_TIMER:
            self.deadline = self.accepted + self.header_timeout

    def eof_received(self) -> bool:
        """TLS has no half-close: the transport closes after this whatever it returns (and warns on True)."""
        super().eof_received()
        return False


class PlainHttpRefusal(asyncio.Protocol):
    """A plain-HTTP client on a TLS port: one 400 in words, then a lingering close."""

    def __init__(self, state: ServerState, client_ip: str) -> None:
        self.state = state
        self.client_ip = client_ip
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)
        self.state.access_log.log_refused(cast(Any, self), 400)
        stream.write(error_response(400, PLAIN_HTTP_DETAIL, self.state.common))
        if stream.can_write_eof():
            stream.write_eof()  # then read and discard what the client still sends, so it is not reset
        self.timer = self.state.loop.call_later(LINGER_SECONDS, stream.close)

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False  # the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()


class TlsAcceptor:
    """Accepts on one listening socket and serves each connection over TLS (duck-types asyncio.Server.close)."""

    def __init__(self, sock: socket.socket, certificates: Callable[[], ssl.SSLContext], state: ServerState) -> None:
        self.sock = sock
        self.certificates = certificates
        self.state = state
        self.loop = state.loop
        self.pending: set[asyncio.Task[None]] = set()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = self.loop.create_task(self._accept())

    def close(self) -> None:
        """Stop accepting; connections still in their handshake are dropped, served ones drain with the core's."""
        if self.task is not None:
            self.task.cancel()
        for task in list(self.pending):
            task.cancel()
        self.sock.close()

    async def _accept(self) -> None:
        while True:
            try:
                conn, _ = await self.loop.sock_accept(self.sock)
            except OSError as exc:  # EMFILE/ENFILE/ENOBUFS: wait for descriptors, as asyncio's own accept loop does
                logger.error("cannot accept a TLS connection: %s; retrying in %.1fs", exc, ACCEPT_RETRY)
                await asyncio.sleep(ACCEPT_RETRY)
                continue
            if len(self.pending) >= self.state.limits.max_connections:
                conn.close()  # a flood of handshakes: the ones already waiting are enough
                continue
            conn.setblocking(False)
            if conn.family != socket.AF_UNIX:
                # As create_server does for its own: without it Nagle holds a response's last TLS record back.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self.loop.create_task(self._serve(conn, self.loop.time()))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _serve(self, conn: socket.socket, accepted: float) -> None:
        timeout = self.state.limits.header_timeout
        try:
            async with asyncio.timeout(timeout):
                first = await self._first_byte(conn)
        except (TimeoutError, OSError):
            first = b""
        except asyncio.CancelledError:
            conn.close()  # the listener closed while this client was silent
            raise
        if not first:
            conn.close()  # gone, or silent for header_timeout: nothing to answer
            return
        state = self.state
        client = _client_ip(conn)
        try:
            # From here the transport owns the socket and closes it, also when this fails or is cancelled.
            if first != HANDSHAKE_RECORD:
                await self.loop.connect_accepted_socket(lambda: PlainHttpRefusal(state, client), conn)
                return
            left = max(0.1, accepted + timeout - self.loop.time())
            await self.loop.connect_accepted_socket(
                lambda: TlsHttpProtocol(state, accepted), conn, ssl=self.certificates(), ssl_handshake_timeout=left
            )
        except (OSError, ssl.SSLError, TimeoutError) as exc:
            logger.debug("TLS connection from %s failed before HTTP: %s", client or "a client", exc)

    async def _first_byte(self, conn: socket.socket) -> bytes:
        """The connection's first byte, left unread; b"" when the client closed first.

        The wait watches a duplicate of the descriptor: uvloop's transport for
        a descriptor that had a reader of its own served at half speed
        (measured: twice the CPU per request), and the duplicate leaves the
        original untouched by the loop until the transport takes it.
        """
        try:
            return conn.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            pass
        readable = self.loop.create_future()
        watched = os.dup(conn.fileno())
        try:
            self.loop.add_reader(watched, _resolve, readable)
            try:
                await readable
            finally:
                self.loop.remove_reader(watched)
        finally:
            os.close(watched)
        return conn.recv(1, socket.MSG_PEEK)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _client_ip(conn: socket.socket) -> str:
    try:
        peer = conn.getpeername()
    except OSError:
        return ""
    return peer[0] if isinstance(peer, tuple) else ""
