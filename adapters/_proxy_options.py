"""The proxy's options: the `proxy` handler's config keys, and what ProxyClient takes from code (the app pools).

Defaults follow nginx where nginx has one that suits a LAN upstream
(max_fails 1, fail_timeout 10s, read timeout 60s); connect_timeout is 5s
rather than nginx's 60s, and keepalive_timeout is 4s: below the 5s
keep-alive timeout of uvicorn and of the gateway itself, so an idle
connection is normally closed by us before the upstream closes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


def _doc(text: str, kind: str = "") -> dict[str, Any]:
    return {"doc": text, "kind": kind} if kind else {"doc": text}


@dataclass(frozen=True, slots=True)
class HealthOptions:
    """Active health checks: `health = { path = "/health", interval = "5s" }`; off while path is empty."""

    path: str = field(default="", metadata=_doc("the path each upstream is asked for; 2xx and 3xx are healthy"))
    interval: float = field(default=5.0, metadata=_doc("seconds between two checks of an upstream", "duration"))
    timeout: float = field(default=2.0, metadata=_doc("seconds a check may take before it fails", "duration"))


@dataclass(frozen=True, slots=True)
class ProxyOptions:
    upstreams: tuple[str, ...] = field(
        default=(), metadata=_doc('the servers requests go to: "http://127.0.0.1:9000", "unix:/run/app.sock"')
    )
    balance: Literal["round_robin", "least_connections"] = field(
        default="round_robin", metadata=_doc('"round_robin" or "least_connections" (fewest requests in flight)')
    )
    preserve_host: bool = field(
        default=False, metadata=_doc("send the client's Host header; else the upstream's own (host:port)")
    )
    strip_prefix: bool = field(
        default=False, metadata=_doc("remove the route's prefix from the path (/api/users → /users); else sent whole")
    )
    connect_timeout: float = field(
        default=5.0, metadata=_doc("seconds to open a connection; past it the next upstream, else a 504", "duration")
    )
    read_timeout: float = field(
        default=60.0,
        metadata=_doc(
            "seconds the upstream may stay silent (sending nothing, reading no body) before a 504", "duration"
        ),
    )
    keepalive: int = field(
        default=32, metadata=_doc("idle connections kept open per upstream for reuse; 0 closes each after its request")
    )
    keepalive_timeout: float = field(
        default=4.0,
        metadata=_doc("seconds an idle connection is kept; keep it below the upstream's own keep-alive", "duration"),
    )
    max_connections: int = field(
        default=0, metadata=_doc("requests in flight per upstream (more wait up to connect_timeout); 0 = no limit")
    )
    max_fails: int = field(
        default=1, metadata=_doc("failures in a row (connect, timeout, broken response) that take an upstream out")
    )
    fail_timeout: float = field(
        default=10.0, metadata=_doc("seconds a failed upstream is skipped before it is tried again", "duration")
    )
    health: HealthOptions = field(
        default_factory=HealthOptions,
        metadata=_doc('active checks, as { path = "/health", interval = "5s", timeout = "2s" }; off without path'),
    )
