"""Gateway metrics: what the `metrics` handler exports, and how a pool reports its size.

A process pool of any kind (php-cgi, app processes of `isolation = "process"`,
...) tells the metrics how big and how busy it is through one call, made where
the pool starts; nothing else is needed, and it costs nothing until a
`metrics` route is scraped::

    from gateway.metrics import register_pool

    class AppPool:
        async def start(self) -> None:
            ...
            self.unregister_metrics = register_pool(self.name, "app", self.metrics)

        def metrics(self) -> dict[str, int]:
            # called on the event loop about once a second
            # and at each scrape: keep it a few attribute reads, no I/O, no await
            return {"processes": len(self.processes), "busy": self.busy, "queued": len(self.queue)}

        async def stop(self) -> None:
            self.unregister_metrics()  # its gauges go to 0 and leave the output
            ...

- `name` says which pool (the route's label, an app's name); `kind` says what
  runs in it ("php-cgi", "app", ...). Together they are the `pool` and `kind`
  labels of `gateway_pool_processes`, `gateway_pool_busy` and
  `gateway_pool_queued`. Registering the same (name, kind) again replaces the
  earlier probe.
- The probe returns a mapping with any of "processes" (processes the pool
  runs now), "busy" (requests they serve now) and "queued" (requests waiting
  for a process); a key left out counts as 0. A probe that raises is logged
  once and skipped.
- Each process publishes the pools it registered itself: one serving a
  metrics route as it flushes its counts (once a second, and per scrape);
  the pool host of several workers, which serves none, through
  start_publishing(). With several workers the values of all processes are
  added up per (pool, kind), as prometheus-client's multiprocess mode does
  for "livesum" gauges: a php-cgi's children as the pool host reports them
  plus the requests each worker has on it.

This module imports nothing heavy: prometheus-client is imported only by a
process that serves or publishes metrics (exposition.py).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping

logger = logging.getLogger("gateway.metrics")

HANDLER_NAME = "metrics"  # the handler whose routes turn metrics on (adapters/metrics.py)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # set by the supervisor for its children (multiprocess.py)
PUBLISH_INTERVAL = 1.0  # seconds
PoolProbe = Callable[[], Mapping[str, float]]
POOL_FIELDS = ("processes", "busy", "queued")

_pools: dict[tuple[str, str], PoolProbe] = {}
_failed: set[tuple[str, str]] = set()  # probes that raised, logged once each


def register_pool(name: str, kind: str, probe: PoolProbe) -> Callable[[], None]:
    """Report the pool (name, kind) through probe from now on; returns the call that stops it."""
    key = (name, kind)
    _pools[key] = probe
    _failed.discard(key)

    def unregister() -> None:
        if _pools.get(key) is probe:
            del _pools[key]

    return unregister


def pool_readings() -> list[tuple[str, str, tuple[float, float, float]]]:
    """(name, kind, (processes, busy, queued)) of every registered pool, read now."""
    readings: list[tuple[str, str, tuple[float, float, float]]] = []
    for key, probe in list(_pools.items()):
        try:
            values = probe()
            processes, busy, queued = (float(values.get(field, 0)) for field in POOL_FIELDS)
            readings.append((key[0], key[1], (processes, busy, queued)))
        except Exception:
            if key not in _failed:
                _failed.add(key)
                logger.exception("metrics: the probe of pool %r (%s) failed; it is left out", key[0], key[1])
    return readings


def publish_pools() -> None:
    """Write this process's pool gauges where the other processes' scrapes read them."""
    if not _pools:
        return
    from gateway.metrics.exposition import exporter

    exporter().publish_pools()


def start_publishing() -> asyncio.Task[None] | None:
    """In a process that runs pools but serves no metrics route (the pool host): publish once a second.

    None unless the supervisor shares metrics between its processes (a
    metrics route in the config, several workers). Cancel the task at shutdown.
    """
    if not os.environ.get(MULTIPROC_ENV):
        return None
    return asyncio.get_running_loop().create_task(_publish_forever())


async def _publish_forever() -> None:
    while True:
        publish_pools()
        await asyncio.sleep(PUBLISH_INTERVAL)
