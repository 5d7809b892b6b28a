"""The `proxy` handler: the route's requests forwarded to HTTP/1.1 upstreams (a reverse proxy, as nginx's proxy_pass).

The work is ProxyClient's (_proxy_client.py), which the app pools reuse:
upstreams balanced round-robin or by fewest requests in flight, kept-alive
connection pools, streaming both ways with backpressure, hop-by-hop fields
removed and forwarding fields set (_proxy_headers.py), timeouts as 502/504,
passive and active health. This module holds the config keys
(_proxy_options.py), checks them, and runs the client's lifecycle.
"""

from __future__ import annotations

from typing import Any

from adapters._proxy_client import ProxyClient
from adapters._proxy_options import HealthOptions, ProxyOptions
from adapters._proxy_upstreams import parse_address
from gateway.types import ASGIApp, HandlerContext

__all__ = ["HealthOptions", "ProxyClient", "ProxyHandler", "ProxyOptions"]


class ProxyHandler:
    """A reverse proxy route."""

    Options: Any = ProxyOptions
    websocket = True  # its app takes websocket scopes (the router refuses handshakes elsewhere)

    def __init__(self, options: ProxyOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context
        self.client: ProxyClient | None = None

    def problems(self) -> list[tuple[str, str]]:
        options = self.options
        found: list[tuple[str, str]] = []
        if not options.upstreams:
            found.append(("upstreams", 'missing; where to send requests, as in upstreams = ["http://127.0.0.1:9000"]'))
        for index, address in enumerate(options.upstreams):
            try:
                parse_address(address)
            except ValueError as exc:
                found.append((f"upstreams[{index}]", str(exc)))
        for key in ("connect_timeout", "read_timeout", "keepalive_timeout"):
            if not getattr(options, key):
                found.append((key, "must be more than 0"))
        return found + _health_problems(options.health)

    def addresses(self) -> list[str]:
        """The upstreams, with a relative Unix socket path resolved against the config's folder."""
        return [
            f"unix:{self.context.resolve(address[5:])}" if address.startswith("unix:") else address
            for address in self.options.upstreams
        ]

    def app(self) -> ASGIApp:
        self.client = ProxyClient(self.addresses(), self.options, self.context.mount)
        return self.client.forward

    async def startup(self) -> None:
        if self.client is not None:
            await self.client.start()

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()


def _health_problems(health: HealthOptions) -> list[tuple[str, str]]:
    if not health.path:
        return []
    found = []
    if not health.path.startswith("/") or not health.path.isascii() or not health.path.isprintable():
        found.append(("health.path", f'{health.path!r}: expected a path such as "/health"'))
    elif " " in health.path:
        found.append(("health.path", f"{health.path!r}: write a space as %20"))
    for key in ("interval", "timeout"):
        if not getattr(health, key):
            found.append((f"health.{key}", "must be more than 0"))
    return found
