"""The lean WSGI bridge: the ASGI app that runs a WSGI app's requests on worker threads.

Rules:
- Each request is one _Exchange, queued to `threads` worker threads (the
  most recently idle thread takes the next, so a light load stays on one
  warm thread). The worker builds the environ, calls the app and iterates
  its result; the event loop does all the I/O.
- Output reaches the loop in batches: the worker appends chunks under the
  exchange's lock and schedules a loop callback (call_soon_threadsafe) only
  when none is pending, so a response produced in one go costs one hand-off.
- Backpressure: once RESPONSE_HIGH bytes wait for the loop, the worker sleeps
  until the loop has sent them, and send() waits while the client is slow.
- Headers leave with the first non-empty chunk (PEP 3333); until then
  start_response may replace them when given exc_info.
- wsgi.input asks the loop for one ASGI body message at a time; the worker
  sleeps while the loop receives it.
- The result's close() is always called, on the worker, before the last
  message of the response goes out.
- Once the client has gone, write() raises ClientDisconnected, the next chunk
  ends the iteration (then close()), and a queued request never starts.
- An app error before any byte was sent lets the core answer 500; after,
  the connection is cut so the client sees an incomplete response.
- A request without a body is taken without a task (gateway/types.py's
  Later): when the worker's first hand-off finds the response complete and
  whole, the loop writes it at once; anything else (streamed, large, an
  error) carries on in a task from where it stands. The task, its futures
  and the two ASGI messages were a quarter of the gateway's own work per
  request (callgrind, a trivial app: 148k instructions, 112k without).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from adapters._wsgi_environ import NO_BODY, ClientDisconnected, ErrorStream, WsgiInput, base_environ, environ_for
from adapters._wsgi_pool import WorkerPool
from gateway.http.cycle import NO_BODY_STATUSES
from gateway.http.responses import is_token
from gateway.types import CONNECTION_KEY, Headers, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.http.cycle import RequestCycle

logger = logging.getLogger("gateway.adapters.wsgi")

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
# start_response's headers as the app gave them (checked: no CR or LF), their header lines
# for cycle.respond_lines() (None when they hold framing headers), and the app's Content-Length.
AppHeaders = tuple[list[tuple[str, str]], bytes | None, str | None]
Write = Callable[[bytes], None]
StartResponse = Callable[..., Write]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_TOKENS: set[str] = set()  # lower-cased header names checked once
_TOKENS_MAX = 4096
RESPONSE_HIGH = 256 * 1024  # response bytes a worker may have waiting for the loop before it sleeps
_AWAKE, _WANTS_BODY, _DRAINING = 0, 1, 2  # what a worker sleeps for


class Bridge:
    """The ASGI app in front of a WSGI app: hands each request to the worker pool."""

    def __init__(self, app: WSGIApp, threads: int, where: str) -> None:
        self.wsgi = app
        self.where = where
        self.pool = WorkerPool(threads, "wsgi")
        self.base = base_environ(ErrorStream(where))
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Start the workers (idempotent); they hand their results to the running loop."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
            self.pool.start()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        if self.loop is None:
            self.start()
        exchange = _Exchange(self, scope)
        self.pool.submit(exchange)
        await exchange.serve(receive, send)

    def gateway_respond_now(self, scope: Scope) -> _Exchange:
        """The core's respond-now for a bodyless request: the exchange answers from the loop's callback."""
        if self.loop is None:
            self.start()
        return _Exchange(self, scope)

    async def aclose(self, grace: float) -> None:
        """Stop the workers once the queued requests are done; wait up to grace for busy ones."""
        if self.loop is None:
            return
        self.pool.stop()
        busy = await asyncio.to_thread(self.pool.join, grace)
        if busy:
            logger.error("%s: %d WSGI worker threads still busy after %.0fs; leaving them", self.where, busy, grace)


class _Exchange:
    """One request between the loop (serve) and a worker thread (run).

    Fields under `mutex` are shared; the loop owns waiter/ready/started, the
    worker owns status/headers/committed. A sleeping worker is woken exactly
    once, by whoever clears `sleeping`.
    """

    __slots__ = (
        "body_chunk",
        "body_more",
        "bridge",
        "chunks",
        "committed",
        "cycle",
        "error",
        "finished",
        "gone",
        "head",
        "headers",
        "loop",
        "mutex",
        "ready",
        "scheduled",
        "scope",
        "size",
        "sleep_lock",
        "sleeping",
        "started",
        "status",
        "waiter",
    )

    def __init__(self, bridge: Bridge, scope: Scope) -> None:
        self.bridge = bridge
        self.loop = cast(asyncio.AbstractEventLoop, bridge.loop)
        self.scope = scope
        self.mutex = threading.Lock()
        self.sleep_lock: threading.Lock | None = None
        # shared, under mutex
        self.head: tuple[int, AppHeaders] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.scheduled = False
        self.sleeping = _AWAKE
        self.finished = False
        self.error: BaseException | None = None
        self.gone = False
        self.body_chunk = b""
        self.body_more = True
        # the loop's
        self.waiter: asyncio.Future[None] | None = None
        self.ready = False
        self.started = False
        self.cycle: RequestCycle | None = None  # taken without a task, until answered or handed over
        # the worker's
        self.status: int | None = None
        self.headers: AppHeaders = ([], None, None)
        self.committed = False

    # The loop's side -------------------------------------------------------

    async def serve(self, receive: Receive, send: Send) -> None:
        """Forward the worker's output batch by batch until the response is complete."""
        try:
            while True:
                if not self.ready:
                    self.waiter = self.loop.create_future()
                    try:
                        await self.waiter
                    finally:
                        self.waiter = None
                self.ready = False
                if await self._forward(receive, send):
                    return
        except BaseException:
            self._abandon()
            raise

    def begin(self, cycle: RequestCycle) -> None:
        """Later.begin: queue the request; the first hand-off answers it or starts a task."""
        self.cycle = cycle
        self.bridge.pool.submit(self)

    def cancel(self) -> None:
        """Later.cancel (request_timeout, shutdown): the worker stops at its next step, and is not answered."""
        self.cycle = None
        self._abandon()

    def _wake(self) -> None:
        cycle = self.cycle
        if cycle is not None:
            self.cycle = None
            self._answer(cycle)
            return
        self.ready = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _answer(self, cycle: RequestCycle) -> None:
        """The first hand-off of a request taken without a task: the whole response now, or a task."""
        with self.mutex:
            head = self.head
            whole = self.finished and self.error is None
            if whole and head is not None:
                chunks, self.chunks, self.head = self.chunks, [], None
        if not whole or head is None:
            self.ready = True  # the task's serve() forwards what is pending
            cycle.hand_over(self._carry_on)
            return
        status, (headers, lines, declared) = head
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        plain = status >= 200 and status not in NO_BODY_STATUSES and not cycle.is_head
        if lines is not None and plain and (declared is None or declared == str(len(body))):
            cycle.respond_lines(status, lines, body)  # the usual case: lines built on the worker
        else:
            cycle.respond(status, _encode_headers(headers), body)

    async def _carry_on(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.serve(receive, send)

    async def _forward(self, receive: Receive, send: Send) -> bool:
        """Send one batch; True when the exchange is over."""
        with self.mutex:
            self.scheduled = False
            head, self.head = self.head, None
            chunks = self.chunks
            if chunks:
                self.chunks = []
                self.size = 0
            finished, error, sleeping = self.finished, self.error, self.sleeping
        if error is not None:
            self.error = None
            if self.started and chunks:
                await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": True})
            raise error
        if head is not None:
            self.started = True
            await send({"type": "http.response.start", "status": head[0], "headers": _encode_headers(head[1][0])})
        if chunks or finished:
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            await send({"type": "http.response.body", "body": body, "more_body": not finished})
        if finished:
            return True
        if sleeping == _WANTS_BODY:
            return not await self._deliver_body(receive)
        if sleeping == _DRAINING:
            self._resume()
        return False

    async def _deliver_body(self, receive: Receive) -> bool:
        """Receive one body message for the sleeping worker; False when the client has gone."""
        message = await receive()
        kept = bool(message["type"] == "http.request")
        with self.mutex:
            if kept:
                self.body_chunk = message.get("body", b"")
                self.body_more = message.get("more_body", False)
            else:
                self.gone = True
            self._resume_locked()
        return kept

    def _resume(self) -> None:
        with self.mutex:
            self._resume_locked()

    def _resume_locked(self) -> None:
        if self.sleeping != _AWAKE and self.sleep_lock is not None:
            self.sleeping = _AWAKE
            self.sleep_lock.release()

    def _abandon(self) -> None:
        """The loop stops listening (disconnect, timeout, error): the worker stops at its next step."""
        with self.mutex:
            self.gone = True
            self._resume_locked()

    # The worker's side -----------------------------------------------------

    def run(self, sleep_lock: threading.Lock) -> None:
        """Call the app and hand its response to the loop (on a worker thread)."""
        cycle = self.cycle
        if self.gone or (cycle is not None and cycle.disconnected):
            return  # the client left while the request was queued
        connection = self.scope.get(CONNECTION_KEY)
        if connection is not None and connection.closed:  # the same, for a request a task waits for
            self.gone = True
            self._finish(None)  # the task wakes, finds the client gone, and ends
            return
        self.sleep_lock = sleep_lock
        error: BaseException | None = None
        result: Iterable[bytes] | None = None
        try:
            environ = environ_for(self.scope, self.bridge.base)
            has_body = environ.get("CONTENT_LENGTH", "0") != "0" or "HTTP_TRANSFER_ENCODING" in environ
            environ["wsgi.input"] = WsgiInput(self._fetch_body) if has_body else NO_BODY
            result = self.bridge.wsgi(environ, self.start_response)
            for chunk in result:
                if chunk:
                    self._push(chunk if type(chunk) is bytes else _as_bytes(chunk))
        except ClientDisconnected:
            pass
        except Exception as exc:
            error = exc
        except BaseException as exc:  # SystemExit and the like must not reach the event loop
            error = RuntimeError(f"The WSGI app raised {type(exc).__name__}: {exc}")
            error.__cause__ = exc
        finally:
            if result is not None:
                self._close(result)
        self._finish(error)

    def _close(self, result: Iterable[bytes]) -> None:
        close = getattr(result, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                logger.exception("%s: the WSGI app's response raised in close()", self.bridge.where)

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None) -> Write:
        """PEP 3333's start_response: called again only with exc_info, and then only before output."""
        if exc_info is not None:
            try:
                if self.committed:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise RuntimeError("start_response() was called a second time without exc_info (PEP 3333).")
        self.headers = (headers, *_header_lines(headers))
        self.status = _status_code(status)
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy write() callable: the data is buffered for the loop, with backpressure."""
        if self.status is None:
            raise RuntimeError("write() was called before start_response().")
        if type(data) is not bytes:
            data = _as_bytes(data)
        if data:
            self._push(data)

    def _push(self, chunk: bytes) -> None:
        with self.mutex:
            if self.gone:
                raise ClientDisconnected("the client disconnected")
            if not self.committed:
                if self.status is None:
                    raise RuntimeError("The WSGI app produced output before calling start_response().")
                self.head = (self.status, self.headers)
                self.committed = True
            self.chunks.append(chunk)
            self.size += len(chunk)
            drain = self.size >= RESPONSE_HIGH
            if drain:
                self.sleeping = _DRAINING
            notify = not self.scheduled
            self.scheduled = True
        if notify:
            self._notify()
        if drain:
            self._sleep()

    def _fetch_body(self) -> tuple[bytes, bool]:
        """wsgi.input's fetch: sleep while the loop receives the next body message."""
        with self.mutex:
            if self.gone:
                raise ClientDisconnected("the client disconnected")
            self.sleeping = _WANTS_BODY
            notify = not self.scheduled
            self.scheduled = True
        if notify:
            self._notify()
        self._sleep()
        chunk, self.body_chunk = self.body_chunk, b""
        return chunk, self.body_more

    def _sleep(self) -> None:
        cast(threading.Lock, self.sleep_lock).acquire()
        if self.gone:
            raise ClientDisconnected("the client disconnected")

    def _finish(self, error: BaseException | None) -> None:
        with self.mutex:
            if error is None and not self.committed and not self.gone:
                if self.status is None:
                    error = RuntimeError("The WSGI app returned without calling start_response().")
                else:
                    self.head = (self.status, self.headers)
                    self.committed = True
            self.error = error
            self.finished = True
            notify = not self.scheduled
            self.scheduled = True
        if notify:
            self._notify()

    def _notify(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self._wake)
        except RuntimeError:  # the loop has closed: nobody is listening any more
            self.gone = True


def _status_code(status: str) -> int:
    if type(status) is not str:
        raise TypeError(f"The WSGI status must be a str such as '200 OK', got {type(status).__name__}")
    try:
        code = int(status[:3])
    except ValueError:
        code = 0
    if code < 100 or (len(status) > 3 and status[3] != " "):
        raise ValueError(f"The WSGI status must start with a 3-digit code, as in '200 OK', got {status!r}")
    return code


def _header_lines(headers: list[tuple[str, str]]) -> tuple[bytes | None, str | None]:
    """The headers as lines for the client (one join, one encode) and the declared Content-Length.

    Raises ValueError for a CR, LF or NUL inside a name or value (they would
    split the head), or a name that is not a token, and UnicodeEncodeError for text beyond latin-1, in start_response,
    where PEP 3333 puts the blame. The lines leave out Content-Length (the
    core writes the length it sends), Date and Server, and are None for headers the core frames
    itself (Connection, Transfer-Encoding): the list path decides those.
    """
    parts: list[str] = []
    declared: str | None = None
    plain = True
    for name, value in headers:
        lower = name.lower()
        if lower not in _TOKENS:
            _check_name(name)
        if lower == "content-length":
            declared = value
            continue
        if lower == "connection" or lower == "transfer-encoding":
            plain = False
        elif lower == "date" or lower == "server":
            continue  # the core writes its own (cycle.py's _OURS)
        parts.append(f"{lower}: {value}\r\n")
    text = "".join(parts)
    count = len(parts)  # each line's own CR LF, and no other
    broken = declared is not None and ("\n" in declared or "\r" in declared)
    if broken or text.count("\n") != count or text.count("\r") != count or "\0" in text:
        name = next(n for n, v in headers if "\n" in n + v or "\r" in n + v or "\0" in n + v)
        raise ValueError(f"The WSGI response header {name!r} has a CR, LF or NUL in its name or value.")
    return (text.encode("latin-1") if plain else None), declared


def _check_name(name: str) -> None:
    """Remember a header name that is a token (lower-cased); ValueError for one that is not."""
    if not is_token(name):
        raise ValueError(f"The WSGI response header name {name!r} is not a token (RFC 9110 §5.6.2).")
    if len(_TOKENS) < _TOKENS_MAX:
        _TOKENS.add(name.lower())


def _encode_headers(headers: list[tuple[str, str]]) -> Headers:
    """ASGI's header list (start_response checked the text already)."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]


def _as_bytes(chunk: object) -> bytes:
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"A WSGI app must produce bytes, got {type(chunk).__name__}")
