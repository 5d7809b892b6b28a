"""The ASGI lifespan protocol: startup before the first request, shutdown after the last.

An app that raises before it ever calls receive() does not speak lifespan
(a plain HTTP-only app): that is logged at debug level and serving goes on.
An app that reports startup.failed, or raises once startup has begun, stops
the server before it accepts a connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from gateway.errors import StartupError
from gateway.types import ASGIApp, Handler, Message, Receive, Send

logger = logging.getLogger("gateway.error")


class Lifespan:
    """Runs the app's lifespan task and exchanges its messages."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.supported = True
        self.receive_called = False
        self.startup_done = asyncio.Event()
        self.shutdown_done = asyncio.Event()
        self.failure: str | None = None

    async def startup(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run())
        await self.inbox.put({"type": "lifespan.startup"})
        await self.startup_done.wait()
        if self.failure is not None:
            # A router's failure names its route and what failed there (the app's own lifespan, a pool).
            named = getattr(self.app, "names_its_failures", False)
            raise StartupError(
                f"Startup failed: {self.failure}" if named else f"The app's lifespan startup failed: {self.failure}"
            )

    async def shutdown(self, grace: float) -> None:
        if not self.supported or self.task is None or self.task.done():
            return
        await self.inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self.shutdown_done.wait(), grace)
        except TimeoutError:
            logger.error("The app's lifespan shutdown did not finish within %.0fs.", grace)
            self.task.cancel()
        if self.failure is not None:
            logger.error("The app's lifespan shutdown failed: %s", self.failure)

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                raise
            if not self.receive_called:
                self.supported = False
                logger.debug("The app does not support the lifespan protocol (%r).", exc)
            elif not self.startup_done.is_set() or not self.shutdown_done.is_set():
                logger.exception("Exception in the app's lifespan handler")
                self.failure = self.failure or f"{type(exc).__name__}: {exc}"
        finally:
            self.startup_done.set()
            self.shutdown_done.set()

    async def _receive(self) -> Message:
        self.receive_called = True
        return await self.inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        if kind in ("lifespan.startup.failed", "lifespan.shutdown.failed"):
            self.failure = message.get("message") or "(no message given)"
        if kind.startswith("lifespan.startup."):
            self.startup_done.set()
        elif kind.startswith("lifespan.shutdown."):
            self.shutdown_done.set()
        else:
            raise RuntimeError(f"Unexpected ASGI message type {kind!r} during lifespan.")


# The other side: an app made of handlers (the router, a pool host, an app process) answering lifespan.

STARTUP_ERRORS = (StartupError, OSError, RuntimeError)


async def start_handlers(handlers: Iterable[Handler]) -> list[Handler]:
    """startup() each handler in order; when one fails, those started are closed again and the error raised."""
    started: list[Handler] = []
    try:
        for handler in handlers:
            await handler.startup()
            started.append(handler)
    except STARTUP_ERRORS:
        await close_handlers(started)
        raise
    return started


async def close_handlers(handlers: list[Handler]) -> None:
    """aclose() each handler in reverse order; one that fails is logged and the others still close."""
    for handler in reversed(handlers):
        try:
            await handler.aclose()
        except Exception:
            logger.exception("Error while stopping a handler")


async def handlers_lifespan(handlers: Iterable[Handler], receive: Receive, send: Send) -> None:
    """The whole lifespan exchange for an app whose startup and shutdown are its handlers'."""
    await receive()
    try:
        started = await start_handlers(handlers)
    except STARTUP_ERRORS as exc:
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    await send({"type": "lifespan.startup.complete"})
    if (await receive())["type"] == "lifespan.shutdown":
        await close_handlers(started)
        await send({"type": "lifespan.shutdown.complete"})
