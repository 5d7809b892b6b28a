"""Upstream addresses, each upstream's health, and the balancer that picks one per attempt.

Rules:
- An upstream is available unless its active health check failed (it stays
  out until a check passes) or it failed `max_fails` times in a row (passive
  health: it is skipped for `fail_timeout` seconds, then tried again). The
  two are kept apart: a passing check does not excuse failing requests.
- When every upstream not yet tried is out passively, the one due back
  first is tried anyway (nginx does the same): a failure may have been
  brief, and a guess beats a certain 502. Upstreams out by health check are
  never tried.
- round_robin takes the next available upstream in turn; least_connections
  the one with the fewest requests in flight, ties taken in turn.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from time import monotonic
from urllib.parse import urlsplit

from adapters._proxy_pool import ConnectionPool

logger = logging.getLogger("gateway.adapters.proxy")


@dataclass(frozen=True, slots=True)
class UpstreamAddress:
    """Where an upstream listens: a TCP host and port, or a Unix socket path."""

    label: str  # as written in the config: for logs
    host: str = ""
    port: int = 0
    path: str = ""  # a Unix socket
    host_header: bytes = b"localhost"  # the Host an upstream is sent when preserve_host is off


def parse_address(text: str) -> UpstreamAddress:
    """An address from "http://host[:port]" or "unix:/path"; ValueError says what was expected."""
    if text.startswith("unix:"):
        if not text[5:]:
            raise ValueError(f"{text!r}: a Unix socket needs a path, as in unix:/run/app.sock")
        return UpstreamAddress(text, path=text[5:])
    if text.startswith("https://"):
        raise ValueError(f"{text!r}: https upstreams are not supported; use http:// or a Unix socket")
    if not text.startswith("http://"):
        raise ValueError(f'{text!r}: expected "http://host:port" or "unix:/path/to.sock"')
    parts = urlsplit(text)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"{text!r}: only scheme, host and port; to drop the route's prefix use strip_prefix = true")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{text!r}: the host is missing")
    if not host.isascii():
        raise ValueError(f"{text!r}: write a non-ASCII host name in its xn-- (punycode) form")
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port == 80 else f"{shown}:{port}"
    return UpstreamAddress(text, host=host, port=port, host_header=host_header.encode("ascii"))


class Upstream:
    """One upstream: its address, its connection pool, requests in flight and health."""

    __slots__ = ("active", "address", "checked_down", "down_until", "fails", "label", "pool")

    def __init__(self, address: UpstreamAddress, pool: ConnectionPool) -> None:
        self.address = address
        self.label = address.label
        self.pool = pool
        self.active = 0  # requests in flight
        self.fails = 0  # failures in a row
        self.down_until = 0.0  # skipped until then (passive health)
        self.checked_down = False  # its last health check failed

    def available(self, now: float) -> bool:
        return not self.checked_down and now >= self.down_until

    def succeeded(self) -> None:
        self.fails = 0

    def failed(self, reason: str, max_fails: int, fail_timeout: float) -> None:
        """Count a failure; at max_fails in a row the upstream is skipped for fail_timeout seconds."""
        self.fails += 1
        if max_fails and self.fails >= max_fails and fail_timeout:
            self.fails = 0
            self.down_until = monotonic() + fail_timeout
            logger.warning(
                "proxy upstream %s is skipped for %gs after %d failure(s) in a row (last: %s)",
                self.label,
                fail_timeout,
                max_fails,
                reason,
            )

    def checked(self, healthy: bool, reason: str) -> None:
        """The result of an active health check; a change is logged. Passive health keeps its own count."""
        if healthy:
            if self.checked_down:
                logger.warning("proxy upstream %s passed its health check: back in rotation", self.label)
            self.checked_down = False
        elif not self.checked_down:
            self.checked_down = True
            logger.warning("proxy upstream %s failed its health check (%s): out of rotation", self.label, reason)


class Balancer:
    """Picks the upstream for each attempt of a request."""

    def __init__(self, upstreams: list[Upstream], least_connections: bool) -> None:
        self.upstreams = upstreams
        self.least_connections = least_connections
        self.cursor = 0

    def choose(self, tried: Collection[Upstream] = ()) -> Upstream | None:
        """The upstream for the next attempt, not one already tried; None when none is left."""
        upstreams = self.upstreams
        count = len(upstreams)
        now = monotonic()
        best: Upstream | None = None
        best_index = 0
        for step in range(count):
            index = (self.cursor + step) % count
            upstream = upstreams[index]
            if not upstream.available(now) or upstream in tried:
                continue
            if not self.least_connections:
                best, best_index = upstream, index
                break
            if best is None or upstream.active < best.active:
                best, best_index = upstream, index
        if best is None:
            return self._due_first(tried)
        self.cursor = best_index + 1
        return best

    def _due_first(self, tried: Collection[Upstream]) -> Upstream | None:
        """Every untried upstream is out: the passively failed one due back first, if any."""
        left = [u for u in self.upstreams if not u.checked_down and u not in tried]
        return min(left, key=lambda u: u.down_until) if left else None
