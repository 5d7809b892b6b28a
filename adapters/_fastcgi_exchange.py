"""One FastCGI request: params and STDIN out, STDOUT relayed to the client as a CGI response.

The body goes out in a task of its own while STDOUT comes back, so a script
that answers before reading all of its input cannot deadlock the two.
STDOUT is parsed as a CGI response head (_cgi_response.py), then relayed as
it arrives; the STDOUT records that came with END_REQUEST make the last body
message, so a small response gets a Content-Length from the core. STDERR
lines go to the error log with the script's name.

Failures:
- before the response starts: a BackendError (the caller answers 502);
- after: the reason is logged and ResponseAborted closes the client's
  connection (the response is cut, as nginx cuts it);
- the client leaves or the core's request_timeout cancels us: the connection
  to the server is closed rather than reused (closing is the abort every
  FastCGI server honours; php-cgi ignores FCGI_ABORT_REQUEST).
A request is sent twice only when it has no body and the kept connection it
went out on closed unanswered within QUICK_CLOSE of being taken: the server
had closed it first (php-fpm recycling a worker), as nginx retries a cached
connection. A later close may be a script that died running it (php-cgi
killed mid-request): a 502. Records after END_REQUEST in the same read keep
the connection from being reused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from time import monotonic

from adapters._cgi_response import CgiHead, CgiHeadReader, CgiResponseError
from adapters._fastcgi_client import BackendError, FastCgiConnection, FastCgiPool
from adapters._fastcgi_records import (
    END_REQUEST,
    OVERLOADED,
    REQUEST_COMPLETE,
    STDERR,
    STDOUT,
    begin_request,
    end_request_status,
    stdin,
    stdin_end,
)
from adapters._request_body import no_body
from adapters._stderr_log import StderrLog
from gateway.errors import ResponseAborted
from gateway.types import Send

logger = logging.getLogger("gateway.adapters.fastcgi")
REQUEST_ID = 1
BEGIN = {True: begin_request(REQUEST_ID, True), False: begin_request(REQUEST_ID, False)}
END_STDIN = stdin_end(REQUEST_ID)
QUICK_CLOSE = 0.25  # seconds from taking a kept connection to its unanswered close: closed before our request


class Overloaded(BackendError):
    """The server said FCGI_OVERLOADED: a 503, not a 502."""


class NoAnswer(BackendError):
    """The server closed the connection before any record: on a kept connection, the request never ran."""


async def run_request(
    pool: FastCgiPool,
    params: bytes,
    length: int,
    body: AsyncIterator[bytes],
    send: Send,
    script: str,
    held: bool = False,
) -> None:
    """Send one request through the pool and relay its response to send (held: its slot is taken already)."""
    head = BEGIN[pool.keep_conn] + params
    connection = await pool.acquire(held)
    exchange = Exchange(connection, send, script)
    try:
        try:
            await exchange.run(head, length, body)
        except NoAnswer:
            if length or not _closed_before_us(connection):
                raise
            connection, exchange = await _again(pool, connection, send, script)
            await exchange.run(head, 0, body)
    finally:
        pool.release(connection, exchange.reusable)


async def finish_request(
    pool: FastCgiPool, connection: FastCgiConnection, send: Send, script: str, head: bytes
) -> None:
    """Relay the response to a bodyless request sent already, whole (a Later whose answer did not come whole)."""
    exchange = Exchange(connection, send, script)
    exchange.stdin_done = True
    try:
        try:
            await exchange.answer()
        except NoAnswer:
            if not _closed_before_us(connection):
                raise
            connection, exchange = await _again(pool, connection, send, script)
            await exchange.run(head, 0, no_body())
    finally:
        pool.release(connection, exchange.reusable)


def _closed_before_us(connection: FastCgiConnection) -> bool:
    """A kept connection closed unanswered at once: the server had closed it before our request came.

    php-fpm closes a worker's kept connection as the worker ends (pm.max_requests), just as a request
    may be going out on it. A close that comes later is a script that died while it ran: not sent again.
    """
    return connection.uses >= 2 and monotonic() - connection.taken_at < QUICK_CLOSE


async def _again(
    pool: FastCgiPool, connection: FastCgiConnection, send: Send, script: str
) -> tuple[FastCgiConnection, Exchange]:
    """A kept connection the server had closed before our request (php-fpm's pm.max_requests recycling a
    worker): nothing ran, so a bodyless request goes once more on a new connection, as nginx retries a
    cached one. The request's slot stays held."""
    logger.info("%s: the FastCGI server had closed its kept connection; sending the request on a new one", script)
    connection.close()
    fresh = await pool.connect()
    fresh.uses = 1
    return fresh, Exchange(fresh, send, script)


