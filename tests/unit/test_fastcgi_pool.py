"""The FastCGI pool's slots without sockets: requests in tasks and taskless ones (Laters) queue in one line.

A slot lost or given twice would show up as a PHP site that hangs or runs
more scripts at once than it has children, so every way out of the queue is
checked: served, cancelled before its turn, cancelled as its turn came.
"""

from __future__ import annotations

import asyncio

import pytest

from adapters._fastcgi_client import FastCgiConnection, FastCgiPool


class Taskless:
    """A SlotWaiter as _fastcgi_later.py's: it writes down when its turn came."""

    def __init__(self, name: str, order: list[str]) -> None:
        self.name = name
        self.order = order

    def slot_given(self) -> None:
        self.order.append(self.name)


def pool_of(size: int) -> FastCgiPool:
    pool = FastCgiPool("unix:/nowhere.sock", size, True, 0.1)
    pool.idle = [FastCgiConnection() for _ in range(4)]  # open idle connections: acquire never connects
    return pool


def test_tasks_and_taskless_requests_are_served_in_the_order_they_came() -> None:
    async def scenario() -> list[str]:
        pool = pool_of(1)
        order: list[str] = []
        assert pool.take_slot() and not pool.take_slot()
        first = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        pool.queue(Taskless("taskless", order))
        assert pool.queued == 2
        pool.give_slot()  # the slot taken at the start: to the task, queued first
        connection = await first
        order.append("task")
        pool.release(connection, True)  # and on to the taskless request
        assert (pool.queued, pool.free, pool.busy) == (0, 0, 0)
        pool.give_slot()
        assert pool.free == 1
        return order

    assert asyncio.run(scenario()) == ["task", "taskless"]


@pytest.mark.parametrize("turn_came", [False, True], ids=["before-its-turn", "as-its-turn-came"])
def test_a_task_cancelled_in_the_queue_leaves_the_slot_to_the_next(turn_came: bool) -> None:
    async def scenario() -> tuple[list[str], int]:
        pool = pool_of(1)
        order: list[str] = []
        assert pool.take_slot()
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0)
        pool.queue(Taskless("next", order))
        if turn_came:
            pool.give_slot()  # the task's turn, but it is cancelled before it runs
        waiting.cancel()
        await asyncio.sleep(0)
        if not turn_came:
            pool.give_slot()
        return order, pool.queued

    assert asyncio.run(scenario()) == (["next"], 0)


def test_a_taskless_request_gone_before_its_turn_frees_its_place() -> None:
    pool = pool_of(2)
    order: list[str] = []
    assert pool.take_slot() and pool.take_slot()
    gone, kept = Taskless("gone", order), Taskless("kept", order)
    pool.queue(gone)
    pool.queue(kept)
    pool.unqueue(gone)
    pool.give_slot()
    pool.give_slot()
    assert order == ["kept"]
    assert (pool.queued, pool.free) == (0, 1)


def test_a_worn_or_closed_connection_is_never_handed_out_again() -> None:
    async def scenario() -> tuple[bool, int]:
        pool = FastCgiPool("unix:/nowhere.sock", 2, True, 0.1, max_uses=2)
        pool.idle = [FastCgiConnection()]
        assert pool.take_slot()
        connection = pool.take_idle()
        assert connection is not None and connection.uses == 1
        pool.release(connection, True)
        assert pool.take_slot()
        again = pool.take_idle()
        assert again is connection and again.uses == 2
        pool.release(again, True)  # its second use: worn out, closed rather than kept
        return again.closed, len(pool.idle)

    assert asyncio.run(scenario()) == (True, 0)
