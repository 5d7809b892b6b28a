"""Tasks waiting for a paused transport to take more bytes: all of them, since an app may send from several.

An ASGI app may call send() from more than one task (a WebSocket broadcast,
a response fed by workers): one waiter slot would lose all wakeups but the
last, and those tasks would wait for ever.
"""

from __future__ import annotations

import asyncio


class DrainWaiters:
    """Futures of the tasks waiting to write; wake() resolves every one."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[None]] = []

    async def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """Until the next wake() (a cancelled waiter stays listed, done, until then: wake() skips it)."""
        waiter = loop.create_future()
        self.waiters.append(waiter)
        await waiter

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
