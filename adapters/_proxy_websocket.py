"""WebSockets through ProxyClient: the handshake sent upstream, then messages relayed both ways.

Why messages and not bytes: the proxy is an ASGI app like every handler,
and the core owns the client's socket. Relaying raw bytes after the 101
would need a way around ASGI to that socket, and would leave the client's
side of the connection outside the gateway's limits. Re-framing keeps the
client's WebSocket the core's (ws_max_message_size, ping timeout, idle
timeout, backpressure, permessage-deflate negotiated with the client and
the 101 in the access log), works the same for the app pools that reach
their processes through ProxyClient, and costs a parse and a frame per
message on each hop. Extensions are per hop: none is offered upstream
(usually near; compressing there costs more than it saves).

Rules:
- The client's websocket.connect becomes a GET with Upgrade: websocket, our
  own Sec-WebSocket-Key, the client's subprotocols and the usual forwarding
  fields (_proxy_headers.RequestHeads.build_websocket), on a new connection.
- A refused connect, or an upstream that closes without a byte of answer,
  moves on to the next upstream (a handshake is safe to send again); no
  answer within read_timeout is a 504; none left, 502 (503 when all were
  at max_connections). These reach the client as the handshake's HTTP
  response (the websocket.http.response extension).
- The upstream's 101 (its Sec-WebSocket-Accept checked) becomes
  websocket.accept with the upstream's subprotocol and headers; any other
  answer is relayed as the handshake's response, status, headers and body
  (so an upstream's 401 or 404 reaches the client as such).
- Then each message goes on as it is complete, with backpressure both ways:
  send() to the client waits on its socket while the upstream's reading
  pauses; writes upstream wait on the upstream's socket while the client's
  receive() is not called. A message from the upstream above
  MAX_UPSTREAM_MESSAGE closes both sides with 1009.
- A Close from either side is passed on with its code and reason (the
  client's Close without a code as one without a code); a side that
  vanishes closes the other (1001 to the upstream for a client gone, 1011
  to the client for an upstream gone or breaking the protocol). Pings are
  answered per hop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from typing import TYPE_CHECKING, Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, TextMessage
from wsproto.frame_protocol import CloseReason
from wsproto.utilities import ProtocolError, generate_accept_token

from adapters._proxy_connection import UpstreamConnection, UpstreamError
from adapters._proxy_headers import accept_headers, response_headers
from adapters._proxy_upstreams import Upstream
from gateway.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from adapters._proxy_client import ProxyClient

logger = logging.getLogger("gateway.adapters.proxy")
MAX_UPSTREAM_MESSAGE = 64 * 1024 * 1024
CLOSE_TIMEOUT = 5.0
QUIET_WAIT = 3600.0  # a WebSocket may stay silent: waits are re-armed, never failed, while it is open
NORMAL, GOING_AWAY, MESSAGE_TOO_BIG, INTERNAL_ERROR = 1000, 1001, 1009, 1011
_NOT_SENDABLE = {1005: NORMAL, 1006: GOING_AWAY, 1015: GOING_AWAY}  # codes that only report, never travel
DENIALS = {
    502: b"Bad Gateway: the upstream server failed; the reason is in the gateway's error log.\n",
    503: b"Service Unavailable: the upstream servers are busy; try again.\n",
    504: b"Gateway Timeout: the upstream server did not answer in time.\n",
}


async def relay_websocket(
    client: ProxyClient, scope: Scope, receive: Receive, send: Send, first: Upstream | None = None
) -> None:
    """Answer a websocket scope from an upstream (first, when given, is tried first); see the module's rules."""
    if (await receive())["type"] != "websocket.connect":
        return
    tried: list[Upstream] = []
    last: UpstreamError | None = None
    while True:
        upstream = first if first is not None and not tried else client.balancer.choose(tried)
        if upstream is None:
            error = last or UpstreamError("none is available (each is out by its health check, or none is set)")
            logger.error("proxy WebSocket %s: upstream %s: %s", scope["path"], error.upstream, error)
            await _deny(send, error.status)
            return
        tried.append(upstream)
        try:
            await _on_upstream(client, upstream, scope, receive, send)
            return
        except UpstreamError as exc:
            error = client._failed(upstream, exc)  # named and counted against its health, as for requests
            if not error.retryable or not client.others:
                logger.error("proxy WebSocket %s: upstream %s: %s", scope["path"], upstream.label, error)
                await _deny(send, error.status)
                return
            logger.warning("proxy WebSocket %s: upstream %s: %s; trying another", scope["path"], upstream.label, exc)
            last = error


