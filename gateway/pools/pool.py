"""AppPool: the processes of one isolated route, run by Passenger's policy, and the ASGI app that reaches them.

Rules:
- A request takes a slot on the ready process with the fewest requests in
  flight (ties: the oldest, so younger extra processes go idle and are
  stopped) whose in-flight count is below `concurrency`. With none free it
  waits in a FIFO queue of at most `queue` requests (beyond: 503 with
  Retry-After), and a process is started when fewer are starting than
  requests wait and the pool is below `max`.
- `min` processes start with the gateway (startup fails if they cannot) and
  are kept: one that exits is replaced. Beyond min, a process idle for
  `idle_timeout` is stopped (the newest first).
- After `max_requests` requests, or above `max_memory` (checked each
  second), a process drains: it takes no new requests, a replacement starts
  when one is needed, and it stops once its last request has finished.
- A process that exits unexpectedly is logged with its status and dropped;
  its requests get a 502 (or are cut mid-response). None is sent to another
  process: it may be what killed this one (Passenger's rule too), and the
  others' slots are the checkout's to give. A request that never reached it
  (its connect refused before the exit was heard of) is offered to another.
- A process keeps its upstream (the proxy client's connections to it) until
  it stops: requests handed to a draining process still reach it.
- A WSGI app's thread cannot be stopped: a request that passes
  request_timeout (a 504 here, or a worker's own 504 whose connection then
  leaves unanswered) may leave one stuck in the app, which no slot count
  sees. Its process is recycled, as gunicorn replaces a worker past its
  timeout; an ASGI app's task is cancelled in its process instead.
- Start failures back off exponentially (0.1 s to 10 s). While no process
  lives and the pool is backing off, requests get a 502 at once rather than
  waiting for an app that cannot start; the reason is in the error log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from adapters._proxy_client import ProxyClient
from adapters._proxy_options import ProxyOptions
from adapters._proxy_upstreams import Upstream
from adapters._static_files import Reply
from gateway.metrics import register_pool
from gateway.pools.app_process import AppProcess, StartFailed
from gateway.pools.options import PoolOptions
from gateway.pools.scope_header import PoolRequestHeads
from gateway.processes import exit_description
from gateway.types import TIMEOUT_CANCEL, TIMEOUT_CUT, Message, Receive, Scope, Send

logger = logging.getLogger("gateway.pools")
T = TypeVar("T")
TICK = 1.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
QUEUE_FULL = Reply(503, "Service Unavailable: the application is busy; try again.", ((b"retry-after", b"1"),))
CANNOT_START = Reply(502, "Bad Gateway: the application could not be started; the reason is in the error log.")
STOPPING = Reply(503, "Service Unavailable: the application is stopping.", ((b"retry-after", b"1"),))
EXITED = Reply(502, "Bad Gateway: the application's process exited; the reason is in the error log.")
UNSENT_TRIES = 3  # processes a request that reached none of them is offered to (each was exiting)


class Unavailable(Exception):
    """No process can take the request; the reply says why."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


class _Answered:
    """The request's send, noting whether the app's response began (a WSGI pool's timeout check).

    request_timeout is the time to a response's start: a client that leaves a
    long download is no sign of a stuck thread, one that leaves before any
    answer may be.
    """

    __slots__ = ("began", "send")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.began = False

    async def __call__(self, message: Message) -> None:
        self.began = True
        await self.send(message)


