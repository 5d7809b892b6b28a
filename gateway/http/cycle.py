"""One request's life: the ASGI receive/send pair and the response's framing.

Rules:
- The response head is held until the first body message, so head and body
  leave in one write and a single-message body gets a Content-Length instead
  of chunked framing.
- Framing: the app's Content-Length wins; else chunked on HTTP/1.1; else the
  connection closes to end the body (HTTP/1.0). HEAD, 1xx, 204 and 304 send no
  body; a HEAD answered with an empty body and no Content-Length claims none.
  The app's Connection and Transfer-Encoding headers are ours to decide; a
  204 or 1xx carries no Content-Length (RFC 9110 §8.6), a 304 keeps the app's.
- A header name that is not a token (a space before its colon would read as
  another field to a lenient proxy), or a CR, LF or NUL anywhere in the head,
  is refused with a 500 while nothing is written (h11 refuses the same).
- A body that disagrees with the app's Content-Length is refused with a 500
  while nothing of the response is written yet (a single-message body, or a
  first message longer than the length); later, the connection closes.
- A file to send (pathsend) that cannot be opened is answered as a static
  server would, 404 or 403, while nothing is written yet.
- After the client goes away, send() raises ClientDisconnect (an OSError, as
  ASGI spec 2.4 asks) and receive() returns http.disconnect.
- Reading pauses while more than FLOW_HIGH body bytes wait for the app.
"""

from __future__ import annotations

import asyncio
import logging
import os
from stat import S_ISREG
from time import perf_counter
from typing import TYPE_CHECKING

from gateway.errors import ResponseAborted
from gateway.http import pathsend
from gateway.http.responses import APP_FAILED, CONTINUE, STATUS_LINES, is_token, reason, status_line
from gateway.types import ASGIApp, Headers, Later, Message, Scope

if TYPE_CHECKING:
    from gateway.http.protocol import HttpProtocol

FLOW_HIGH = 256 * 1024
NO_BODY_STATUSES = frozenset({204, 304})
# Framing is ours to decide; Date and Server the core writes (`server_header`): an app's would make two.
_OURS = frozenset({b"content-length", b"connection", b"transfer-encoding", b"date", b"server"})
_TOKENS: set[bytes] = set()  # header names checked once (is_token), remembered up to _TOKENS_MAX
_TOKENS_MAX = 4096
logger = logging.getLogger("gateway.error")
# A file that cannot be opened, as nginx answers it; other errors are the server's (500).
_UNOPENED = {FileNotFoundError: 404, NotADirectoryError: 404, PermissionError: 403}
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


class ClientDisconnect(OSError):
    """Raised by send() once the client has gone (ASGI spec 2.4)."""