class Exchange:
    """The state of one request on one connection."""

    def __init__(self, connection: FastCgiConnection, send: Send, script: str) -> None:
        self.connection = connection
        self.send = send
        self.script = script
        self.reader: CgiHeadReader | None = CgiHeadReader()
        self.started = False  # the response head went to the client
        self.reusable = False
        self.leftover = False  # records came after END_REQUEST: the connection is not kept
        self.stdin_done = False
        self.stderr: StderrLog | None = None  # made when php-cgi writes to stderr: most requests never do
        self.head: CgiHead | None = None
        self.room: int | None = None  # body bytes left to the script's own Content-Length, when it gave one
        self.overflowed = False

    async def run(self, head: bytes, length: int, body: AsyncIterator[bytes]) -> None:
        connection = self.connection
        pump: asyncio.Task[None] | None = None
        if length:
            connection.write(head)
            pump = asyncio.ensure_future(self.pump(body))
        else:
            connection.write(head + END_STDIN)
            self.stdin_done = True
        try:
            await self.answer()
        finally:
            if pump is not None and not pump.done():
                pump.cancel()
                self.stdin_done = False
            elif pump is not None:
                pump.result()  # a client that left while sending its body: ClientGone reaches the handler

    async def answer(self) -> None:
        """The response relayed; reusable once both streams ended."""
        try:
            await self.relay()
        except BackendError as exc:
            if not self.started:
                raise
            logger.error("%s: %s; the response was cut short", self.script, exc)
            raise ResponseAborted(str(exc)) from exc
        self.reusable = self.stdin_done and not self.leftover

    async def pump(self, body: AsyncIterator[bytes]) -> None:
        """STDIN from the client's body, waiting whenever the server is not reading."""
        connection = self.connection
        try:
            async for chunk in body:
                connection.write(stdin(REQUEST_ID, chunk))
                if connection.writing_paused:
                    await connection.drain()
            connection.write(END_STDIN)
        except BaseException:
            connection.close()  # wakes relay(); the reason (ClientGone, mostly) is raised from run()
            raise
        self.stdin_done = True

    async def relay(self) -> None:
        """STDOUT to the client until END_REQUEST."""
        seen_any = False
        while True:
            records = await self.connection.records()
            if not records:
                if not seen_any:
                    raise NoAnswer("the FastCGI server closed the connection without answering (did it die?)")
                raise BackendError("the FastCGI server closed the connection before ending the request")
            seen_any = True
            out: list[bytes] = []
            ended = False
            for record in records:
                if record.request_id != REQUEST_ID:
                    raise BackendError(f"a record for request id {record.request_id}; this connection carries only 1")
                if record.type == STDOUT:
                    if record.content:
                        out.append(record.content)
                elif record.type == STDERR:
                    if self.stderr is None:
                        self.stderr = StderrLog(self.script, logger)
                    self.stderr.feed(record.content)
                elif record.type == END_REQUEST:
                    self.check_end(record.content)
                    ended = True
                    self.leftover = record is not records[-1]  # records after the end: no request's
                    break
            if out or ended:
                await self.forward(b"".join(out) if len(out) != 1 else out[0], more=not ended)
            if ended:
                if self.stderr is not None:
                    self.stderr.flush()
                return

    async def forward(self, data: bytes, more: bool) -> None:
        reader = self.reader
        if reader is not None:
            try:
                head = reader.feed(data)
                if head is None and not more:
                    reader.eof()
            except CgiResponseError as exc:
                raise BackendError(f"bad response: {exc}") from None
            if head is None:
                return
            self.reader = None
            data = reader.body
            self.room = head.length
            if self.room is not None and not more and len(data) < self.room:
                raise BackendError(head.short_of(len(data)))  # a 502: nothing was sent
            self.head = head
            await self.start(head)
        if self.room is not None:
            data = self.within_length(data, more)
        if data or not more:
            await self.send({"type": "http.response.body", "body": data, "more_body": more})

    def within_length(self, data: bytes, more: bool) -> bytes:
        """The body kept to the script's Content-Length: more is dropped (logged), less cuts the response."""
        head, room = self.head, self.room
        assert head is not None and head.length is not None and room is not None
        if len(data) > room:
            if not self.overflowed:
                self.overflowed = True
                logger.error(
                    "%s: wrote more than its Content-Length of %d; the rest was dropped", self.script, head.length
                )
            data = data[:room]
        self.room = room - len(data)
        if not more and self.room:
            raise BackendError(head.short_of(head.length - self.room))  # logged; the connection is cut
        return data

    async def start(self, head: CgiHead) -> None:
        self.started = True
        await self.send({"type": "http.response.start", "status": head.status, "headers": head.headers})

    def check_end(self, content: bytes) -> None:
        _, protocol_status = end_request_status(content)
        if protocol_status == OVERLOADED:
            raise Overloaded("the FastCGI server is overloaded (FCGI_OVERLOADED)")
        if protocol_status != REQUEST_COMPLETE:
            raise BackendError(f"the FastCGI server refused the request (protocol status {protocol_status})")
