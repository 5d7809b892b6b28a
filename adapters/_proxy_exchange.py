"""One attempt of a request on one upstream connection: head and body out, the response relayed back.

Rules:
- The body goes out in a task of its own (pump) while the response comes
  back, so an upstream that answers before reading the whole body cannot
  deadlock the two. Once the body is out the pump keeps listening: a client
  that leaves (http.disconnect) closes the upstream connection, as nginx
  does, so an abandoned long request stops costing the upstream.
- The body read so far is kept for another attempt while it is at most
  REPLAY_MAX bytes; past that a failed attempt cannot be repeated.
- The response start is held until body bytes (or the end) arrive, so an
  upstream that fails right after its head still gets the client a 502,
  and head and body leave in one write (the core holds the head anyway).
- A failure before the response start went out is an UpstreamError for the
  caller: retryable when no byte came back and the request can be sent
  again (nothing was written yet, or an idempotent method whose body is
  kept); stale when that happened on a kept connection (the upstream had
  closed it). A read timeout is never retried: the upstream may still be
  working on the request.
- After the start went out: logged, then ResponseAborted (the core cuts the
  client's connection, so a truncated body never looks complete).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from adapters._proxy_connection import UpstreamConnection, UpstreamError
from adapters._proxy_headers import RequestFraming, response_headers
from adapters._request_body import ClientGone
from gateway.errors import ResponseAborted
from gateway.types import Headers, Receive, Scope, Send

logger = logging.getLogger("gateway.adapters.proxy")
REPLAY_MAX = 64 * 1024
LAST_CHUNK = b"0\r\n\r\n"


class RequestBody:
    """The client's body, read once through receive() and kept (up to REPLAY_MAX) for a retry."""

    def __init__(self, receive: Receive, framing: RequestFraming) -> None:
        self.receive = receive
        self.chunked = framing.chunked
        self.complete = not framing.has_body  # every body byte has been read from the client
        self.kept: list[bytes] = []
        self.kept_size = 0
        self.replayable = True

    async def next(self) -> bytes:
        """The next piece from the client (maybe empty); ClientGone if it left."""
        message = await self.receive()
        if message["type"] == "http.disconnect":
            raise ClientGone("the client disconnected before its body ended")
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            self.complete = True
        if chunk and self.replayable:
            self.kept_size += len(chunk)
            if self.kept_size > REPLAY_MAX:
                self.replayable = False
                self.kept = []
            else:
                self.kept.append(chunk)
        return chunk

    async def wait_disconnect(self) -> None:
        """Return once the client has gone (the rest of receive()'s messages carry no body)."""
        while (await self.receive())["type"] != "http.disconnect":
            pass


class Exchange:
    """The state of one request on one connection."""

    def __init__(
        self,
        connection: UpstreamConnection,
        body: RequestBody,
        send: Send,
        read_timeout: float,
        idempotent: bool,
        relocate: Callable[[Headers], Headers] | None = None,
    ) -> None:
        self.connection = connection
        self.relocate = relocate  # the upstream's redirects to itself, made the client's (_proxy_headers.relocator)
        self.body = body
        self.send = send
        self.read_timeout = read_timeout
        self.idempotent = idempotent
        self.wrote = False  # a byte of this request went to the upstream
        self.body_sent = False
        self.started = False  # http.response.start went to the client
        self.client_gone = False
        self.reusable = False
        self.reused = connection.uses > 0  # a kept connection, not one opened for this request

    async def run(self, head: bytes, scope: Scope, label: str) -> None:
        """Send the request and relay its response; see the module's rules for what it raises."""
        connection = self.connection
        if connection.closed:
            raise self.classify(UpstreamError("the upstream had closed the kept connection"))
        connection.begin(scope["method"] == "HEAD")
        connection.write(head)
        self.wrote = True
        pump = asyncio.get_running_loop().create_task(self.pump())
        try:
            await self.relay()
        except UpstreamError as exc:
            if self.client_gone:
                raise ClientGone("the client disconnected") from None
            if self.started:
                method, path = scope["method"], scope["path"]
                logger.error("proxy %s %s: upstream %s: %s; the response was cut short", method, path, label, exc)
                raise ResponseAborted(str(exc)) from None
            raise self.classify(exc) from None
        finally:
            if not pump.done():
                pump.cancel()
            elif not pump.cancelled() and pump.exception() is not None:
                logger.error("proxy upstream %s: sending the request body failed", label, exc_info=pump.exception())
            self.reusable = connection.finish() and self.body_sent

    async def pump(self) -> None:
        """The request body upstream as it arrives, then a watch for the client leaving."""
        connection = self.connection
        body = self.body
        try:
            for chunk in list(body.kept):
                await self.write(chunk)
            while not body.complete:
                chunk = await body.next()
                if chunk:
                    await self.write(chunk)
            if body.chunked:
                connection.write(LAST_CHUNK)
            connection.touch()  # the read timeout counts from the request's end
            self.body_sent = True
            await body.wait_disconnect()
        except ClientGone:
            pass
        except UpstreamError:
            return  # the connection closed: relay() sees it and says why
        self.client_gone = True
        connection.close()

    async def write(self, chunk: bytes) -> None:
        connection = self.connection
        connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if self.body.chunked else chunk)
        connection.touch()
        if connection.writing_paused:
            await connection.drain()

    async def relay(self) -> None:
        """The response to the client: start and body pieces as they arrive, until its end."""
        connection = self.connection
        while connection.head is None or not (connection.pending or connection.complete):
            self.check()
            await self.wait()
        head = connection.head
        if head is None:  # pragma: no cover (the loop above waits for it)
            raise UpstreamError("no response head")
        headers = response_headers(head.headers)
        if self.relocate is not None:
            headers = self.relocate(headers)
        start = {"type": "http.response.start", "status": head.status, "headers": headers}
        self.started = True
        await self.send(start)
        send = self.send
        while True:
            data = connection.take() if connection.pending else b""
            if connection.complete:
                await send({"type": "http.response.body", "body": data})
                return
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})
                continue
            self.check()
            await self.wait()

    async def wait(self) -> None:
        try:
            await self.connection.wait(self.read_timeout)
        except TimeoutError:
            self.connection.close()
            waiting = "no response" if self.connection.head is None else "the response stalled"
            raise UpstreamError(f"{waiting}: read_timeout ({self.read_timeout:g}s) passed", status=504) from None

    def check(self) -> None:
        """Raise when the connection can bring nothing more."""
        connection = self.connection
        if connection.error is not None:
            raise UpstreamError(f"malformed response: {connection.error}")
        if connection.closed:
            if connection.head is not None:
                raise UpstreamError("the upstream closed the connection before the response ended")
            if connection.received_any:
                raise UpstreamError("the upstream closed the connection in the middle of the response head")
            raise UpstreamError("the upstream closed the connection without answering")

    def classify(self, error: UpstreamError) -> UpstreamError:
        """Mark an error that happened before the response started as retryable (and stale) when it is."""
        if error.status == 504 or self.connection.received_any:
            return error
        resendable = not self.wrote or (self.idempotent and self.body.replayable)
        error.retryable = resendable
        error.stale = resendable and self.reused
        return error
