"""The asyncio protocol: one instance per client connection.

Rules:
- Requests are answered in the order they arrived. A pipelined request waits
  in ``pipeline`` and reading pauses until it runs, so a client cannot queue
  work without bound.
- One timer at a time per connection (``deadline``/``timer``), checked by the
  server's once-a-second sweep rather than a TimerHandle per request: header
  timeout from the first byte of a head (or the connection's start), body
  timeout while the app waits for body bytes, keep-alive timeout while idle,
  linger after an error response. The handler's request timeout lives on the
  cycle. The same sweep watches the transport's unsent bytes: a client that
  takes none of them for send_timeout is cut off (nginx's send_timeout), so a
  reader that stopped holds neither memory nor a connection for ever.
- A response written while the client is not reading (the transport paused
  our writing) holds the next request back: no pipelined request is served
  and nothing more is read until the client takes what it was sent.
- A refused request gets a small error response after the responses before
  it, then a lingering close: we stop writing, read and discard for a moment
  so the client sees the answer rather than a reset.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from typing import TYPE_CHECKING

from gateway.errors import HttpError
from gateway.http import whole
from gateway.http.cycle import RequestCycle
from gateway.http.drain import DrainWaiters
from gateway.http.parser import RequestParser
from gateway.http.responses import error_response
from gateway.http.websocket import WebSocketConnection, take_over
from gateway.http.ws_handshake import websocket_requested
from gateway.types import CONNECTION_KEY, TIMEOUT_CANCEL, TIMEOUT_CUT, TIMEOUT_GRACE, TIMEOUT_PAGE_KEY, Scope

if TYPE_CHECKING:
    from gateway.http.state import ServerState

logger = logging.getLogger("gateway.error")

NO_TIMER, HEAD_TIMER, BODY_TIMER, IDLE_TIMER, LINGER_TIMER = range(5)
LINGER_SECONDS = 2.0
SHUTDOWN_GRACE = 1.0  # seconds a just-accepted connection gets to send its request when the server stops
WRITE_HIGH = 256 * 1024


class HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 over one transport, serving ASGI cycles one after another."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.loop = state.loop
        self.uses_uvloop = state.uses_uvloop
        self.app = state.app
        # The app's synchronous answers (gateway/http/whole.py), tried before a task is made.
        self.respond_now = getattr(state.app, "gateway_respond_now", None)
        self.answered: RequestCycle | None = None  # answered at once, completed once the parser returns
        self.answered_cycle: RequestCycle | None = None  # reused by every request answered at once (whole.py)
        self.common = state.common
        self.log = state.access_log.log if state.logs_requests else None
        limits = state.limits
        self.header_timeout = limits.header_timeout
        self.body_timeout = limits.body_timeout
        self.keepalive_timeout = limits.keepalive_timeout
        self.send_timeout = limits.send_timeout
        self.unsent = 0  # the transport's unsent bytes at the last sweep
        self.unsent_since = 0.0  # when the client last took any of them
        self.next_waits = False  # a response completed while writing was paused: the next request waits
        self.file_waiting_since = 0.0  # a file being sent waits for the socket since then (pathsend.py)
        self.default_body_timeout = limits.body_timeout
        self.keepalive_requests = limits.keepalive_requests
        self.request_timeout = limits.request_timeout
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self.parser: RequestParser = None  # type: ignore[assignment]
        self.cycle: RequestCycle | None = None
        self.reading_cycle: RequestCycle | None = None
        self.pipeline: deque[RequestCycle] = deque()
        self.pending_error: HttpError | None = None
        self.requests = 0
        self.read_at = 0.0  # the loop's time at the last read (data_received)
        self.timer = NO_TIMER
        self.deadline = 0.0
        self.read_paused = False
        self.write_paused = False
        self.drainers = DrainWaiters()
        self.ignore_input = False
        self.closed = False
        self.client_ip = ""
        self.stopping = False  # the server is stopping: serve what arrives now, then close
        self.upgraded: WebSocketConnection | None = None  # the protocol the connection was handed to
        self.file_socket: socket.socket | None = None  # pathsend.connection_socket()'s, closed with the connection
        self.file_socket_checked = False

    # Connection lifecycle -------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, so no isinstance check.
        self.transport = transport  # type: ignore[assignment]
        self.transport.set_write_buffer_limits(high=WRITE_HIGH)
        template = self.state.scope_template(transport)
        template[CONNECTION_KEY] = self  # for the limits stage: a route's own body size and timeouts
        client = template["client"]
        self.client_ip = client[0] if client else ""
        if not self.state.admit(self):
            self.app = self.state.unavailable_app
            self.respond_now = None
            self.keepalive_requests = 0  # the unavailable answer closes the connection
            self.state.closing_now(self)  # it serves nothing: it must not keep others out once there is room
        self.parser = RequestParser(self, self.state.limits, template)
        self._set_timer(HEAD_TIMER, self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.release(self)
        self._close_file_socket()
        for cycle in (self.cycle, self.reading_cycle, *self.pipeline):
            if cycle is not None:
                cycle.on_disconnect()
        self.pipeline.clear()
        self._wake_drain()

    def _close_file_socket(self) -> None:
        if self.file_socket is not None:
            self.file_socket.close()
            self.file_socket = None

    def eof_received(self) -> bool:
        """The client half-closed: finish what is complete, refuse what is cut off."""
        if self.timer == LINGER_TIMER:
            self.transport.close()
            return True
        self.ignore_input = True
        reading = self.reading_cycle
        if reading is not None and not reading.request_complete:
            self.refuse(HttpError(400, "The request body ended before its declared length."))
        elif self.parser.in_head:
            self.refuse(HttpError(400, "The connection closed in the middle of a request head."))
        elif self.cycle is None:
            self.transport.close()
        else:
            for cycle in (self.cycle, *self.pipeline):
                cycle.keep_alive = False
                cycle.on_client_eof()
        return True

    # Reading ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.ignore_input:
            return
        # The loop's time once a read: on_request takes it from here.
        self.read_at = now = self.loop.time()
        timer = self.timer
        if timer == IDLE_TIMER:
            self.timer, self.deadline = HEAD_TIMER, now + self.header_timeout
        elif timer == BODY_TIMER:
            self.deadline = now + self.body_timeout
        try:
            self.parser.feed(data)
        except HttpError as exc:
            self.refuse(exc)
        except Exception:
            logger.exception("Internal error while handling a request from %s", self.client_ip or "a unix socket")
            self.refuse(HttpError(500, "The server failed while reading this request."))
        answered = self.answered
        if answered is not None:
            self.answered = None
            self.on_response_complete(answered, answered.begun)  # answered within this call: its time is now

    def on_request(self, scope: Scope, parser: RequestParser) -> None:
        """Parser callback: a request head is complete."""
        self.requests += 1
        self.state.requests += 1
        self.body_timeout = self.default_body_timeout  # a route's limits may change it for this request
        keep_alive = parser.keep_alive and self.requests < self.keepalive_requests and not self.stopping
        now = self.read_at
        self.timer = NO_TIMER
        if parser.chunked or (parser.content_length or 0) > 0:
            cycle = RequestCycle(self, scope, keep_alive, now)
            self._expect_body(cycle, parser, now)
        else:
            if not keep_alive:
                # Whatever follows a last request is not read (httptools cannot resume after an Upgrade).
                self.ignore_input = True
            if self.cycle is None and self.respond_now is not None and whole.answer(self, scope, keep_alive, now):
                return
            cycle = RequestCycle(self, scope, keep_alive, now)
        self.reading_cycle = cycle
        if self.cycle is None:
            self._start(cycle)
        else:
            self.pipeline.append(cycle)
            self.pause_reading()

    def _expect_body(self, cycle: RequestCycle, parser: RequestParser, now: float) -> None:
        """A request with a body: what the cycle must know of it, and the body timer."""
        cycle.more_body = True
        if parser.content_length:
            cycle.content_length = parser.content_length
        if parser.expect_continue:
            cycle.expect_continue = True
        else:
            self.timer, self.deadline = BODY_TIMER, now + self.body_timeout
        if not cycle.keep_alive:
            self.ignore_input = False  # the body is still to be read

    def on_upgrade_request(self, scope: Scope, parser: RequestParser) -> bool:
        """Parser callback: a head asking to switch protocols. WebSocket is spoken (True); others get plain HTTP."""
        if not websocket_requested(scope["headers"]):
            self.on_request(scope, parser)
            return False
        if self.cycle is not None or self.pipeline:
            self.refuse(HttpError(400, "A WebSocket handshake must not follow requests still being answered."))
        else:
            self.requests += 1
            self.state.requests += 1
            self.ignore_input = True
            self.timer = NO_TIMER
            self.reading_cycle = None
            self._close_file_socket()  # the WebSocket protocol gets connection_lost
            self.upgraded = take_over(self, scope, parser)
        return True

    def on_upgrade_data(self, data: bytes) -> None:
        """The bytes after an upgrade request's head, in the read that carried it."""
        if self.upgraded is not None and data:
            self.upgraded.data_received(data)

    def on_body(self, chunk: bytes) -> None:
        cycle = self.reading_cycle
        if cycle is not None:
            cycle.feed_body(chunk)

    def on_request_end(self) -> None:
        cycle = self.reading_cycle
        if cycle is None or cycle is self.answered:
            return  # an answer at once (whole.py) is for a request complete already
        if cycle.more_body or cycle.waiter is not None:
            cycle.end_body()
        else:
            cycle.request_complete = True  # no body, nobody waiting for one: end_body() without the calls
        if self.timer == BODY_TIMER:
            self.timer = NO_TIMER
        if not cycle.keep_alive:
            self.ignore_input = True

    def apply_limits(self, max_body_size: int, body_timeout: float, request_timeout: float) -> str | None:
        """A route's own limits for the request being served (the limits stage calls this).

        Returns why the body is refused (413) when its Content-Length, or what
        has arrived of it, is beyond the route's max_body_size already.
        """
        cycle = self.cycle
        if cycle is None:
            return None
        cycle.deadline = cycle.begun + request_timeout
        if (cycle.content_length or 0) > max_body_size or cycle.received > max_body_size:
            return f"The request body is larger than {max_body_size} bytes, the most this address accepts."
        if self.reading_cycle is not cycle or cycle.request_complete:
            return None
        self.parser.limit_body(max_body_size)
        self.body_timeout = body_timeout
        if self.timer == BODY_TIMER:
            self.deadline = self.loop.time() + body_timeout
        return None

    def start_body_timer(self) -> None:
        self._set_timer(BODY_TIMER, self.body_timeout)

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()
            if self.timer == BODY_TIMER:
                self.timer = NO_TIMER

    def resume_reading(self) -> None:
        if self.read_paused and not self.pipeline and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()
            reading = self.reading_cycle
            if reading is not None and not reading.request_complete and not reading.expect_continue:
                self.start_body_timer()

    # Writing ---------------------------------------------------------------

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        self._wake_drain()
        if self.next_waits:
            self.next_waits = False
            self.on_response_complete(None)

    async def drain(self) -> None:
        """Wait until the transport's buffer falls below its low-water mark (or the connection is lost)."""
        if self.write_paused and not self.closed:
            await self.drainers.wait(self.loop)

    def _wake_drain(self) -> None:
        self.drainers.wake()

    # Cycles ------------------------------------------------------------------

    def _start(self, cycle: RequestCycle) -> None:
        self.cycle = cycle
        cycle.scope["state"] = self.state.lifespan_state.copy()  # here: an answer at once needs none
        cycle.task = self.loop.create_task(cycle.run(self.app))

    def on_response_complete(self, cycle: RequestCycle | None, now: float = 0.0) -> None:
        """The cycle's response is written: log it, then next request or close (now: the loop's time, if known).

        None: the connection was holding its next request until the client took what it was sent (one
        method, not two, on the path every response takes).
        """
        if cycle is not None:
            log = self.log
            if log is not None:
                log(self, cycle)
            if self.closed:
                return
            if not cycle.keep_alive or not cycle.request_complete:
                # Linger rather than close: bytes the client is still sending would
                # otherwise make the kernel reset the connection under its response.
                self.cycle = None
                self._linger()
                return
            self.cycle = None
            if self.write_paused:  # the client is not taking what it was sent: serve and read nothing more yet
                self.next_waits = True
                self.pause_reading()
                return
        elif self.closed:
            return
        if self.pipeline:
            self._start(self.pipeline.popleft())
            self.resume_reading()
        elif self.pending_error is not None:
            self._write_error(self.pending_error)
        else:
            if self.read_paused:
                self.resume_reading()
            now = now or self.loop.time()
            if self.parser.in_head:
                self.timer, self.deadline = HEAD_TIMER, now + self.header_timeout
            else:
                self.timer, self.deadline = IDLE_TIMER, now + self.keepalive_timeout

    # Errors and closing -------------------------------------------------------

    def refuse(self, exc: HttpError) -> None:
        """Answer a refused request once the responses before it are out."""
        self.ignore_input = True
        reading = self.reading_cycle
        if reading is not None and not reading.request_complete:
            # The error is in this cycle's body: it will never be complete.
            reading.on_disconnect()
            if reading is self.cycle:
                # The app learns through receive() (http.disconnect) and may clean up;
                # the client gets our error now.
                self._abort_cycle(reading, exc, cancel=False)
                return
            self.pipeline.remove(reading)
        if self.cycle is None:
            self._write_error(exc)
        else:
            self.pending_error = exc

    def _abort_cycle(self, cycle: RequestCycle, exc: HttpError, cancel: bool) -> None:
        task = cycle.task
        if cancel and task is not None:
            # Why, for the app (an app pool replaces a WSGI process past request_timeout); a Later needs none.
            if isinstance(task, asyncio.Task):
                task.cancel(TIMEOUT_CUT)
            else:
                task.cancel()
        if cycle.response_started:
            self.abort()
        else:
            cycle.response_complete = True
            self.cycle = None
            self._write_error(exc, cycle)

    def _write_error(self, exc: HttpError, cycle: RequestCycle | None = None) -> None:
        if self.closed:
            return
        response = error_response(exc.status, exc.detail, self.state.common)
        size = len(response) - response.index(b"\r\n\r\n") - 4  # the body's bytes, as the log counts them
        if cycle is not None:  # the request is known: its log line names it (504, 413 while streaming)
            cycle.status = exc.status
            cycle.sent = size
            self.state.access_log.log(self, cycle)
        else:
            self.state.access_log.log_refused(self, exc.status, size)
        self.transport.write(response)
        self._linger()

    def close_with_error(self, cycle: RequestCycle, status: int, detail: str) -> None:
        """Used by cycles: a 500 before the app's response began."""
        self.cycle = None
        self.ignore_input = True
        self._write_error(HttpError(status, detail), cycle)

    def _linger(self) -> None:
        self.ignore_input = True
        self.pipeline.clear()
        self.state.closing_now(self)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            if self.read_paused:
                self.read_paused = False
                self.transport.resume_reading()
            self._set_timer(LINGER_TIMER, LINGER_SECONDS)
        else:
            self.transport.close()

    def abort(self) -> None:
        """Close at once: the response already started and cannot be finished."""
        self.ignore_input = True
        self.transport.close()

    def shutdown(self) -> None:
        """Server is stopping: close idle connections, let busy ones finish their response.

        A connection accepted a moment ago (or whose head is arriving) is not
        idle: its client is sending a request the listener took. It gets
        SHUTDOWN_GRACE to arrive and is then served with Connection: close,
        so a worker recycled or reloaded under load fails no request.
        """
        self.stopping = True
        if self.cycle is None:
            if self.requests == 0 or self.parser.in_head:
                self._set_timer(HEAD_TIMER, min(self.header_timeout, SHUTDOWN_GRACE))
                return
            self.transport.close()
            return
        for cycle in (self.cycle, *self.pipeline):
            cycle.keep_alive = False

    # Timers --------------------------------------------------------------------

    def time_out(self, cycle: RequestCycle, cancel: bool = False) -> None:
        """request_timeout passed: a 504 if the response has not begun, else the connection is cut."""
        self._abort_cycle(cycle, HttpError(504, "The application did not answer in time."), cancel=cancel)

    @staticmethod
    def _let_the_vhost_answer_timeout(cycle: RequestCycle, now: float) -> bool:
        """A vhost with an error document for 504 sends it itself: its task is told why it is cancelled.

        Once: if the task has not completed its answer TIMEOUT_GRACE seconds
        later, the core's plain 504 (or a cut connection) follows as usual.
        """
        task = cycle.task
        if cycle.timeout_told or cycle.response_started or not isinstance(task, asyncio.Task):
            return False
        if not cycle.scope.get(TIMEOUT_PAGE_KEY):
            return False
        cycle.timeout_told = True
        cycle.deadline = now + TIMEOUT_GRACE
        task.cancel(TIMEOUT_CANCEL)
        return True

    def _stopped_reading(self, now: float) -> bool:
        """Cut off a client that took none of its unsent response bytes for send_timeout; True if it was.

        The bytes wait in the transport, or in a file the cycle's task sends
        beside it, which waits for the socket (file_waiting_since).
        """
        waiting = self.file_waiting_since
        if waiting and now - waiting >= self.send_timeout:
            unsent = -1
            cycle = self.cycle
            if cycle is not None and isinstance(cycle.task, asyncio.Task):
                cycle.task.cancel()  # its wait for the socket would outlive the connection
        else:
            unsent = self.transport.get_write_buffer_size()
            if not unsent:
                self.unsent = 0
                return False
            if not self.unsent or unsent < self.unsent:  # bytes waiting anew, or the client took some
                self.unsent_since = now
            self.unsent = unsent
            if now - self.unsent_since < self.send_timeout:
                return False
        logger.info(
            "%s took none of the response for %g s (send_timeout): connection closed%s",
            self.client_ip or "a unix socket client",
            self.send_timeout,
            f", {unsent} bytes unsent" if unsent >= 0 else " in the middle of a file",
        )
        self.ignore_input = True
        self.transport.abort()
        return True

    def _set_timer(self, timer: int, seconds: float) -> None:
        self.timer = timer
        self.deadline = self.loop.time() + seconds

    def check_timers(self, now: float) -> None:
        """Called once a second by the server's sweep."""
        if self._stopped_reading(now):
            return
        cycle = self.cycle
        if cycle is not None and cycle.deadline and now >= cycle.deadline:
            cycle.deadline = 0.0
            if not self._let_the_vhost_answer_timeout(cycle, now):
                self.time_out(cycle, cancel=True)
            return
        if not self.timer or now < self.deadline:
            return
        timer, self.timer = self.timer, NO_TIMER
        if timer == HEAD_TIMER and self.stopping and not self.parser.in_head:
            self.transport.close()  # nothing came in the shutdown grace
        elif timer == HEAD_TIMER:
            self.refuse(HttpError(408, "The request head did not arrive in time."))
        elif timer == BODY_TIMER:
            self.refuse(HttpError(408, "The request body stalled."))
        elif self.transport.get_write_buffer_size():
            self._set_timer(timer, 1.0)  # idle or lingering with bytes still unsent: send_timeout decides
        else:
            self.transport.close()