async def _on_upstream(client: ProxyClient, upstream: Upstream, scope: Scope, receive: Receive, send: Send) -> None:
    connection = await upstream.pool.acquire(fresh=True)
    upstream.active += 1
    try:
        key = base64.b64encode(os.urandom(16))
        connection.begin(False, upgrade=True)
        connection.write(client.heads.build_websocket(scope, upstream.address.host_header, key))
        await _wait_for_head(connection, client.options.read_timeout)
        head = connection.head
        assert head is not None  # _wait_for_head returns once it is there
        if head.status != 101:
            upstream.succeeded()  # it answered: a refusal is the upstream's to make
            await _relay_denial(connection, head.status, head.headers, send, client.options.read_timeout)
            return
        subprotocol = _check_accept(head.headers, key, scope.get("subprotocols", []))
        upstream.succeeded()
        await send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": accept_headers(head.headers)})
        await Relay(connection, receive, send, scope["path"]).run()
    finally:
        upstream.active -= 1
        upstream.pool.release(connection, False)  # an upgraded connection is never reused


async def _wait_for_head(connection: UpstreamConnection, read_timeout: float) -> None:
    while connection.head is None:
        if connection.error is not None:
            raise UpstreamError(f"malformed response: {connection.error}")
        if connection.closed:
            retry = not connection.received_any
            raise UpstreamError("the upstream closed the connection without answering the handshake", retryable=retry)
        try:
            await connection.wait(read_timeout)
        except TimeoutError:
            connection.close()
            raise UpstreamError(f"no answer to the handshake: read_timeout ({read_timeout:g}s) passed", 504) from None


def _check_accept(headers: list[tuple[bytes, bytes]], key: bytes, offered: list[str]) -> str | None:
    """The subprotocol the upstream chose; UpstreamError for a 101 that is not an answer to our handshake."""
    fields = dict(headers)
    if fields.get(b"sec-websocket-accept", b"").strip() != generate_accept_token(key):
        raise UpstreamError("the 101 answer's Sec-WebSocket-Accept does not match the handshake's key")
    if fields.get(b"sec-websocket-extensions"):
        raise UpstreamError("the 101 answer accepts an extension that was not offered")
    chosen = fields.get(b"sec-websocket-protocol")
    if chosen is None:
        return None
    subprotocol = chosen.decode("latin-1").strip()
    if subprotocol not in offered:
        raise UpstreamError(f"the 101 answer chose the subprotocol {subprotocol!r}, which the client did not offer")
    return subprotocol


async def _relay_denial(
    connection: UpstreamConnection, status: int, headers: list[tuple[bytes, bytes]], send: Send, read_timeout: float
) -> None:
    """The upstream's refusal of the handshake, as the client's handshake response."""
    await send({"type": "websocket.http.response.start", "status": status, "headers": response_headers(headers)})
    while True:
        data = connection.take() if connection.pending else b""
        if connection.complete:
            await send({"type": "websocket.http.response.body", "body": data})
            return
        if data:
            await send({"type": "websocket.http.response.body", "body": data, "more_body": True})
            continue
        if connection.closed or connection.error is not None:
            raise UpstreamError("the upstream closed the connection before its refusal ended")
        try:
            await connection.wait(read_timeout)
        except TimeoutError:
            raise UpstreamError(f"the refusal stalled: read_timeout ({read_timeout:g}s) passed", 504) from None


async def _deny(send: Send, status: int) -> None:
    body = DENIALS.get(status, DENIALS[502])
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    with contextlib.suppress(OSError):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})


