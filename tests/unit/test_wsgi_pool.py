"""The WSGI worker threads: jobs in arrival order, and threads that let the event loop finish its turn."""

from __future__ import annotations

import os
import threading

import pytest

from adapters._wsgi_pool import WorkerPool


class Job:
    def __init__(self, name: str, seen: list[tuple[str, int]], done: threading.Event, gate: threading.Event) -> None:
        self.name, self.seen, self.done, self.gate = name, seen, done, gate

    def run(self, bell: threading.Lock) -> None:
        self.gate.wait(5)
        self.seen.append((self.name, os.sched_getscheduler(0)))
        self.done.set()


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_queued_jobs_run_in_arrival_order_on_batch_threads() -> None:
    """A woken worker must not preempt the loop thread (SCHED_BATCH); the queue is first come, first served."""
    pool = WorkerPool(1, "test")
    pool.start()
    seen: list[tuple[str, int]] = []
    gate = threading.Event()
    events = [threading.Event() for _ in range(3)]
    for name, done in zip("abc", events, strict=True):
        pool.submit(Job(name, seen, done, gate))
    gate.set()
    assert all(done.wait(5) for done in events)
    pool.stop()
    assert pool.join(5) == 0
    assert seen == [(name, os.SCHED_BATCH) for name in "abc"]
