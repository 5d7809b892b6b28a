"""The limits stage: per-vhost and per-route body size and timeouts, concurrency with a bounded queue, rates.

- `limits = { max_body_size = "1GiB", body_timeout = 120, request_timeout = 600 }`
  replaces the server's values for the route (wider or narrower). The core
  parses before routing, so it is started with the widest max_body_size any
  route has (runner.py), and this stage holds every route to its own: a
  Content-Length beyond it is a 413 before the app runs, a chunked body is
  cut with a 413 where it crosses it (HttpProtocol.apply_limits).
  Limits of the head itself (request line, header sizes, connections,
  keep-alive) come before any route is known: they stay server-wide.
- `limits = { max_concurrent = 8, queue = 32, queue_timeout = 10 }`: at most
  max_concurrent requests run in the route; up to `queue` more wait their
  turn for at most queue_timeout seconds; beyond either, 503 with
  Retry-After. A slow app cannot take every connection.
- `rate = { requests = 100, per = "1m", burst = 20 }`: a token bucket per
  client address (the one trusted proxies resolved); beyond it, 429 with
  Retry-After saying when the next request will be accepted.
- A WebSocket handshake meets rate and max_concurrent like a request (429 or
  503 as its HTTP answer), and an open WebSocket keeps its place among the
  route's max_concurrent until it closes. Body limits are not a WebSocket's:
  its messages have [server] ws_max_message_size.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any

from gateway.config.units import parse_duration, parse_size
from gateway.config.validate import convert, did_you_mean
from gateway.stages import Report
from gateway.stages.errors import plain_response
from gateway.types import CONNECTION_KEY, ASGIApp, HandlerContext, Receive, Scope, Send

KEYS = ("limits", "rate")
ORDER = 30
ROUTE_LIMITS = ("max_body_size", "body_timeout", "request_timeout", "max_concurrent", "queue", "queue_timeout")
SERVER_ONLY = (
    "max_request_line",
    "max_header_size",
    "max_header_count",
    "header_timeout",
    "keepalive_timeout",
    "keepalive_requests",
    "max_connections",
    "max_connections_per_client",
)
RATE_KEYS = ("requests", "per", "burst")
RATE_CLIENTS_MAX = 100_000  # buckets remembered; the least recently seen go first


@dataclass(frozen=True, slots=True)
class RateOptions:
    requests: int
    per: float
    burst: int


@dataclass(frozen=True, slots=True)
class LimitsOptions:
    max_body_size: int
    body_timeout: float
    request_timeout: float
    max_concurrent: int = 0
    queue: int = 0
    queue_timeout: float = 10.0
    rate: RateOptions | None = None


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> LimitsOptions | None:
    server = context.limits
    table = values.get("limits", {})
    if table is False:
        table = {}
    if not isinstance(table, dict):
        report("limits", 'expected a table, as in limits = { max_body_size = "100MiB", request_timeout = 600 }')
        table = {}
    fields: dict[str, Any] = {
        "max_body_size": server.max_body_size,
        "body_timeout": server.body_timeout,
        "request_timeout": server.request_timeout,
    }
    for key, value in table.items():
        fields.update(_limit(key, value, report))
    rate = _rate(values["rate"], report) if values.get("rate") not in (None, False) else None
    return LimitsOptions(rate=rate, **fields)


def _limit(key: str, value: Any, report: Report) -> dict[str, Any]:
    try:
        if key == "max_body_size":
            return {key: parse_size(value)}
        if key in ("body_timeout", "request_timeout", "queue_timeout"):
            return {key: parse_duration(value)}
        if key in ("max_concurrent", "queue"):
            return {key: convert(value, int, "")}
    except ValueError as exc:
        report(f"limits.{key}", str(exc))
        return {}
    if key in SERVER_ONLY:
        report(f"limits.{key}", "applies to the whole server only: set it in [limits] (it is checked before routing)")
    else:
        known = ", ".join(ROUTE_LIMITS)
        report(f"limits.{key}", f"unknown key{did_you_mean(key, ROUTE_LIMITS)}; a route's limits: {known}")
    return {}


def _rate(value: Any, report: Report) -> RateOptions | None:
    if not isinstance(value, dict):
        report("rate", 'expected a table, as in rate = { requests = 100, per = "1m", burst = 20 }')
        return None
    for key in value:
        if key not in RATE_KEYS:
            report(f"rate.{key}", f"unknown key{did_you_mean(key, RATE_KEYS)}; rate takes {', '.join(RATE_KEYS)}")
    requests = value.get("requests")
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        report("rate.requests", f"expected a whole number ≥ 1 of requests, got {requests!r}")
        return None
    try:
        per = parse_duration(value.get("per", 1))
    except ValueError as exc:
        report("rate.per", str(exc))
        return None
    try:
        burst = convert(value.get("burst", 0), int, "")
    except ValueError as exc:
        report("rate.burst", str(exc))
        return None
    if per <= 0:
        report("rate.per", "must be more than 0 seconds")
        return None
    return RateOptions(requests, per, burst)


def wrap(options: LimitsOptions, app: ASGIApp) -> ASGIApp:
    return RouteLimits(options, app)


async def _refuse(send: Send, status: int, text: str, retry_after: int) -> None:
    await plain_response(send, status, text, [(b"retry-after", str(retry_after).encode())])


class RouteLimits:
    """The ASGI app in front of a route's handler."""

    def __init__(self, options: LimitsOptions, app: ASGIApp) -> None:
        self.options = options
        self.app = app
        self.running = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client → (tokens, last time)
        self.limited = options.max_concurrent > 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        options = self.options
        connection = scope.get(CONNECTION_KEY)  # http only: body limits are not a WebSocket's
        if connection is not None:
            refusal = connection.apply_limits(options.max_body_size, options.body_timeout, options.request_timeout)
            if refusal is not None:
                await send_too_large(send, refusal)
                return
        if options.rate is not None:
            wait = self.take_token(scope.get("client"), options.rate)
            if wait:
                await _refuse(send, 429, "429 Too Many Requests\nSlow down; try again later.\n", wait)
                return
        if not self.limited:
            await self.app(scope, receive, send)
            return
        if not await self.enter():
            await _refuse(send, 503, "503 Service Unavailable\nThis part of the site is busy; try again.\n", 1)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.leave()

    async def enter(self) -> bool:
        """A place among the running requests: at once, or after waiting in the bounded queue."""
        options = self.options
        if self.running < options.max_concurrent and not self.waiting:
            self.running += 1
            return True
        if len(self.waiting) >= options.queue:
            return False
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(turn)
        try:
            await asyncio.wait_for(asyncio.shield(turn), options.queue_timeout)
        except TimeoutError:
            return self.give_up(turn)
        except asyncio.CancelledError:
            if self.give_up(turn):
                self.leave()  # the place came as the client left: pass it on
            raise
        return True

    def give_up(self, turn: asyncio.Future[None]) -> bool:
        """Stop waiting; True when the place had come meanwhile (it is ours then)."""
        if turn.done():
            return True
        turn.cancel()
        self.waiting.remove(turn)
        return False

    def leave(self) -> None:
        """A running request ended: its place goes to the first waiter still waiting."""
        while self.waiting:
            turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(None)  # the place passes over without running ever dropping
                return
        self.running -= 1

    def take_token(self, client: tuple[str, int] | None, rate: RateOptions) -> int:
        """0 when the client may go on, else the whole seconds until it may."""
        key = client[0] if client else ""
        now = asyncio.get_running_loop().time()
        capacity = rate.requests + rate.burst
        refill = rate.requests / rate.per
        tokens, last = self.buckets.pop(key, (float(capacity), now))
        tokens = min(capacity, tokens + (now - last) * refill)
        if len(self.buckets) >= RATE_CLIENTS_MAX:
            self.buckets.popitem(last=False)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0
        self.buckets[key] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / refill))


async def send_too_large(send: Send, text: str) -> None:
    await plain_response(send, 413, f"413 Content Too Large\n{text}\n")


def widest_body(vhosts_stages: list[dict[str, Any]], server_max: int) -> int:
    """The largest max_body_size any vhost or route sets (the core must let that much through)."""
    widest = server_max
    for stages in vhosts_stages:
        table = stages.get("limits")
        if isinstance(table, dict) and "max_body_size" in table:
            with contextlib.suppress(ValueError):  # reported by parse()
                widest = max(widest, parse_size(table["max_body_size"]))
    return widest
