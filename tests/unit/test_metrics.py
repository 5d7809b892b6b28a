"""Metrics without sockets: counting is on only with a metrics route, pool probes, batched histogram adds."""

from __future__ import annotations

import asyncio
import logging
import time
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from gateway.config.loader import load
from gateway.config.schema import Limits
from gateway.http.state import ServerState
from gateway.logs import NullAccessLog
from gateway.metrics import pool_readings, register_pool
from gateway.metrics.exposition import Exporter
from gateway.metrics.requests import BUCKETS, RecordingAccessLog, current, instrument
from gateway.routing.router import build_router

SITE = """
[[vhost]]
names = ["a.test"]
  [[vhost.route]]
  path = "/"
  handler = "redirect"
  to = "https://example.com/"
"""
METRICS_ROUTE = """
  [[vhost.route]]
  path = "=/metrics"
  handler = "metrics"
"""


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def state_for(tmp_path: Path, text: str, loop: asyncio.AbstractEventLoop) -> ServerState:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    router, problems = build_router(load(str(path)))
    assert problems == []
    state = ServerState(router, Limits(), loop, NullAccessLog())
    instrument(state, router)
    return state


def test_without_a_metrics_route_the_access_log_is_left_as_it_was(
    tmp_path: Path, loop: asyncio.AbstractEventLoop
) -> None:
    assert isinstance(state_for(tmp_path, SITE, loop).access_log, NullAccessLog)


def test_a_metrics_route_wraps_the_access_log(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    text = SITE.replace('names = ["a.test"]', 'names = ["a.test"]' + METRICS_ROUTE.replace("=/metrics", "=/m"), 1)
    assert isinstance(state_for(tmp_path, text, loop).access_log, RecordingAccessLog)


def test_pool_readings_fill_in_missing_fields_and_stop_when_unregistered() -> None:
    unregister = register_pool("site", "test-kind", lambda: {"processes": 3, "busy": 1})
    try:
        assert ("site", "test-kind", (3.0, 1.0, 0.0)) in pool_readings()
        register_pool("site", "test-kind", lambda: {"queued": 7})  # the same pool again replaces the probe
        assert ("site", "test-kind", (0.0, 0.0, 7.0)) in pool_readings()
        unregister()  # the replaced registration's unregister leaves the new probe alone
        assert ("site", "test-kind", (0.0, 0.0, 7.0)) in pool_readings()
    finally:
        register_pool("site", "test-kind", dict)()
    assert not [reading for reading in pool_readings() if reading[1] == "test-kind"]


def test_a_failing_probe_is_left_out_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> dict[str, int]:
        raise RuntimeError("no such pool")

    unregister = register_pool("broken", "test-kind", broken)
    logger = logging.getLogger("gateway.metrics")
    logger.propagate, before = True, logger.propagate
    try:
        with caplog.at_level(logging.ERROR, logger="gateway.metrics"):
            assert not [reading for reading in pool_readings() if reading[0] == "broken"]
            pool_readings()
        assert [record.getMessage() for record in caplog.records].count(
            "metrics: the probe of pool 'broken' (test-kind) failed; it is left out"
        ) == 1
    finally:
        logger.propagate = before
        unregister()


def test_counts_added_per_bucket_render_as_the_same_observations_one_by_one() -> None:
    durations = [0.0001, 0.0004, 0.003, 0.003, 0.2, 7.0, 45.0, 100.0]
    exporter = Exporter()
    statuses = [0] * 10
    statuses[2] = len(durations)
    counted = [0] * len(BUCKETS)
    for duration in durations:
        counted[bisect_left(BUCKETS, duration)] += 1
    exporter.add("a.test", statuses, counted, sum(durations))

    reference = CollectorRegistry()
    histogram = Histogram("gateway_request_duration_seconds", "x", ["vhost"], buckets=BUCKETS, registry=reference)
    for duration in durations:
        histogram.labels("a.test").observe(duration)

    def bucket_lines(text: bytes) -> list[bytes]:
        return [line for line in text.splitlines() if line.startswith(b"gateway_request_duration_seconds_")]

    ours = bucket_lines(exporter.render())
    assert [line for line in ours if b"_created" not in line] == [
        line for line in bucket_lines(generate_latest(reference)) if b"_created" not in line
    ]
    assert b'gateway_requests_total{status_class="2xx",vhost="a.test"} 8.0' in exporter.render()


def test_a_websocket_session_counts_as_1xx_without_a_duration(tmp_path: Path, loop: asyncio.AbstractEventLoop) -> None:
    text = SITE.replace('names = ["a.test"]', 'names = ["a.test"]' + METRICS_ROUTE, 1)
    state = state_for(tmp_path, text, loop)
    headers = [(b"host", b"a.test")]
    session: Any = SimpleNamespace(scope={"headers": headers}, status=101, started=time.perf_counter() - 600, sent=0)
    request: Any = SimpleNamespace(scope={"headers": headers}, status=200, started=time.perf_counter(), sent=0)
    for cycle in (session, request):
        state.access_log.log(None, cycle)  # type: ignore[arg-type]
    recorder = current()
    assert recorder is not None
    statuses, buckets, seconds = recorder.series()[0].take()
    assert (statuses[1], statuses[2]) == (1, 1)
    assert sum(buckets) == 1 and seconds < 60  # the request's duration only, not the ten-minute session's
