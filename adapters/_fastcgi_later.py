"""A bodyless FastCGI request answered from the connection's callbacks, without a task: the PHP hot path.

Why: for a PHP hello the ASGI round trip (a task, the stages' and the
handler's coroutines, a future per wait, two message dicts) cost the
gateway more than php-cgi's own work; bench/php.py runs beside nginx and
php-fpm. The core takes a Later for a GET without a body (gateway/types.py);
FastCgiApp.gateway_respond_now makes one for a script to run.

The request waits for a slot in the pool's queue like any other (as a
SlotWaiter), takes an idle kept connection and writes BEGIN_REQUEST, PARAMS
and the empty STDIN in one write. When the first read is exactly the whole
response (its records, then END_REQUEST with REQUEST_COMPLETE: what php-cgi
sends for a page it did not flush early), it is in hand: its CGI head
is parsed (or found among the heads seen before, its lines ready) and the
cycle writes head and body at once. Anything else carries on in a task
through the usual code (_fastcgi_exchange.py), with the records still
pending on the connection, so every failure, a streamed or large response,
and a request without an idle connection get exactly the usual handling:
- STDOUT without END_REQUEST yet (output flushed early, or larger than a
  read): finish_request() relays it as it comes;
- a malformed record, a closed connection, an END_REQUEST that is not
  REQUEST_COMPLETE, a bad CGI head: finish_request() turns it into the 502
  or 503 it always was;
- a free slot but no idle connection (first requests, a child replaced):
  run_request() connects, with the slot held.
cancel() (request_timeout, shutdown) leaves the queue, or closes the
connection: the request's php-cgi child is the only one that knows it.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from adapters._cgi_response import CgiHeadReader, CgiResponseError
from adapters._fastcgi_client import BackendError, FastCgiConnection, FastCgiPool
from adapters._fastcgi_exchange import BEGIN, END_STDIN, REQUEST_ID, finish_request, run_request
from adapters._fastcgi_records import whole_response
from adapters._request_body import no_body
from adapters._stderr_log import StderrLog
from gateway.http.cycle import NO_BODY_STATUSES
from gateway.http.responses import header_lines
from gateway.types import Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.http.cycle import RequestCycle

Relay = Callable[[Coroutine[Any, Any, None], str, Send], Coroutine[Any, Any, None]]


# CGI heads seen before (a site's scripts answer with a few: X-Powered-By and
# Content-Type) → their status and header lines, ready for the client. Bounded,
# filled and never evicted; heads with cookies (unique) stay out.
_HEADS_MAX = 256
_heads: dict[bytes, tuple[int, bytes]] = {}


def _plain_lines(status: int, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The header lines of a head cycle.respond_lines() can send as they are, else None (cycle.respond() checks)."""
    if status in NO_BODY_STATUSES or any(name == b"content-length" for name, _ in headers):
        return None
    return header_lines(headers)


Answer = tuple[int, bytes | None, list[tuple[bytes, bytes]], bytes]  # status, header lines or headers, body


def _answer(output: bytes) -> Answer | None:
    """The response in a script's whole output (its head from _heads if seen before); None if not a CGI response."""
    end = output.find(b"\r\n\r\n")
    known = _heads.get(output[:end]) if end > 0 else None
    if known is not None:
        return known[0], known[1], [], output[end + 4 :]
    reader = CgiHeadReader()
    try:
        head = reader.feed(output)
    except CgiResponseError:
        return None
    if head is None:
        return None
    body = reader.body
    if head.length is not None and head.length != len(body):
        return None  # the usual path answers a body that does not match its Content-Length
    lines = _plain_lines(head.status, head.headers)
    first_blank_line = end > 0 and len(body) == len(output) - end - 4  # then output[:end] is the whole head
    if lines is not None and first_blank_line and len(_heads) < _HEADS_MAX and b"set-cookie" not in lines:
        _heads[output[:end]] = head.status, lines
    return head.status, lines, head.headers, body


class FastCgiLater:
    """One request in flight: queued for a slot, then on a connection until its records end."""

    __slots__ = ("connection", "cycle", "logger", "params", "pool", "queued", "relay", "script")

    def __init__(self, pool: FastCgiPool, params: bytes, script: str, relay: Relay, logger: Any) -> None:
        self.pool = pool
        self.params = params  # PARAMS records
        self.script = script  # SCRIPT_FILENAME, for the log
        self.relay = relay  # FastCgiApp's error handling around a coroutine of the usual path
        self.logger = logger
        self.cycle: RequestCycle | None = None
        self.connection: FastCgiConnection | None = None
        self.queued = False

    def begin(self, cycle: RequestCycle) -> None:
        self.cycle = cycle
        pool = self.pool
        if pool.take_slot():
            self.slot_given()
        else:
            self.queued = True
            pool.queue(self)

    def slot_given(self) -> None:
        """Our turn (called by the pool): onto an idle connection, or the usual path to connect."""
        self.queued = False
        pool = self.pool
        cycle = self.cycle
        assert cycle is not None
        if cycle.disconnected:
            pool.give_slot()  # the client left while queued: nothing to run it for
            return
        connection = pool.take_idle()
        if connection is None:
            head = self.params
            self._hand_over(lambda send: run_request(pool, head, 0, no_body(), send, self.script, held=True))
            return
        self.connection = connection
        connection.later = self
        try:
            connection.write(BEGIN[pool.keep_conn] + self.params + END_STDIN)
        except BackendError:
            self._carry_on(connection)  # closed under us: the usual path makes it a 502

    def data_arrived(self, data: bytes) -> bool:
        """A read from the connection: True when it was the whole answer, now written to the client."""
        streams = whole_response(data, REQUEST_ID)
        answer = _answer(streams[0]) if streams is not None else None
        if streams is None or answer is None:
            return False  # the connection reads it as records and calls records_arrived()
        if streams[1]:
            log = StderrLog(self.script, self.logger)
            log.feed(streams[1])
            log.flush()
        connection = self.connection
        assert connection is not None
        connection.later = self.connection = None
        self.pool.release(connection, True)
        cycle = self.cycle
        assert cycle is not None
        status, lines, headers, body = answer
        if lines is not None:
            cycle.respond_lines(status, lines, body)
        else:
            cycle.respond(status, headers, body)
        return True

    def records_arrived(self) -> None:
        """Records that were not a whole answer, or the connection's end: the usual path takes over."""
        connection = self.connection
        assert connection is not None
        self._carry_on(connection)

    def cancel(self) -> None:
        """The request ends unanswered (timeout, shutdown): out of the queue, or its connection closed."""
        if self.queued:
            self.queued = False
            self.pool.unqueue(self)
            return
        connection, self.connection = self.connection, None
        if connection is not None:
            connection.later = None
            self.pool.release(connection, False)

    def _carry_on(self, connection: FastCgiConnection) -> None:
        connection.later = self.connection = None  # records() takes the pending records (and resumes reading)
        pool, script = self.pool, self.script
        head = BEGIN[pool.keep_conn] + self.params
        self._hand_over(lambda send: finish_request(pool, connection, send, script, head))

    def _hand_over(self, work: Callable[[Send], Coroutine[Any, Any, None]]) -> None:
        relay = self.relay
        script = self.script

        async def carry_on(scope: Scope, receive: Receive, send: Send) -> None:
            await relay(work(send), script, send)

        cycle = self.cycle
        assert cycle is not None
        cycle.hand_over(carry_on)