class AppPool:
    """One isolated route's app processes; called as the route's ASGI app."""

    def __init__(
        self,
        label: str,
        options: PoolOptions,
        concurrency: int,
        command: Callable[[Path], list[str]],
        new_socket: Callable[[int], Path],
        env: dict[str, str],
        cwd: Path,
        read_timeout: float,
        threads: bool = False,
    ) -> None:
        self.label = label
        self.options = options
        self.concurrency = concurrency
        self.command = command  # the app process's command line, given its socket
        self.new_socket = new_socket  # the socket path of the n-th process started
        self.env = env
        self.cwd = cwd
        self.read_timeout = read_timeout
        proxy = ProxyOptions(preserve_host=True, read_timeout=read_timeout, keepalive=min(concurrency, 32), max_fails=0)
        self.client = ProxyClient([], proxy)
        self.client.heads = PoolRequestHeads()
        self.client.others = False
        self.threads = threads  # a WSGI app: a request past request_timeout may hold a thread for good
        self.processes: list[AppProcess] = []
        self.upstreams: dict[AppProcess, Upstream] = {}
        self.waiters: deque[asyncio.Future[AppProcess]] = deque()
        self.starting = 0
        self.started_count = 0
        self.failures = 0
        self.backoff_until = 0.0
        self.closing = False
        self.last_recycle = ""
        self.reloaded_at = 0.0  # a process started before this runs old code: recycled once it serves
        self.tasks: set[asyncio.Task[Any]] = set()
        self.ticker: asyncio.Task[None] | None = None
        self.unregister_metrics: Callable[[], None] | None = None

    # The request path.

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused: tuple[AppProcess, ...] = ()
        while True:
            try:
                process = await self.checkout(refused)
            except Unavailable as exc:
                await exc.reply.send(send)
                return
            taken = True
            try:
                taken = await self.serve(process, scope, receive, send, last=len(refused) == UNSENT_TRIES - 1)
            finally:
                self.checkin(process, served=taken)
            if taken:
                return
            refused += (process,)

    async def serve(self, process: AppProcess, scope: Scope, receive: Receive, send: Send, last: bool) -> bool:
        """The request on one process; False when none of it reached the process, and another may take it.

        A process that dies leaves the pool once the loop hears of its exit; until
        then it can be checked out, and refuses the connection. A request that never
        reached it puts no other process at risk, so it is offered again, up to
        UNSENT_TRIES processes (nginx moves on after a refused connect too); the
        last try's failure is answered.
        """
        answered = _Answered(send) if self.threads else None
        started = time.monotonic()
        upstream = self.upstreams.get(process)
        try:
            if upstream is None:  # it exited between the checkout and now (logged by watch())
                if not last:
                    return False
                await EXITED.send(send)
                return True
            failure = await self.client.forward_to(upstream, scope, receive, answered or send, unsent_back=not last)
            if failure is not None and failure.unsent:
                self.drop_if_exited(process)
                if not last:
                    logger.warning("%s did not take a request (%s); offering it to another", process.label, failure)
                    return False
            if failure is not None and failure.status == 504:
                self.timed_out(process)
            elif answered is not None and not answered.began and time.monotonic() - started >= self.read_timeout - TICK:
                # The client left unanswered about when request_timeout passed: a worker of a supervisor
                # that gave its 504 itself (its timer runs from before this one's).
                self.timed_out(process)
        except asyncio.CancelledError as exc:
            if exc.args and exc.args[0] in (TIMEOUT_CANCEL, TIMEOUT_CUT):
                self.timed_out(process)
            raise
        return True

    def drop_if_exited(self, process: AppProcess) -> None:
        """A process that refused a connection and has exited gets no more requests (watch() logs the exit)."""
        if process.exited():
            self.forget(process)
            self.grow()

    def timed_out(self, process: AppProcess) -> None:
        """A request passed request_timeout in the app: a WSGI app's process is replaced (its thread may be stuck)."""
        if self.threads and process.state == "ready":
            self.recycle(process, "a request passed request_timeout; its thread may still be running")

    async def checkout(self, refused: tuple[AppProcess, ...] = ()) -> AppProcess:
        """A slot on a process: at once when one is free (one that refused this request last), else after queueing."""
        process = self.free_process(refused) or (self.free_process() if refused else None)
        if process is not None:
            process.busy += 1
            return process
        if self.closing:
            raise Unavailable(STOPPING)
        if len(self.waiters) >= self.options.queue:
            raise Unavailable(QUEUE_FULL)
        if not self.live() and time.monotonic() < self.backoff_until:
            raise Unavailable(CANNOT_START)
        waiter: asyncio.Future[AppProcess] = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        self.grow()
        try:
            return await waiter
        except asyncio.CancelledError:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.checkin(waiter.result(), served=False)
            raise

    def free_process(self, avoid: tuple[AppProcess, ...] = ()) -> AppProcess | None:
        best: AppProcess | None = None
        for process in self.processes:
            free = process.state == "ready" and process.busy < self.concurrency and process not in avoid
            if free and (best is None or process.busy < best.busy):
                best = process
        return best

    def checkin(self, process: AppProcess, served: bool = True) -> None:
        process.busy -= 1
        if served:
            process.served += 1
        if process.busy == 0:
            process.idle_since = time.monotonic()
        limit = self.options.max_requests
        if limit and process.state == "ready" and process.served >= limit:
            self.recycle(process, f"max_requests ({limit}) reached")
        if process.state == "draining" and process.busy == 0:
            self.retire(process)
        self.dispatch()

    def dispatch(self) -> None:
        """Hand free slots to waiting requests in arrival order; start a process for those left."""
        while self.waiters:
            process = self.free_process()
            if process is None:
                break
            waiter = self.waiters.popleft()
            if waiter.done():
                continue
            process.busy += 1
            waiter.set_result(process)
        if self.waiters:
            self.grow()

    def fail_waiters(self, reply: Reply) -> None:
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(Unavailable(reply))

    # Growing and shrinking.

    def live(self) -> list[AppProcess]:
        """Processes that are or will be serving (not draining or stopped)."""
        return [p for p in self.processes if p.state in ("starting", "ready")]

    def grow(self) -> None:
        """Start processes while the pool is below min, or requests wait that no starting process will take."""
        if self.closing or time.monotonic() < self.backoff_until:
            return  # when backing off, the ticker tries again
        while len(self.live()) < self.options.max:
            below_min = len(self.live()) < self.options.min
            uncovered = len(self.waiters) - self.starting * self.concurrency
            if not below_min and uncovered <= 0:
                return
            self.spawn()

    def spawn(self) -> asyncio.Task[AppProcess | None]:
        """One more process, starting now (counted as live at once, so callers do not over-spawn)."""
        self.starting += 1
        self.started_count += 1
        number = self.started_count
        socket = self.new_socket(number)
        process = AppProcess(self.command(socket), self.env, self.cwd, socket, f"{self.label} process {number}")
        self.processes.append(process)
        return self.background(self.start_process(process))

    def background(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run it as a task the pool keeps (so it is not collected) and cancels on aclose()."""
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def start_process(self, process: AppProcess) -> AppProcess | None:
        """Wait until a spawned process serves; on failure log it, back off, fail waiters nothing else will serve."""
        try:
            await process.start(self.options.start_timeout)
        except StartFailed as exc:
            self.starting -= 1
            if self.closing:  # stopped while it started (aclose() forgot it already): not a failure to report
                return None
            self.processes.remove(process)
            self.start_failed(process, str(exc))
            return None
        self.starting -= 1
        if self.closing:
            await process.stop()
            return None
        self.failures = 0
        self.upstreams[process] = self.client.add_upstream(process.address)
        logger.info("%s: started (pid %d)", process.label, process.pid)
        self.background(self.watch(process))
        if process.started < self.reloaded_at:
            self.recycle(process, "reloaded while it started")
        self.dispatch()
        return process

    def start_failed(self, process: AppProcess, reason: str) -> None:
        self.failures += 1
        delay = min(BACKOFF_FIRST * 2 ** (self.failures - 1), BACKOFF_MAX)
        self.backoff_until = time.monotonic() + delay
        logger.error("%s: could not start: %s; next try in %.1fs", process.label, reason, delay)
        if not self.live():
            self.fail_waiters(CANNOT_START)

    async def watch(self, process: AppProcess) -> None:
        """Drop a process that exits; one that exits unasked is logged, and replaced when needed."""
        assert process.process is not None
        status = await process.process.wait()
        unexpected = process.state != "stopped"
        self.forget(process)
        if unexpected and not self.closing:
            logger.error("%s (pid %d) exited with %s", process.label, process.pid, exit_description(status))
            process.state = "stopped"
            self.background(process.stop())  # removes its socket file
            self.grow()

    def forget(self, process: AppProcess) -> None:
        upstream = self.upstreams.pop(process, None)
        if upstream is not None:
            self.client.remove_upstream(upstream.label)
        if process in self.processes:
            self.processes.remove(process)

    def recycle(self, process: AppProcess, reason: str) -> None:
        """Drain a process: no new requests; a replacement starts when needed; it stops when idle."""
        process.state = "draining"
        process.recycle_reason = reason
        self.last_recycle = f"pid {process.pid}: {reason}"
        logger.info("%s (pid %d) is recycled: %s", process.label, process.pid, reason)
        if process.busy == 0:
            self.retire(process)
        self.grow()

    def retire(self, process: AppProcess) -> None:
        """Stop a process for good (its requests are done)."""
        self.forget(process)
        process.state = "stopped"
        self.background(process.stop())

    async def tick(self) -> None:
        """Once a second: idle processes beyond min stop, memory hogs recycle, min is kept."""
        while True:
            await asyncio.sleep(TICK)
            now = time.monotonic()
            options = self.options
            idle = [p for p in self.processes if p.state == "ready" and p.busy == 0]
            spare = len(self.live()) - options.min
            for process in reversed(idle):  # the newest first
                if spare <= 0:
                    break
                if now - process.idle_since >= options.idle_timeout:
                    logger.info("%s (pid %d) stopped after %gs idle", process.label, process.pid, options.idle_timeout)
                    self.retire(process)
                    spare -= 1
            if options.max_memory:
                for process in [p for p in self.processes if p.state == "ready"]:
                    rss = process.rss()
                    if rss > options.max_memory:
                        self.recycle(process, f"max_memory: {rss // 1048576} MiB > {options.max_memory // 1048576} MiB")
            self.grow()

    def reload(self, reason: str) -> None:
        """Replace every process (new code): each drains, fresh ones start; requests wait for them."""
        self.reloaded_at = time.monotonic()
        self.failures = 0
        self.backoff_until = 0.0
        for process in [p for p in self.processes if p.state == "ready"]:
            self.recycle(process, reason)
        self.grow()

    # Lifecycle and status.

    async def start(self) -> None:
        """Start `min` processes (all must serve, else RuntimeError names the reason) and the ticker."""
        results = await asyncio.gather(*(self.spawn() for _ in range(self.options.min)))
        if any(result is None for result in results):
            await self.aclose()
            raise RuntimeError(f"{self.label}: the app processes could not start (the reason is logged above)")
        self.ticker = asyncio.ensure_future(self.tick())
        self.unregister_metrics = register_pool(self.label, "app", self.metrics)

    async def aclose(self) -> None:
        self.closing = True
        if self.unregister_metrics is not None:
            self.unregister_metrics()
        if self.ticker is not None:
            self.ticker.cancel()
        self.fail_waiters(STOPPING)
        processes = list(self.processes)
        for process in processes:
            self.forget(process)
        await asyncio.gather(*(process.stop() for process in processes))
        for task in list(self.tasks):
            task.cancel()
        await self.client.aclose()

    def metrics(self) -> dict[str, int]:
        """For the metrics handler's pool gauges: processes running (draining ones too), their requests, the queue."""
        return {
            "processes": len(self.processes),
            "busy": sum(process.busy for process in self.processes),
            "queued": len(self.waiters),
        }

    def serving(self) -> bool:
        return any(process.state == "ready" for process in self.processes)

    def status(self) -> dict[str, object]:
        return {
            "kind": "app pool",
            "pool": self.label,
            "processes": [process.describe() for process in self.processes],
            "queued": len(self.waiters),
            "max": self.options.max,
            "last_recycle": self.last_recycle,
        }
