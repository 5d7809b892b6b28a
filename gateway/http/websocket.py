"""One WebSocket connection: the ASGI `websocket` scope over wsproto frames, once the HTTP core hands it over.

Rules:
- HttpProtocol hands the transport over (transport.set_protocol) when a
  WebSocket handshake arrives with no other request in flight. From then on
  this object owns the connection: it stands in the server's connection set
  (connection limits, the once-a-second timer sweep, graceful stop) and
  writes the request's access log line when the connection ends (status 101,
  the connection's whole duration).
- A handshake RFC 6455 refuses is answered here (400, 426) without the app.
- Before the app accepts: websocket.accept writes the 101; websocket.close,
  or the app returning without a word, is a 403 (ASGI spec); the
  websocket.http.response extension sends the app's own HTTP response; an
  exception is a 500 and no answer within request_timeout a 504. Every one
  of these but the 101 ends the connection.
- After accept: receive() returns whole messages, assembled from frames and
  each at most ws_max_message_size bytes (beyond: close 1009). Reading
  pauses while more than INBOX_HIGH bytes of messages wait for the app, so
  a fast sender is held back by TCP. send() waits while the transport holds
  more than its high-water mark, so a slow reader holds the app back, and
  memory stays bounded (the per-connection send queue is that buffer).
- With permessage-deflate, input is fed to wsproto in DEFLATE_SLICE pieces,
  so one read can inflate to at most ~1000 times a slice before the size
  check runs (a zip bomb meets ws_max_message_size, not the memory limit).
- Closing: the app's websocket.close sends a Close frame; the peer's Close is
  answered at once; the server closes TCP when both have been seen or
  CLOSE_TIMEOUT passed. receive() then returns websocket.disconnect with the
  peer's code (1005 when its Close had none), the server's own when it
  closed first (1009, 1001 idle, 1012 server stopping), 1006 when the
  connection ended without a Close; send() raises ClientDisconnect.
- Timers run from the server's sweep (one-second resolution): a ping after
  ws_ping_interval without a pong, a drop when none comes within
  ws_ping_timeout, a close after ws_idle_timeout without a message.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from time import perf_counter
from typing import TYPE_CHECKING

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Event, Ping, Pong, TextMessage
from wsproto.utilities import ProtocolError

from gateway.errors import HttpError
from gateway.http.cycle import ClientDisconnect
from gateway.http.drain import DrainWaiters
from gateway.http.responses import APP_FAILED, error_response
from gateway.http.ws_handshake import (
    Handshake,
    VersionMismatch,
    accept_response,
    negotiate_deflate,
    read_handshake,
    websocket_scope,
)
from gateway.http.ws_messages import DenialWriter, MessageAssembler, MessageTooBig, message_size
from gateway.types import ASGIApp, Message, Scope

if TYPE_CHECKING:
    from gateway.http.parser import RequestParser
    from gateway.http.protocol import HttpProtocol

logger = logging.getLogger("gateway.error")

CONNECTING, DENYING, OPEN, CLOSING, DONE = range(5)
INBOX_HIGH = 1024 * 1024  # bytes of whole messages waiting for the app before reading pauses
DEFLATE_SLICE = 4096
CLOSE_TIMEOUT = 5.0  # seconds the peer has to answer our Close
GOING_AWAY, MESSAGE_TOO_BIG, INTERNAL_ERROR, SERVICE_RESTART = 1001, 1009, 1011, 1012
ABNORMAL = 1006  # the connection ended without a Close (RFC 6455 §7.1.5)


def take_over(http: HttpProtocol, scope: Scope, parser: RequestParser) -> WebSocketConnection:
    """Move the connection from the HTTP protocol to a WebSocket one, and start the app (or refuse)."""
    has_body = bool(parser.content_length) or parser.chunked
    connection = WebSocketConnection(http, scope)
    try:
        handshake = read_handshake(scope, has_body)
    except HttpError as exc:
        connection.refuse(exc)
        return connection
    connection.start(handshake, http.app)
    return connection


class WebSocketConnection(asyncio.Protocol):
    """The asyncio protocol and the ASGI receive/send of one WebSocket."""

    task: asyncio.Task[None] | None = None
    ws: Connection | None = None

    def __init__(self, http: HttpProtocol, scope: Scope) -> None:
        self.http = http  # the access log's "protocol": the worker's state and the client's address
        self.state = http.state
        self.loop = http.loop
        self.transport = http.transport
        self.client_ip = http.client_ip
        self.settings = http.state.websocket
        self.scope = scope
        self.phase = CONNECTING
        self.status = 0
        self.sent = 0
        self.started = perf_counter()
        self.handshake: Handshake | None = None
        self.connect_delivered = False
        self.early: list[bytes] = []  # bytes the client sent before our 101 (RFC 6455 asks it to wait)
        self.inbox: deque[Message] = deque()
        self.inbox_size = 0
        self.assembler = MessageAssembler(self.settings.max_message_size)
        self.deflating = False
        self.finished = False  # the app is told websocket.disconnect once the inbox is empty
        self.close_code = ABNORMAL
        self.close_reason = ""
        self.lost = False
        self.logged = False
        self.read_paused = False
        self.write_paused = False
        self.waiter: asyncio.Future[None] | None = None
        self.drainers = DrainWaiters()
        self.denial: DenialWriter | None = None  # the app's own response to the handshake
        now = self.loop.time()
        self.deadline = now + self.settings.handshake_timeout  # for CONNECTING, then for CLOSING
        self.last_message = now
        self.ping_due = 0.0
        self.ping_sent = 0.0  # when the unanswered ping went out; 0 when none is
        self.stopping = False
        state = http.state
        state.connections.discard(http)
        state.connections.add(self)
        http.transport.set_protocol(self)

    @property
    def cycle(self) -> WebSocketConnection | None:
        """What the server's drain and status look at: this connection while its app runs."""
        return self if self.task is not None and not self.task.done() else None

    # Starting --------------------------------------------------------------

    def start(self, handshake: Handshake, app: ASGIApp) -> None:
        if app is self.state.unavailable_app:
            self.refuse(HttpError(503, "The server has too many connections; try again shortly."))
            return
        self.handshake = handshake
        self.scope = websocket_scope(self.scope, handshake, self.state.lifespan_state)
        self.task = self.loop.create_task(self.run(app))

    async def run(self, app: ASGIApp) -> None:
        """Run the app; its failures become a 500 before accept, a 1011 close after."""
        try:
            await app(self.scope, self.receive, self.send)
        except ClientDisconnect:
            return
        except asyncio.CancelledError:
            if not (self.lost or self.phase == DONE):
                raise
            return
        except Exception:
            logger.exception("Exception in app while serving the WebSocket %s", self.scope["path"])
            self._app_failed(APP_FAILED)
            return
        if self.phase == CONNECTING and not self.lost:
            logger.error("App returned without accepting or refusing the WebSocket %s", self.scope["path"])
            self._deny(HttpError(500, "The application did not answer the WebSocket handshake."))
        elif self.phase == OPEN:
            self._close(1000, "")
        elif self.phase == DENYING:
            logger.error("App returned without completing its response to the WebSocket %s", self.scope["path"])
            self._abort()

    def _app_failed(self, detail: str) -> None:
        if self.phase == CONNECTING:
            self._deny(HttpError(500, detail))
        elif self.phase == OPEN:
            self._close(INTERNAL_ERROR, "")
        elif self.phase == DENYING:
            self._abort()

    # ASGI receive ------------------------------------------------------------

    async def receive(self) -> Message:
        if not self.connect_delivered:
            self.connect_delivered = True
            return {"type": "websocket.connect"}
        while not self.inbox and not self.finished and not self.lost:
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        if self.inbox:
            return self._take()
        return {"type": "websocket.disconnect", "code": self.close_code, "reason": self.close_reason}

    def _take(self) -> Message:
        message = self.inbox.popleft()
        self.inbox_size -= message_size(message)
        if self.read_paused and self.inbox_size <= INBOX_HIGH // 2 and not self.lost:
            self.read_paused = False
            self.transport.resume_reading()
        return message

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ASGI send ---------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if self.lost or self.finished:
            raise ClientDisconnect("the WebSocket is closed")
        if self.phase == OPEN:
            if kind == "websocket.send":
                await self._send_data(message)
            elif kind == "websocket.close":
                self._close(message.get("code") or 1000, message.get("reason") or "")
            else:
                raise RuntimeError(f"Expected websocket.send or websocket.close, got {kind!r}.")
        elif self.phase == CONNECTING:
            self._answer(kind, message)
        elif self.phase == DENYING and kind == "websocket.http.response.body":
            self._deny_body(message.get("body", b""), message.get("more_body", False))
        else:
            raise RuntimeError(f"Unexpected ASGI message {kind!r} for a WebSocket in this state.")

    def _answer(self, kind: str, message: Message) -> None:
        """The app's answer to websocket.connect."""
        if kind == "websocket.accept":
            self._accept(message.get("subprotocol"), message.get("headers") or [])
        elif kind == "websocket.close":
            self._deny(HttpError(403, "The application refused this WebSocket connection."))
        elif kind == "websocket.http.response.start":
            self.denial = DenialWriter(message["status"], message.get("headers") or [], self.state.common.block)
            self.status = message["status"]
            self.phase = DENYING
        else:
            raise RuntimeError(
                f"Expected websocket.accept, websocket.close or websocket.http.response.start, got {kind!r}."
            )

    def _accept(self, subprotocol: str | None, headers: list[tuple[bytes, bytes]]) -> None:
        handshake = self.handshake
        assert handshake is not None  # set by start() before the app runs
        extension, offer_answer = None, None
        if self.settings.per_message_deflate:
            extension, offer_answer = negotiate_deflate(handshake.extension_offers)
        response = accept_response(handshake, subprotocol, headers, offer_answer, self.state.common.block)
        self.ws = Connection(ConnectionType.SERVER, [extension] if extension is not None else None)
        self.deflating = extension is not None
        self.transport.write(response)
        self.status = 101
        self.phase = OPEN
        now = self.loop.time()
        self.last_message = now
        self.ping_due = now + self.settings.ping_interval
        if self.stopping:
            self._close(SERVICE_RESTART, "server stopping")
        elif self.early:
            early, self.early = b"".join(self.early), []
            self.data_received(early)
        if self.read_paused and self.phase == OPEN:
            self.read_paused = False
            self.transport.resume_reading()

    async def _send_data(self, message: Message) -> None:
        text, data = message.get("text"), message.get("bytes")
        event: Event
        if text is not None:
            event = TextMessage(text)
            self.sent += len(text)
        elif data is not None:
            event = BytesMessage(data)
            self.sent += len(data)
        else:
            raise RuntimeError("websocket.send needs 'bytes' or 'text'.")
        self._write(event)
        self.last_message = self.loop.time()
        while self.write_paused and not self.lost:
            await self.drainers.wait(self.loop)
        if self.lost:
            raise ClientDisconnect("the client disconnected")

    def _write(self, event: Event) -> None:
        assert self.ws is not None  # only called once accepted
        self.transport.write(self.ws.send(event))

    # The denial response (RFC 6455 §4.2.2: any status but 101 refuses) -------------

    def _deny_body(self, body: bytes, more: bool) -> None:
        assert self.denial is not None  # set with phase DENYING
        self.transport.write(self.denial.body(body, more))
        self.sent += len(body)
        if not more:
            self._end(ABNORMAL, "")

    def _deny(self, exc: HttpError) -> None:
        """A refusal made here (403, 500, 504): a small text response, then the connection ends."""
        self.status = exc.status
        response = error_response(exc.status, exc.detail, self.state.common)
        if isinstance(exc, VersionMismatch):
            response = response.replace(b"\r\n", b"\r\nsec-websocket-version: 13\r\n", 1)
        self.transport.write(response)
        self._end(ABNORMAL, "")

    def refuse(self, exc: HttpError) -> None:
        """A handshake refused before any app ran (malformed, or the server is full)."""
        self.connect_delivered = True
        self._deny(exc)

    # Closing -------------------------------------------------------------------

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake from our side; the app is told at once."""
        if self.phase != OPEN or self.ws is None:
            return
        self._write(CloseConnection(code, reason or None))
        self.phase = CLOSING
        self.deadline = self.loop.time() + CLOSE_TIMEOUT
        self._finish(code, reason)

    def _finish(self, code: int, reason: str) -> None:
        if not self.finished:
            self.finished = True
            self.close_code, self.close_reason = code, reason
            self._wake()

    def _end(self, code: int, reason: str) -> None:
        """Nothing more goes either way: close the transport (it flushes what is buffered)."""
        self.phase = DONE
        self._finish(code, reason)
        self.transport.close()

    def _abort(self) -> None:
        self.phase = DONE
        self._finish(ABNORMAL, "")
        self.transport.abort()

    def shutdown(self) -> None:
        """The server is stopping: close an open WebSocket with 1012 (a handshake in progress closes on accept)."""
        self.stopping = True
        if self.phase == OPEN:
            self._close(SERVICE_RESTART, "server stopping")

    # asyncio callbacks --------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        if ws is None:
            if self.phase == CONNECTING:
                self.early.append(data)
                self.read_paused = True
                self.transport.pause_reading()
            return
        if self.phase == DONE:
            return
        try:
            if self.deflating and len(data) > DEFLATE_SLICE:
                for start in range(0, len(data), DEFLATE_SLICE):
                    ws.receive_data(data[start : start + DEFLATE_SLICE])
                    self._handle_events(ws)
            else:
                ws.receive_data(data)
                self._handle_events(ws)
        except ProtocolError as exc:  # data after the Close, say: nothing more is read
            logger.debug("WebSocket %s: %s", self.scope["path"], exc)
            self._end(self.close_code if self.finished else 1002, "")

    def _handle_events(self, ws: Connection) -> None:
        for event in ws.events():
            if isinstance(event, (TextMessage, BytesMessage)):
                if self.phase == OPEN:
                    self._on_data(event)
            elif isinstance(event, Ping):
                if ws.state == ConnectionState.OPEN:
                    self._write(event.response())
            elif isinstance(event, Pong):
                self.ping_sent = 0.0
                self.ping_due = self.loop.time() + self.settings.ping_interval
            elif isinstance(event, CloseConnection):
                self._on_close(ws, event)
                return

    def _on_data(self, event: TextMessage | BytesMessage) -> None:
        try:
            message = self.assembler.add(event)
        except MessageTooBig as exc:
            self._close(MESSAGE_TOO_BIG, str(exc))
            return
        if message is None:
            return
        self.inbox.append(message)
        self.inbox_size += message_size(message)
        self.last_message = self.loop.time()
        if self.inbox_size > INBOX_HIGH and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
        self._wake()

    def _on_close(self, ws: Connection, event: CloseConnection) -> None:
        if ws.state == ConnectionState.REMOTE_CLOSING:  # the peer closes: answer, and it is over
            self._write(event.response())
            self._end(event.code, event.reason or "")
        elif ws.state == ConnectionState.CLOSED:  # the answer to our Close
            self._end(self.close_code, self.close_reason)
        else:  # wsproto found a protocol error (1002, 1007 invalid UTF-8...): say so and stop
            code = int(event.code)
            if ws.state == ConnectionState.OPEN:
                self._write(CloseConnection(code, event.reason or None))
            logger.info("WebSocket %s from %s closed: %s", self.scope["path"], self.client_ip, event.reason)
            self._end(code, event.reason or "")

    def eof_received(self) -> bool:
        return False  # a half-closed WebSocket is over: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.phase = DONE
        self._finish(ABNORMAL, "")
        self._wake()
        self.drainers.wake()
        self.state.release(self)
        if not self.logged:
            self.logged = True
            self.state.access_log.log(self.http, self)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self.drainers.wake()

    # Timers (the server's once-a-second sweep) ---------------------------------

    def check_timers(self, now: float) -> None:
        phase = self.phase
        if phase == CONNECTING and now >= self.deadline and self.task is not None:
            self.task.cancel()
            self._deny(HttpError(504, "The application did not answer the WebSocket handshake in time."))
        elif phase == CLOSING and now >= self.deadline:
            self._end(self.close_code, self.close_reason)
        elif phase == OPEN:
            self._check_open(now)

    def _check_open(self, now: float) -> None:
        settings = self.settings
        if self.ping_sent and now - self.ping_sent >= settings.ping_timeout:
            logger.info(
                "WebSocket %s from %s: no pong within %gs; dropped",
                self.scope["path"],
                self.client_ip,
                settings.ping_timeout,
            )
            self._abort()
        elif settings.idle_timeout and now - self.last_message >= settings.idle_timeout:
            self._close(GOING_AWAY, "idle timeout")
        elif settings.ping_interval and not self.ping_sent and now >= self.ping_due:
            self.ping_sent = now
            self._write(Ping(os.urandom(4)))
