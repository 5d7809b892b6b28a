"""One HTTP/1.1 connection to an upstream, and the response it carries, parsed by httptools.

Rules:
- One exchange at a time. begin() starts a response with a fresh
  HttpResponseParser, so a HEAD response (whose Content-Length the parser
  would wait for) ends at its head without leaving the parser mid-message.
- 1xx responses are skipped (the core answers Expect itself); a 101 is a
  malformed answer unless begin(upgrade=True) asked for one (a WebSocket
  handshake): then it ends the exchange and every byte after it, in the
  same read or later, waits in `pending` for the WebSocket relay.
- A response with neither Content-Length nor chunked framing ends when the
  upstream closes (RFC 9112 §6.3, item 8); any other response cut by a close
  is an error.
- Flow control both ways: reading pauses while more than HIGH_WATER body
  bytes wait for the client; writers wait in drain() while the socket's
  send buffer is full.
- Reusable only when the response ended cleanly with keep-alive and nothing
  followed it. Bytes after the response, in the same read or later, are
  dropped and the connection closed (nginx: "upstream sent more data than
  specified"): parsed, they would replace the head the client gets. An idle
  connection that receives a byte or an EOF is closed.
- Trailer fields are dropped (RFC 9110 §6.5.2: never merged into the head).
  A transfer coding other than chunked is a 502: the body could not be
  decoded, and passed on it would reach the client still coded.
- `last_active` moves on every byte read and every piece of request body
  written: wait() times out only after `timeout` seconds of the upstream
  neither answering nor taking the body.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from typing import Any

import httptools

from adapters._backend_writes import WriteFlow
from gateway.types import Headers

HIGH_WATER = 256 * 1024
MAX_HEAD = 64 * 1024  # response header bytes
MAX_FIELDS = 256
_FRAMING_SLACK = 8 * 1024  # the status line and line ends MAX_HEAD does not count
NO_BODY_STATUSES = frozenset({204, 304})


class UpstreamError(Exception):
    """An upstream failed an exchange; the message is for the log and names what went wrong.

    status is the answer the client gets (502, 503 or 504); retryable says the
    request may go to another upstream (nothing came back and it can be sent
    again); stale marks a kept connection that was found closed (not the
    upstream's fault: passive health does not count it); unsent says no byte
    of the request, body included, was written or read yet (its first connect
    failed), so even a request that may have killed a process can go to another.
    """

    def __init__(self, message: str, status: int = 502, retryable: bool = False, stale: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.stale = stale
        self.unsent = False
        self.upstream = "(none)"  # the upstream's address as configured, once one was tried


class _Beyond(Exception):
    """A second message began after the response ended (raised in a parser callback to stop the parser)."""


class ResponseHead:
    """The final response's status and headers (names lower-cased), and how its body ends."""

    __slots__ = ("headers", "status", "until_close")

    def __init__(self, status: int, headers: Headers, until_close: bool) -> None:
        self.status = status
        self.headers = headers
        self.until_close = until_close


class UpstreamConnection(WriteFlow):
    """A socket to an upstream; the response's head and body pieces arrive here, one reader awaits them."""

    peer = "the upstream"
    failure = UpstreamError

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self.parser: Any = None  # None while idle
        self.head: ResponseHead | None = None
        self.pending: deque[bytes] = deque()
        self.buffered = 0
        self.complete = False
        self.closed = False
        self.error: str | None = None
        self.received_any = False
        self.keep_alive = False
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[bool] | None = None
        self.drain_waiter: asyncio.Future[None] | None = None
        self.last_active = self.loop.time()
        self.uses = 0
        self.idle_timer: asyncio.TimerHandle | None = None
        self._fields: Headers = []
        self._head_size = 0
        self._framing = 0  # bytes read lately that carried no body byte: a head, or a chunk line or trailer
        self._body_seen = 0
        self._head_request = False
        self._skip_body = False
        self._upgrade = False  # this exchange asked to switch protocols (a WebSocket handshake)
        self.upgraded = False  # ... and the upstream agreed: the bytes that follow are the new protocol's

    # asyncio callbacks --------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or self.complete:
            if self.upgraded:
                self._keep(data)
                return
            self.keep_alive = False  # bytes beyond the response, or while idle: this connection is done
            if parser is None:
                self.close()
            return
        self.received_any = True
        self.last_active = self.loop.time()
        body_before = self._body_seen
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            if self._upgrade and self.head is not None and self.head.status == 101:
                self.upgraded = self.complete = True
                self._keep(data[exc.args[0] :])
                return
            self._fail("a 101 Switching Protocols answer to a request that asked for no upgrade")
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _Beyond):
                self.close()  # the response is whole; what followed it is no one's
            else:
                self._fail(str(exc.__context__ or exc))
        if self._body_seen != body_before:
            self._framing = 0
        elif not self.complete:
            # httptools holds a field or chunk line until it ends, whatever its size (a copy each read):
            # bound what arrives without a body byte, as nginx's proxy_buffer_size does a head.
            self._framing += len(data)
            if self._framing > MAX_HEAD + _FRAMING_SLACK:
                self._fail(f"more than {MAX_HEAD} bytes of head, chunk line or trailer without an end")
        if self.buffered > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def _keep(self, data: bytes) -> None:
        """Bytes of the upgraded protocol, for the relay's take(); reading pauses above HIGH_WATER."""
        if data:
            self.pending.append(data)
            self.buffered += len(data)
            self.last_active = self.loop.time()
        if self.buffered > HIGH_WATER and not self.reading_paused and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        return False  # close our side too: an upstream that stops sending is done with this connection

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.keep_alive = False
        head = self.head
        if head is not None and head.until_close and not self.complete and self.error is None:
            if exc is None:
                self.complete = True  # the body of a response without framing ends here
            else:
                self.error = f"the connection broke: {exc}"
        self._wake()
        self.release_drain()

    def resume_writing(self) -> None:
        self.last_active = self.loop.time()  # the upstream took body bytes: it is not silent
        super().resume_writing()

    # httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            raise _Beyond  # a second response to one request
        self._fields = []
        self._head_size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD or len(self._fields) >= MAX_FIELDS:
            raise ValueError(f"the response head is larger than {MAX_HEAD} bytes or {MAX_FIELDS} fields")
        self._fields.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status == 101 and self._upgrade:
            self.head = ResponseHead(101, self._fields, until_close=False)
            return
        if status < 200:
            return  # 1xx: informational, skipped (a 101 raises HttpParserUpgrade right after)
        fields = self._fields
        self._fields = []  # trailers (after a chunked body) go here, and are dropped
        self._head_size = 0  # ... and count against a limit of their own
        skip = self._head_request or status in NO_BODY_STATUSES
        framed = False
        for name, value in fields:
            if name == b"content-length":
                framed = True
            elif name == b"transfer-encoding":
                if value.strip().lower() != b"chunked" and not skip:  # no body: nothing to decode
                    raise ValueError(f"a transfer coding this proxy cannot decode: {value.decode('latin-1')!r}")
                framed = True
        self.head = ResponseHead(status, fields, until_close=not skip and not framed)
        self.keep_alive = self.parser.should_keep_alive()
        if skip:
            self._skip_body = True
            self.complete = True

    def on_body(self, body: bytes) -> None:
        if self._skip_body:
            self.keep_alive = False  # a body where none may be: do not trust what follows
            return
        self.pending.append(body)
        self.buffered += len(body)
        self._body_seen += len(body)

    def on_message_complete(self) -> None:
        if self.head is not None:
            self.complete = True

    # The exchange's side ------------------------------------------------------

    def begin(self, head_request: bool, upgrade: bool = False) -> None:
        """Get ready for the response to a new request (one asking to switch protocols with upgrade)."""
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        self.parser = httptools.HttpResponseParser(self)
        self.head = None
        self.complete = self.received_any = self.keep_alive = self._skip_body = False
        self._framing = 0
        self._head_request = head_request
        self._upgrade = upgrade
        self.uses += 1
        self.last_active = self.loop.time()

    def finish(self) -> bool:
        """End the exchange; whether the connection can carry another request."""
        reusable = self.complete and self.keep_alive and not self.closed and self.error is None and not self.pending
        self.parser = None
        self.head = None
        self.pending.clear()
        self.buffered = 0
        if self.reading_paused and self.transport is not None and not self.closed:
            self.transport.resume_reading()
            self.reading_paused = False
        return reusable

    def take(self) -> bytes:
        """The body bytes that arrived since the last call; reading resumes."""
        pending = self.pending
        data = pending[0] if len(pending) == 1 else b"".join(pending)
        pending.clear()
        self.buffered = 0
        if self.reading_paused and self.transport is not None and not self.closed:
            self.reading_paused = False
            self.transport.resume_reading()
        return data

    async def wait(self, silence: float) -> None:
        """Wait for news (head, body, end, close); TimeoutError after `silence` seconds without any."""
        loop = self.loop
        while True:
            remaining = self.last_active + silence - loop.time()
            if remaining <= 0:
                raise TimeoutError
            waiter = self.waiter = loop.create_future()
            timer = loop.call_later(remaining, _expire, waiter)
            try:
                woken = await waiter
            finally:
                timer.cancel()
                self.waiter = None
            if woken:
                return

    def touch(self) -> None:
        """The upstream took a piece of the request: it is not silent."""
        self.last_active = self.loop.time()

    def _fail(self, reason: str) -> None:
        self.error = reason
        self.close()

    def wake(self) -> None:
        """Wake the reader in wait() without news from the upstream (a WebSocket's client left)."""
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(True)

    def close(self) -> None:
        self.closed = True
        self.keep_alive = False
        if self.idle_timer is not None:
            self.idle_timer.cancel()
            self.idle_timer = None
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