class RequestCycle:
    """The state of one request/response exchange on a connection.

    No __slots__ on purpose: class-level defaults let __init__ set only the
    few fields that differ per request, which is measurably cheaper.
    """

    waiter: asyncio.Future[None] | None = None
    task: asyncio.Task[None] | Later | None = None  # what a timeout or shutdown cancels
    status = 0
    headers: Headers | tuple[()] = ()
    chunked = False
    length: int | None = None
    sent = 0
    body_size = 0  # bytes buffered, not yet received by the app
    received = 0  # bytes of body so far, for a route's max_body_size
    content_length: int | None = None
    request_complete = False
    disconnected = False
    response_started = False
    response_complete = False
    head_pending = False
    last_body_delivered = False  # the http.request with more_body=False went out
    expect_continue = False
    client_eof = False
    more_body = False  # more of the request body is to come
    timeout_told = False  # past request_timeout, the task was cancelled to send the vhost's 504 document

    def __init__(self, protocol: HttpProtocol, scope: Scope, keep_alive: bool, started: float) -> None:
        """A request without a body; HttpProtocol sets more_body, content_length and expect_continue for one with."""
        self.protocol = protocol
        self.scope = scope
        self.keep_alive = keep_alive
        self.body: list[bytes] = []
        self.is_head = scope["method"] == "HEAD"
        self.started = perf_counter()  # for the access log's duration (loop.time() is in whole ms on uvloop)
        self.begun = started  # loop time, for the request_timeout deadline
        self.deadline = started + protocol.request_timeout

    # Running the app ------------------------------------------------------

    async def run(self, app: ASGIApp) -> None:
        """Run the app; turn its failures into a 500 or a closed connection."""
        try:
            await app(self.scope, self.receive, self.send)
        except ClientDisconnect:
            return
        except ResponseAborted:
            self._fail("The application's backend failed; the reason is in the server's log.")
            return
        except asyncio.CancelledError:
            if self.disconnected or self.response_complete:
                return
            if self._timed_out():  # the app's stack lost the cancel's reason: the core's 504 now
                return
            raise
        except Exception:
            logger.exception("Exception in app while serving %s %s", self.scope["method"], self.scope["path"])
            self._fail(APP_FAILED)
            return
        if not self.response_complete and not self.disconnected and self.client_eof:
            self.protocol.abort()  # the app stopped on the http.disconnect a half-close reports: not its fault
            return
        if self._timed_out():  # it caught the timeout's cancel and returned: still the 504 it was past
            return
        if not self.response_complete and not self.disconnected:
            logger.error(
                "App returned without completing its response to %s %s", self.scope["method"], self.scope["path"]
            )
            self._fail("The application did not send a complete response.")

    def _timed_out(self) -> bool:
        """After the core told the task of request_timeout (a vhost's 504 page): its plain 504 if nothing began."""
        if not self.timeout_told or self.response_started or self.protocol.cycle is not self:
            return False
        self.protocol.time_out(self)
        return True

    # Answering from a callback (an app's Later, gateway/types.py) ---------

    def respond(self, status: int, headers: Headers, body: bytes) -> None:
        """The whole response at once, head and body in one write, as the two ASGI messages would send it."""
        if self.response_started or self.response_complete:
            raise RuntimeError("respond() on a request whose response has begun.")
        if self.disconnected:
            self.response_complete = True  # nobody to answer; the connection is gone
            return
        self.response_started = self.head_pending = True
        self.status = status
        self.headers = headers
        try:
            self._write_body(body, False)
        except RuntimeError:
            logger.exception("Bad response to %s %s", self.scope["method"], self.scope["path"])
            self._fail(APP_FAILED)
            return
        self._complete()

    def respond_lines(self, status: int, lines: bytes, body: bytes) -> None:
        """respond() for header lines built already (each `name: value` and CRLF, trusted: no CR or LF inside).

        Only for a status with a body and lines without Content-Length or
        framing headers: the body's length is added here, as for any
        single-message response.
        """
        if self.disconnected:
            self.response_complete = True
            return
        self.response_started = True
        self.status = status
        self.sent = self.length = len(body)
        self.deadline = 0.0
        line = STATUS_LINES.get(status) or status_line(status)
        length = b"content-length: %d\r\n" % len(body)
        self.protocol.transport.write(
            b"".join((line, self.protocol.common.block, lines, length, self._connection_end(), body))
        )
        self._complete()

    def respond_file(self, status: int, lines: bytes, path: str, length: int) -> None:
        """respond_lines() for a file's bytes: lines hold Content-Length: length; the bytes go by sendfile.

        As many as the socket takes now go out at once; a task sends the rest
        (pathsend.send_rest) and completes the response. Raises OSError, with
        nothing written, when the file cannot be opened.
        """
        if self.disconnected:
            self.response_complete = True
            return
        end = self._connection_end()
        head = b"".join((STATUS_LINES.get(status) or status_line(status), self.protocol.common.block, lines, end))
        self.status = status
        self.length = length
        self.deadline = 0.0
        if self.is_head:
            self.response_started = True
            self.protocol.transport.write(head)
            self._complete_whole()
            return
        try:
            fd = os.open(path, pathsend.OPEN_FLAGS)
        except OSError as exc:  # gone since the app looked (a static file's stat is a second old at most)
            self._answer_unopened(path, exc)
            self._complete_whole()
            return
        try:
            count = min(os.fstat(fd).st_size, length)
            self.response_started = True
            sent = pathsend.send_now(self.protocol, head, fd, count) if count > 0 else None
        except BaseException:
            os.close(fd)
            raise
        if sent == count:
            os.close(fd)
            self.sent = sent
            self._complete_whole()
        else:
            self.task = self.protocol.loop.create_task(self._send_rest(head, fd, sent, count))

    def _complete_whole(self) -> None:
        """Complete a response written whole: now, or once the parser returns when its own head is still in it.

        The core calls respond-now apps from on_request (gateway/http/whole.py):
        a bodyless request's end comes in the same feed, after this.
        """
        if self.request_complete:
            self._complete()
            return
        self.request_complete = self.response_complete = True
        if self.length is not None and self.sent < self.length and not self.is_head:
            self.keep_alive = False
        self.protocol.answered = self

    async def _send_rest(self, head: bytes, fd: int, sent: int | None, count: int) -> None:
        """respond_file()'s task: the bytes the socket did not take at once (or all: send_now() said None)."""
        try:
            if sent is None:
                self.sent = await pathsend.send_file(self.protocol, head, fd, count)
            else:
                self.sent = await pathsend.send_rest(self.protocol, fd, sent, count)
        except OSError:  # the client has gone (plain asyncio's loop.sendfile raises it)
            self.protocol.abort()
            return
        except Exception:
            logger.exception("Failed sending a file to %s %s", self.scope["method"], self.scope["path"])
            self.protocol.abort()
            return
        finally:
            os.close(fd)
        self._complete()

    def hand_over(self, app: ASGIApp) -> None:
        """Carry on as any request does, app in a task with receive and send: an answer that is not whole."""
        self.task = self.protocol.loop.create_task(self.run(app))

    def _fail(self, detail: str) -> None:
        if self.response_started:
            self.protocol.abort()
        else:
            self.response_complete = True
            self.protocol.close_with_error(self, 500, detail)

    # Receiving ------------------------------------------------------------

    def feed_body(self, chunk: bytes) -> None:
        self.body.append(chunk)
        self.body_size += len(chunk)
        self.received += len(chunk)
        if self.body_size > FLOW_HIGH:
            self.protocol.pause_reading()
        self._wake()

    def end_body(self) -> None:
        self.request_complete = True
        self.more_body = False
        self._wake()

    def on_disconnect(self) -> None:
        self.disconnected = True
        self._wake()

    def on_client_eof(self) -> None:
        """The client half-closed after a complete request: it will send nothing more.

        receive() reports http.disconnect (as nginx reports a client abort), while
        send() keeps writing: a client that only shut its writing side still reads.
        """
        self.client_eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        self.waiter = self.protocol.loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None

    async def receive(self) -> Message:
        if self.expect_continue:
            self._send_continue()
        while not self.body and self.more_body and not self.disconnected:
            self.protocol.resume_reading()
            await self._wait()
        if self.body or (not self.last_body_delivered and not self.disconnected):
            return self._take_body()
        while not self.disconnected and not self.response_complete and not self.client_eof:
            await self._wait()
        return {"type": "http.disconnect"}

    def _take_body(self) -> Message:
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self.body_size = 0
        if self.more_body:
            self.protocol.resume_reading()
        else:
            self.last_body_delivered = True
        return {"type": "http.request", "body": data, "more_body": self.more_body}

    def _send_continue(self) -> None:
        """Answer Expect: 100-continue only now that the app wants the body.

        An app that began its answer first gets no 100 sent (the client may then
        send the body or not, RFC 9110 §10.1.1): the body timer bounds the wait
        either way, or a client that sends nothing would hold the app for good.
        """
        self.expect_continue = False
        if self.disconnected:
            return
        if not self.response_started:
            self.protocol.transport.write(CONTINUE)
        self.protocol.start_body_timer()

    # Sending --------------------------------------------------------------

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.body" and self.response_started and not self.response_complete:
            if self.disconnected:
                raise ClientDisconnect("the client disconnected")
            more = message.get("more_body", False)
            protocol = self.protocol
            # Wait before writing, and again if another sender filled the buffer first: tasks sending at
            # once then hold one piece each at most, not all they send.
            while protocol.write_paused and not protocol.closed:
                await protocol.drain()
            if self.disconnected:
                raise ClientDisconnect("the client disconnected")
            self._write_body(message.get("body", b""), more)
            if not more:
                self._complete()
        elif kind == "http.response.start" and not self.response_started:
            if self.disconnected:
                raise ClientDisconnect("the client disconnected")
            status = message["status"]
            if type(status) is not int or not 200 <= status <= 999:
                # A 1xx is never final (RFC 9110 §15.2) and a status has three digits: written, the
                # client would take the next response as this one's, and every later one shifts.
                raise RuntimeError(f"The response status {status!r} is not a final status code (200 to 999).")
            self.response_started = self.head_pending = True
            self.status = status
            self.headers = message.get("headers", ())
        else:
            await self._send_other(kind, message)

    async def _send_other(self, kind: str, message: Message) -> None:
        if self.disconnected:
            raise ClientDisconnect("the client disconnected")
        if kind == "http.response.pathsend" and self.response_started and not self.response_complete:
            await self._send_path(message["path"])
        elif kind in ("http.response.start", "http.response.body", "http.response.pathsend"):
            raise RuntimeError(_order_error(kind, self.response_started))
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} for an HTTP request.")

    def _write_body(self, body: bytes, more: bool) -> None:
        transport = self.protocol.transport
        if self.head_pending:
            head = self._head(len(body), more)
            if self.is_head or self.status in NO_BODY_STATUSES or self.status < 200:
                transport.write(head)
                return
        elif self.is_head or self.status in NO_BODY_STATUSES or self.status < 200:
            return
        else:
            head = b""
        self.sent += len(body)
        length = self.length
        if length is not None and (self.sent > length or (head and not more and self.sent < length)):
            if head:
                self.response_started = False  # nothing was written: the client can still get a 500
            longer = "longer" if self.sent > length else "shorter"
            raise RuntimeError(f"The response body ({self.sent} bytes) is {longer} than its Content-Length ({length}).")
        if self.chunked:
            body = _chunk(body, more)
        if head:
            transport.write(head + body if body else head)
        elif body:
            transport.write(body)

    def _head(self, first_len: int, more: bool) -> bytes:
        """Build the response head once, deciding framing and keep-alive."""
        status = self.status
        common = self.protocol.common
        parts = [STATUS_LINES.get(status) or status_line(status), common.block]
        length: int | None = None
        kept = 0
        for name, value in self.headers:
            lname = name.lower()
            if lname not in _TOKENS:
                _check_name(lname, self)
            if lname in _OURS:
                if lname == b"content-length":
                    if not value.isdigit():
                        self.response_started = False  # nothing was written: the client can still get a 500
                        raise RuntimeError(f"The response's Content-Length is not a number: {value!r}.")
                    length = int(value)
                elif lname == b"connection" and value.lower() == b"close":
                    self.keep_alive = False
                continue
            parts += (name, b": ", value, b"\r\n")
            kept += 1
        if self.more_body:
            # The app answers while body bytes are still on their way; the
            # connection will not be reused after such a response, so say so now.
            self.keep_alive = False
        framing = self._framing(status, length, first_len, more)
        parts.append(framing)
        head = b"".join(parts)
        # Every line ends in CRLF and nothing else: a CR or LF inside a value would split it.
        lines = 1 + common.lines + kept + framing.count(b"\n")
        if head.count(b"\n") != lines or head.count(b"\r") != lines or b"\0" in head:
            self.response_started = False  # nothing was written: the client can still get a 500
            raise RuntimeError("A response header name or value contains a CR, LF or NUL character.")
        self.head_pending = False
        self.deadline = 0.0
        return head

    def _framing(self, status: int, length: int | None, first_len: int, more: bool) -> bytes:
        if status < 200 or status in NO_BODY_STATUSES:
            extra = b"" if length is None or status != 304 else b"content-length: %d\r\n" % length
        elif length is not None:
            self.length = length
            extra = b"content-length: %d\r\n" % length
        elif not more and self.is_head and not first_len:
            extra = b""  # the app sent no body for HEAD (PHP does not): the GET's length is unknown, not 0
        elif not more:
            self.length = first_len
            extra = b"content-length: %d\r\n" % first_len
        elif self.scope["http_version"] == "1.1":
            self.chunked = True
            extra = b"transfer-encoding: chunked\r\n"
        else:
            self.keep_alive = False
            extra = b""
        return extra + self._connection_end()

    def _connection_end(self) -> bytes:
        """The head's last line: Connection as keep-alive decided, then the blank line."""
        if not self.keep_alive:
            return b"connection: close\r\n\r\n"
        if self.scope["http_version"] == "1.0":
            return b"connection: keep-alive\r\n\r\n"
        return b"\r\n"

    def _complete(self) -> None:
        if self.length is not None and self.sent < self.length and not self.is_head:
            self.keep_alive = False
        self.response_complete = True
        self._wake()
        self.protocol.on_response_complete(self)

    async def _send_path(self, path: str) -> None:
        """ASGI http.response.pathsend: the file goes out without passing through the app."""
        # os.open is one quick syscall (a thread hop per file would cost more than it saves);
        # open() would add an isatty ioctl, an lseek and a buffered reader.
        try:
            fd = os.open(path, pathsend.OPEN_FLAGS)
        except OSError as exc:
            self._answer_unopened(path, exc)
            self._complete()
            return
        try:
            found = os.fstat(fd)
            if not S_ISREG(found.st_mode):
                raise IsADirectoryError(f"pathsend needs a regular file: {path}")
            size = found.st_size
            if not any(name.lower() == b"content-length" for name, _ in self.headers):
                self.headers = [*self.headers, (b"content-length", b"%d" % size)]
            head = self._head(size, True)
            if not self.is_head and self.status not in NO_BODY_STATUSES:
                count = min(size, self.length if self.length is not None else size)
                self.sent = await pathsend.send_file(self.protocol, head, fd, count)
            else:
                self.protocol.transport.write(head)
        finally:
            os.close(fd)
        self._complete()

    def _answer_unopened(self, path: str, exc: OSError) -> None:
        """The app's file cannot be opened and nothing is written: its headers give way to a small error page."""
        status = _UNOPENED.get(type(exc), 500)
        if status == 500:
            method, target = self.scope["method"], self.scope["path"]
            logger.error("Cannot open %s to answer %s %s: %s", path, method, target, exc)
        self.status = status
        self.headers = _TEXT
        self.length = None
        self.response_started = self.head_pending = True
        self._write_body(f"{status} {reason(status)}\n".encode(), False)


def _chunk(body: bytes, more: bool) -> bytes:
    if not body:
        return b"" if more else b"0\r\n\r\n"
    framed = b"%x\r\n%b\r\n" % (len(body), body)
    return framed if more else framed + b"0\r\n\r\n"


def _order_error(kind: str, started: bool) -> str:
    if not started:
        return f"{kind} sent before http.response.start."
    return f"{kind} sent after the response was complete."


def _check_name(name: bytes, cycle: RequestCycle) -> None:
    """Remember a lower-cased header name that is a token; refuse one that is not (see the module's rules)."""
    if not is_token(name):
        cycle.response_started = False  # nothing was written: the client can still get a 500
        raise RuntimeError(f"A response header name is not a token: {name!r}.")
    if len(_TOKENS) < _TOKENS_MAX:
        _TOKENS.add(name)