class Relay:
    """Messages both ways between the client's WebSocket (ASGI) and the upstream's (wsproto over the connection)."""

    def __init__(self, connection: UpstreamConnection, receive: Receive, send: Send, path: str) -> None:
        self.connection = connection
        self.receive = receive
        self.send = send
        self.path = path
        self.ws = Connection(ConnectionType.CLIENT)
        self.parts: list[Any] = []
        self.size = 0
        self.client_closed = False  # the client's side is over (it closed, or we told it to)

    async def run(self) -> None:
        pump = asyncio.get_running_loop().create_task(self.client_to_upstream())
        try:
            await self.upstream_to_client()
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError, UpstreamError):
                await pump

    # upstream → client ----------------------------------------------------------

    async def upstream_to_client(self) -> None:
        connection = self.connection
        deadline: float | None = None
        while True:
            if connection.pending:
                try:
                    self.ws.receive_data(connection.take())
                except ProtocolError:
                    return
                for event in self.ws.events():
                    if not await self.from_upstream(event):
                        return
                continue
            if connection.closed:
                await self.close_client(INTERNAL_ERROR, "the upstream went away")
                return
            if self.client_closed and deadline is None:
                deadline = connection.loop.time() + CLOSE_TIMEOUT
            try:
                await connection.wait(CLOSE_TIMEOUT if deadline is not None else QUIET_WAIT)
            except TimeoutError:
                if deadline is not None and connection.loop.time() >= deadline:
                    return  # the upstream did not answer our Close: give up on it
                connection.touch()

    async def from_upstream(self, event: Event) -> bool:
        """Handle one upstream event; False when the relay is over."""
        if isinstance(event, (TextMessage, BytesMessage)):
            return await self.message(event)
        if isinstance(event, Ping):
            self.write(event.response())
        elif isinstance(event, CloseConnection):
            if self.ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING):
                return await self.upstream_broke(event)  # wsproto's report of a bad frame, not a Close that came
            if self.ws.state == ConnectionState.REMOTE_CLOSING:
                self.write(event.response())
            code = _NOT_SENDABLE.get(int(event.code), int(event.code))
            await self.close_client(code, event.reason or "")
            return False
        return True

    async def upstream_broke(self, event: CloseConnection) -> bool:
        """The upstream broke the protocol: it gets the Close wsproto chose, the client a 1011 (not its fault)."""
        logger.error("proxy WebSocket %s: the upstream broke the WebSocket protocol: %s", self.path, event.reason)
        if self.ws.state == ConnectionState.OPEN:
            self.write(CloseConnection(event.code, event.reason))
        await self.close_client(INTERNAL_ERROR, "the upstream failed")
        return False

    async def message(self, event: TextMessage | BytesMessage) -> bool:
        self.parts.append(event.data)
        self.size += len(event.data)
        if self.size > MAX_UPSTREAM_MESSAGE:
            logger.error("proxy WebSocket %s: the upstream sent a message larger than %d bytes", self.path, self.size)
            self.write(CloseConnection(MESSAGE_TOO_BIG))
            await self.close_client(MESSAGE_TOO_BIG, "")
            return False
        if not event.message_finished:
            return True
        parts, self.parts, self.size = self.parts, [], 0
        if isinstance(event, TextMessage):
            message: Message = {"type": "websocket.send", "text": "".join(parts)}
        else:
            message = {"type": "websocket.send", "bytes": b"".join(parts)}
        if self.client_closed:
            return True  # the client is gone: what the upstream still says until its Close goes nowhere
        try:
            await self.send(message)
        except OSError:
            self.client_closed = True
        return True

    async def close_client(self, code: int, reason: str) -> None:
        if not self.client_closed:
            self.client_closed = True
            with contextlib.suppress(OSError):
                await self.send({"type": "websocket.close", "code": code, "reason": reason})

    # client → upstream ----------------------------------------------------------

    async def client_to_upstream(self) -> None:
        connection = self.connection
        while True:
            message = await self.receive()
            kind = message["type"]
            if kind == "websocket.disconnect":
                self.client_closed = True
                code = int(message.get("code") or NORMAL)
                if self.ws.state == ConnectionState.OPEN and code == CloseReason.NO_STATUS_RCVD:
                    self.write(CloseConnection(CloseReason.NO_STATUS_RCVD))  # a Close without a code, as it came
                elif self.ws.state == ConnectionState.OPEN:
                    self.write(CloseConnection(_NOT_SENDABLE.get(code, code), message.get("reason") or None))
                connection.touch()
                connection.wake()
                return
            if kind != "websocket.receive" or self.ws.state != ConnectionState.OPEN:
                continue
            text = message.get("text")
            self.write(TextMessage(text) if text is not None else BytesMessage(message.get("bytes") or b""))
            if connection.writing_paused:
                await connection.drain()

    def write(self, event: Event) -> None:
        if not self.connection.closed:
            self.connection.write(self.ws.send(event))
