"""prometheus-client's side: the gateway's metrics as its objects, filled by flush(), rendered per scrape.

One Exporter per process (exporter()), made by the first `metrics` route's
startup or by the pool host's first publish_pools().

- One process (`workers = 1`): the metrics live in a CollectorRegistry of our
  own, not prometheus-client's global REGISTRY, so an app in the same process
  keeps its own /metrics output to itself. A scrape flushes, then renders:
  the numbers are exact.
- Several workers: the supervisor sets PROMETHEUS_MULTIPROC_DIR for them and
  the pool host (multiprocess.py) before prometheus-client is imported, so each process's
  values go to mmap files there, and a scrape merges every process's files
  (MultiProcessCollector): whichever worker answers, the counts are those of
  all workers, including workers that have since exited (counters and
  histograms stay in the folder). Gauges are "livesum": the sum over the
  processes alive now. Other workers flush once a second, so their part may
  lag the scrape by that much.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

from gateway.metrics import MULTIPROC_ENV, pool_readings
from gateway.metrics.requests import BUCKETS, RequestRecorder, current

PRESET_CLASSES = (1, 2, 3, 4, 5)  # status classes every vhost shows from the start, at 0
FLUSH_INTERVAL = 1.0  # seconds between a worker's flushes when several workers share the numbers

_exporter: Exporter | None = None


class Exporter:
    """The gateway's metric families and each vhost's pre-bound label children."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        registry = None if self.multiprocess else CollectorRegistry()  # multiprocess: the files are the registry
        self.registry = registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by vhost and status class (1xx-5xx)",
            ["vhost", "status_class"],
            registry=registry,
        )
        self.duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from a request's head to the end of its response, by vhost",
            ["vhost"],
            buckets=BUCKETS,
            registry=registry,
        )
        self.in_flight = _gauge("gateway_requests_in_flight", "Requests being answered now", (), registry)
        self.connections = _gauge("gateway_connections", "Client connections open now", (), registry)
        pool = ("pool", "kind")
        self.pool_processes = _gauge("gateway_pool_processes", "Processes a pool runs now", pool, registry)
        self.pool_busy = _gauge("gateway_pool_busy", "Requests a pool's processes are serving now", pool, registry)
        self.pool_queued = _gauge("gateway_pool_queued", "Requests waiting for a pool's process", pool, registry)
        self.bound: dict[str, tuple[list[Counter | None], Histogram]] = {}
        self.published_pools: set[tuple[str, str]] = set()
        self.ticker: asyncio.Task[None] | None = None
        self.users = 0

    # Filling ---------------------------------------------------------------

    def prebind(self, recorder: RequestRecorder) -> None:
        """Label children for every vhost now, so each shows at 0 from the first scrape on."""
        for series in recorder.by_vhost.values():  # not refused requests' "-": it appears with the first
            self.children(series.vhost)

    def children(self, vhost: str) -> tuple[list[Counter | None], Histogram]:
        """A vhost's counter per status class (made when first needed beyond 1xx-5xx) and its histogram."""
        found = self.bound.get(vhost)
        if found is None:
            counters: list[Counter | None] = [None] * 10
            for slot in PRESET_CLASSES:
                counters[slot] = self.requests.labels(vhost, f"{slot}xx")
            found = self.bound[vhost] = (counters, self.duration.labels(vhost))
        return found

    def flush(self, recorder: RequestRecorder | None) -> None:
        """Add what the recorder counted since the last flush; set the gauges to their values now."""
        if recorder is not None:
            for series in recorder.series():
                statuses, buckets, seconds = series.take()
                if any(statuses):
                    self.add(series.vhost, statuses, buckets, seconds)
            self.in_flight.set(recorder.in_flight())
            self.connections.set(recorder.connections())
        self.publish_pools()

    def add(self, vhost: str, statuses: list[int], buckets: list[int], seconds: float) -> None:
        counters, histogram = self.children(vhost)
        for slot, count in enumerate(statuses):
            if count:
                counter = counters[slot]
                if counter is None:
                    counter = counters[slot] = self.requests.labels(vhost, f"{slot}xx")
                counter.inc(count)
        if any(buckets):
            _add_observations(histogram, buckets, seconds)

    def publish_pools(self) -> None:
        """Every registered pool's gauges as read now; a pool that unregistered goes to 0 and leaves."""
        seen = set()
        for name, kind, (processes, busy, queued) in pool_readings():
            self.pool_processes.labels(name, kind).set(processes)
            self.pool_busy.labels(name, kind).set(busy)
            self.pool_queued.labels(name, kind).set(queued)
            seen.add((name, kind))
        for gone in self.published_pools - seen:
            for gauge in (self.pool_processes, self.pool_busy, self.pool_queued):
                gauge.labels(*gone).set(0)  # with several workers the value stays in this process's file
                gauge.remove(*gone)
        self.published_pools = seen

    # Serving ---------------------------------------------------------------

    def render(self) -> bytes:
        """The text format of every metric: this process's alone, or every process's when several share them."""
        if self.registry is not None:
            return generate_latest(_WithoutCreated(self.registry))
        merged = CollectorRegistry()
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)

    def attach(self) -> None:
        """A metrics route starts: with several workers, flush once a second so the others see our counts."""
        self.users += 1
        if self.multiprocess and self.ticker is None:
            self.ticker = asyncio.get_running_loop().create_task(self._tick())

    async def detach(self) -> None:
        """A metrics route stops; the last one stops the ticks and flushes what is left (the worker exits)."""
        self.users -= 1
        if self.users > 0:
            return
        ticker, self.ticker = self.ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        self.flush(current())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.flush(current())


class _WithoutCreated:
    """A registry's metrics less the `_created` samples one process adds (workers' merged files have none).

    They would double the output with a timestamp per label set that says
    nothing here: a counter's start is the gateway's start.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        for metric in self.registry.collect():
            metric.samples = [sample for sample in metric.samples if not sample.name.endswith("_created")]
            yield metric


def exporter() -> Exporter:
    """This process's Exporter (made on first use: its metrics can only be made once)."""
    global _exporter
    if _exporter is None:
        _exporter = Exporter()
    return _exporter


def _gauge(name: str, documentation: str, labels: tuple[str, ...], registry: CollectorRegistry | None) -> Gauge:
    """A gauge whose value, with several processes, is the sum over the live ones."""
    return Gauge(name, documentation, labels, registry=registry, multiprocess_mode="livesum")


def _add_observations(histogram: Histogram, buckets: list[int], seconds: float) -> None:
    """Add observations counted per bucket (and their sum) to a histogram child in one go.

    prometheus-client observes one value at a time, with a lock (and an mmap
    write with several workers) per call; the recorder counted them without
    it. The child keeps what observe() increments: a non-cumulative counter
    per upper bound (_buckets, in BUCKETS order) and the sum (_sum).
    tests/e2e/test_metrics.py checks the rendered buckets against requests.
    """
    histogram._sum.inc(seconds)
    for value, count in zip(histogram._buckets, buckets, strict=True):
        if count:
            value.inc(count)
