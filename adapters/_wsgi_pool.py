"""Worker threads for blocking apps: jobs in arrival order, the most recently idle thread first.

A LIFO of idle threads keeps a light load on one warm thread instead of
waking them in turn, and each thread sleeps on its own lock (its "bell"),
which the job may borrow to sleep on while it waits for the event loop.

On Linux the threads run as SCHED_BATCH: a woken thread waits for the
event loop to block instead of preempting it, only to sleep again at once
on the GIL the loop holds. A Flask hello at 64 connections (8 threads, one
core) had the loop preempted 82,000 times in 14 s, about 2 µs of system
time a request; as SCHED_BATCH 250 times, and 7% more requests a second.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Protocol

from gateway.processes import run_as_batch

logger = logging.getLogger("gateway.adapters.wsgi")


class Job(Protocol):
    def run(self, bell: threading.Lock) -> None:
        """Run on a worker thread; may sleep on bell (acquire) until the loop releases it."""


class WorkerPool:
    """`size` threads, started by start() and stopped by stop() once the queue is empty."""

    def __init__(self, size: int, name: str) -> None:
        self.size = size
        self.name = name
        self.mutex = threading.Lock()
        self.queue: collections.deque[Job] = collections.deque()
        self.idle: list[_Worker] = []  # a stack: the last to go idle is the first to work
        self.threads: list[threading.Thread] = []
        self.stopping = False

    def start(self) -> None:
        for number in range(self.size):
            worker = _Worker(self)
            thread = threading.Thread(target=worker.run, name=f"{self.name}-{number}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def submit(self, job: Job) -> None:
        with self.mutex:
            if self.stopping:
                raise RuntimeError(f"The {self.name} worker threads have stopped; they take no new requests.")
            if self.idle:
                worker = self.idle.pop()
                worker.job = job
                worker.bell.release()
            else:
                self.queue.append(job)

    def next_job(self, worker: _Worker) -> Job | None:
        """The worker's next job, sleeping until there is one; None when the pool stops."""
        with self.mutex:
            if self.queue:
                return self.queue.popleft()
            if self.stopping:
                return None
            self.idle.append(worker)
        worker.bell.acquire()
        job, worker.job = worker.job, None
        return job

    def stop(self) -> None:
        """No new jobs; idle threads end now, busy ones after the queue is empty."""
        with self.mutex:
            self.stopping = True
            idle, self.idle = self.idle, []
        for worker in idle:
            worker.bell.release()  # with no job: the worker returns

    def join(self, grace: float) -> int:
        """Wait (blocking, up to grace seconds) for the threads to end; how many are still busy."""
        deadline = time.monotonic() + grace
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(thread.is_alive() for thread in self.threads)


class _Worker:
    __slots__ = ("bell", "job", "pool")

    def __init__(self, pool: WorkerPool) -> None:
        self.pool = pool
        self.job: Job | None = None
        self.bell = threading.Lock()  # held while the worker sleeps; release() wakes it
        self.bell.acquire()

    def run(self) -> None:
        run_as_batch()  # see the top
        while (job := self.pool.next_job(self)) is not None:
            try:
                job.run(self.bell)
            except BaseException:  # the thread outlives any one request
                logger.exception("Internal error in a %s worker thread", self.pool.name)
