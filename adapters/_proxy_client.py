"""ProxyClient: requests forwarded to a set of HTTP/1.1 upstreams. The proxy handler's engine, and the app pools'.

    client = ProxyClient(["http://127.0.0.1:9000", "unix:/run/app.sock"], ProxyOptions(), mount="/api")
    await client.start()                        # active health checks, when options.health.path is set
    await client.forward(scope, receive, send)  # answers the request completely, as an ASGI app does
    await client.aclose()

add_upstream() and remove_upstream() change the set while requests run
(a pool growing or recycling processes); `upstreams` shows each one's
requests in flight and health.

A request's attempts:
- the balancer picks an upstream not tried yet; a connection comes from
  its pool (a kept one when there is one);
- a kept connection found closed by the upstream before it answered
  (stale) is retried at once on a new connection to the same upstream and
  does not count against its health;
- a failure that is retryable (nothing came back; nothing was sent, or the
  method is idempotent and its body was kept: _proxy_exchange.py) moves on
  to the next upstream, counting against this one's health; so does a
  refused or timed-out connect (unless `others` is off: an app pool's);
- when no upstream is left, the last failure answers: 502, 504 for a
  timeout, 503 when every upstream was at max_connections.
A websocket scope is relayed message by message (_proxy_websocket.py), with
the same choice of upstreams; other upgrades are refused with 501.
Failures are logged with the upstream named; a client that leaves ends the
request quietly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from adapters._proxy_connection import UpstreamError
from adapters._proxy_exchange import Exchange, RequestBody
from adapters._proxy_headers import IDEMPOTENT, RequestHeads, relocator, upgrade_requested
from adapters._proxy_health import HealthChecker
from adapters._proxy_options import ProxyOptions
from adapters._proxy_pool import ConnectionPool
from adapters._proxy_upstreams import Balancer, Upstream, parse_address
from adapters._proxy_websocket import relay_websocket
from adapters._request_body import ClientGone
from adapters._static_files import Reply
from gateway.errors import ResponseAborted
from gateway.types import Receive, Scope, Send

logger = logging.getLogger("gateway.adapters.proxy")
REPLIES = {
    502: Reply(502, "Bad Gateway: the upstream server failed; the reason is in the gateway's error log."),
    503: Reply(503, "Service Unavailable: the upstream servers are busy; try again.", ((b"retry-after", b"1"),)),
    504: Reply(504, "Gateway Timeout: the upstream server did not answer in time."),
}
UPGRADE_REFUSED = Reply(501, "Not Implemented: only WebSocket upgrades are passed to upstreams.")


class ProxyClient:
    """Forwards requests to upstreams, balanced, over kept-alive connections."""

    def __init__(self, upstreams: Sequence[str], options: ProxyOptions, mount: str = "") -> None:
        self.options = options
        self.heads = RequestHeads(options.preserve_host, mount if options.strip_prefix else "")
        self.balancer = Balancer([], options.balance == "least_connections")
        self.keep_alive = options.keepalive > 0
        # A retryable failure moves on to another upstream; an app pool turns it off: the request
        # may be what killed its process, and its processes are taken through the pool's checkout.
        self.others = True
        self.health: HealthChecker | None = None
        for address in upstreams:
            self.add_upstream(address)

    @property
    def upstreams(self) -> list[Upstream]:
        return self.balancer.upstreams

    def add_upstream(self, address: str) -> Upstream:
        """Start sending requests to another upstream; ValueError for an address parse_address refuses."""
        parsed = parse_address(address)
        options = self.options
        pool = ConnectionPool(
            parsed.label,
            parsed.host,
            parsed.port,
            parsed.path,
            options.keepalive,
            options.keepalive_timeout,
            options.connect_timeout,
            options.max_connections,
        )
        upstream = Upstream(parsed, pool)
        self.balancer.upstreams.append(upstream)
        return upstream

    def remove_upstream(self, address: str) -> None:
        """Stop sending new requests to an upstream; those in flight finish, its idle connections close."""
        for upstream in list(self.balancer.upstreams):
            if upstream.label == address:
                self.balancer.upstreams.remove(upstream)
                upstream.pool.close()

    async def start(self) -> None:
        if self.options.health.path:
            self.health = HealthChecker(self.balancer.upstreams, self.options.health)
            self.health.start()

    async def aclose(self) -> None:
        if self.health is not None:
            await self.health.aclose()
        for upstream in self.balancer.upstreams:
            upstream.pool.close()

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request, or relay one WebSocket, from an upstream (an ASGI app's signature)."""
        if scope["type"] == "http" and upgrade_requested(scope["headers"]):
            await self.upgrade(scope, receive, send)
            return
        await self.forward_to(None, scope, receive, send)

    async def forward_to(
        self, first: Upstream | None, scope: Scope, receive: Receive, send: Send, unsent_back: bool = False
    ) -> UpstreamError | None:
        """forward() with the first attempt on a chosen upstream (an app pool picks its process itself).

        Returns the failure the client was answered with (502, 503, 504), if any;
        with unsent_back, a failure before any of the request was sent (its
        `unsent`) is returned unanswered, for the caller to send elsewhere.
        """
        if scope["type"] == "websocket":
            await relay_websocket(self, scope, receive, send, first)
            return None
        try:
            await self._forward(scope, receive, send, first)
        except ClientGone:
            return None
        except UpstreamError as exc:
            if unsent_back and exc.unsent:
                return exc
            logger.error("proxy %s %s: upstream %s: %s", scope["method"], scope["path"], exc.upstream, exc)
            await REPLIES.get(exc.status, REPLIES[502]).send(send)
            return exc
        return None

    async def upgrade(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A request to switch to a protocol other than WebSocket (which the core turns into a websocket scope)."""
        await UPGRADE_REFUSED.send(send)

    async def _forward(self, scope: Scope, receive: Receive, send: Send, first: Upstream | None = None) -> None:
        method = scope["method"]
        idempotent = method in IDEMPOTENT
        tried: list[Upstream] = []
        body: RequestBody | None = None
        last: UpstreamError | None = None
        while True:
            upstream = first if first is not None and not tried else self.balancer.choose(tried)
            if upstream is None:
                raise last or UpstreamError("none is available (each is out by its health check, or none is set)")
            tried.append(upstream)
            head, framing = self.heads.build(scope, upstream.address.host_header, self.keep_alive)
            if body is None:
                body = RequestBody(receive, framing)
            try:
                await self._attempt(upstream, head, body, scope, send, idempotent)
                return
            except UpstreamError as exc:
                exc.unsent = exc.unsent and len(tried) == 1  # an earlier upstream may have read the body
                if not exc.retryable or not self.others:
                    raise
                path = scope["path"]
                logger.warning("proxy %s %s: upstream %s: %s; trying another", method, path, upstream.label, exc)
                last = exc

    async def _attempt(
        self, upstream: Upstream, head: bytes, body: RequestBody, scope: Scope, send: Send, idempotent: bool
    ) -> None:
        """The request on one upstream: a stale kept connection is retried once on a new one."""
        fresh = False
        while True:
            try:
                connection = await upstream.pool.acquire(fresh)
            except UpstreamError as exc:
                exc.unsent = not fresh  # no earlier try on this upstream wrote any of the request
                raise self._failed(upstream, exc) from None
            upstream.active += 1
            relocate = None
            if not self.heads.preserve_host and upstream.address.host:
                relocate = relocator(upstream.address.host_header, scope, self.heads.strip)
            exchange = Exchange(connection, body, send, self.options.read_timeout, idempotent, relocate)
            try:
                await exchange.run(head, scope, upstream.label)
            except UpstreamError as exc:
                if exc.stale and not fresh:
                    fresh = True
                    continue
                raise self._failed(upstream, exc) from None
            except ResponseAborted:
                self._failed(upstream, UpstreamError("the response was cut short"))
                raise
            finally:
                upstream.active -= 1
                upstream.pool.release(connection, exchange.reusable)
            upstream.succeeded()
            return

    def _failed(self, upstream: Upstream, error: UpstreamError) -> UpstreamError:
        """Name the upstream in the error and count it against the upstream's health (busy is no failure)."""
        error.upstream = upstream.label
        if error.status != 503:
            upstream.failed(str(error), self.options.max_fails, self.options.fail_timeout)
        return error
