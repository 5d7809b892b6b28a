"""Request counts and durations per vhost, kept as plain numbers on the hot path.

Every request passes the access log once, with its Host, status and duration
known, so that is where it is counted: instrument() wraps the server's access
log in RecordingAccessLog when a route mounts the `metrics` handler. That is
decided once, at load; without such a route nothing here runs and the core
is exactly as it was.

Per request the cost is one dict lookup on the raw Host bytes (the vhost's
Series, learned from the router once per distinct Host), three additions and
a bisect. prometheus-client's objects (each inc() a lock, and with several
workers an mmap write) are touched only by exposition.py's flush(): once a
second and right before a scrape.
"""

from __future__ import annotations

from bisect import bisect_left
from math import inf
from time import perf_counter
from typing import TYPE_CHECKING

from gateway.metrics import HANDLER_NAME
from gateway.routing.router import Router
from gateway.types import ASGIApp

if TYPE_CHECKING:
    from gateway.http.cycle import RequestCycle
    from gateway.http.protocol import HttpProtocol
    from gateway.http.state import ServerState
    from gateway.http.websocket import WebSocketConnection
    from gateway.logs import RequestLog

# Seconds. A hello world takes well under a millisecond here, a PHP page tens of ms, a slow app seconds.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, inf)
STATUS_SLOTS = 10  # status // 100 for the codes 0-999
NO_VHOST = "-"  # the vhost label of requests the core refused before their head was complete
HOST_CACHE_SIZE = 4096  # distinct Host values remembered (beyond, the router is asked each time)

_recorder: RequestRecorder | None = None


class Series:
    """One vhost's requests since the last flush: counts by status class, duration buckets and sum."""

    __slots__ = ("buckets", "seconds", "statuses", "vhost")

    def __init__(self, vhost: str) -> None:
        self.vhost = vhost
        self.statuses = [0] * STATUS_SLOTS
        self.buckets = [0] * len(BUCKETS)
        self.seconds = 0.0

    def take(self) -> tuple[list[int], list[int], float]:
        """What was counted since the last take, leaving zeros (single-threaded: nothing runs in between)."""
        taken = self.statuses, self.buckets, self.seconds
        self.statuses = [0] * STATUS_SLOTS
        self.buckets = [0] * len(BUCKETS)
        self.seconds = 0.0
        return taken


class RequestRecorder:
    """This process's request series, one per vhost, and the connection counts of its server."""

    def __init__(self, state: ServerState, router: Router) -> None:
        self.state = state
        self.router = router
        self.by_vhost = {id(vhost): Series(vhost_label(vhost.names, vhost.where)) for vhost in router.vhosts}
        self.refused = Series(NO_VHOST)
        self.by_host: dict[bytes, Series] = {}

    def series(self) -> list[Series]:
        return [*self.by_vhost.values(), self.refused]

    def series_for_host(self, raw: bytes) -> Series:
        """The series of the vhost the router picks for this Host (remembered for the next request)."""
        found = self.by_vhost[id(self.router.vhost_for([(b"host", raw)]))]
        if len(self.by_host) < HOST_CACHE_SIZE:
            self.by_host[raw] = found
        return found

    def connections(self) -> int:
        return len(self.state.connections)

    def in_flight(self) -> int:
        return sum(1 for protocol in self.state.connections if protocol.cycle is not None)


class RecordingAccessLog:
    """The server's access log, counting each request for the metrics as its line is written."""

    def __init__(self, inner: RequestLog, recorder: RequestRecorder) -> None:
        self.inner = inner
        self.write_line = inner.log
        self.by_host = recorder.by_host
        self.series_for_host = recorder.series_for_host
        self.refused = recorder.refused

    def log(self, protocol: HttpProtocol, cycle: RequestCycle | WebSocketConnection) -> None:
        self.write_line(protocol, cycle)
        raw = b""
        for name, value in cycle.scope["headers"]:
            if name == b"host":
                raw = value
                break
        series = self.by_host.get(raw) or self.series_for_host(raw)
        status = cycle.status
        if status >= 200:
            duration = perf_counter() - cycle.started
            try:
                series.statuses[status // 100] += 1
            except IndexError:  # an app's status beyond 999
                return
            series.buckets[bisect_left(BUCKETS, duration)] += 1
            series.seconds += duration
        elif status >= 100:  # a WebSocket session (101), logged as it ends: its length is no request's duration
            series.statuses[1] += 1

    def log_refused(self, protocol: HttpProtocol, status: int, size: int = 0) -> None:
        """A request the core answered itself before its head was complete: no vhost, no duration."""
        self.inner.log_refused(protocol, status, size)
        self.refused.statuses[status // 100] += 1

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()


def mounted(app: ASGIApp) -> bool:
    """Whether a route of this app (a router) mounts the metrics handler."""
    if not isinstance(app, Router):
        return False
    return any(route.handler_name == HANDLER_NAME for vhost in app.vhosts for route in vhost.routes)


def instrument(state: ServerState, app: ASGIApp) -> None:
    """Count this server's requests for the metrics handler, if a route mounts it (else do nothing)."""
    global _recorder
    if not mounted(app):
        return
    assert isinstance(app, Router)
    _recorder = RequestRecorder(state, app)
    state.access_log = RecordingAccessLog(state.access_log, _recorder)


def current() -> RequestRecorder | None:
    """The recorder of this process's server, once instrument() made one."""
    return _recorder


def vhost_label(names: tuple[str, ...], where: str) -> str:
    """A vhost's `vhost` label: its first name, or where it is in the config when it has none."""
    return names[0] if names else where
