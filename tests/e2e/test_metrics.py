"""The `metrics` handler over real sockets: counts by vhost and status class, histograms, PHP pools, workers.

Scrapes are parsed with prometheus-client's own text parser, as a Prometheus
server would read them. The metrics route is on a vhost of its own
(ops.test), so scrapes do not count under the vhosts the tests load.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import require_program
from tests.support.processes import alive
from tests.support.server import Gateway, gateway_command, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
PHP_SITE = Path(__file__).parent / "php_site"
METRICS = "/_gateway/metrics"

CONFIG = """
[server]
runtime_dir = "{runtime}"
{server}

[[vhost]]
names = ["ops.test"]
  [[vhost.route]]
  path = "={metrics}"
  handler = "metrics"
  allow = ["127.0.0.1"]
  [[vhost.route]]
  path = "=/elsewhere/metrics"
  handler = "metrics"
  allow = ["192.0.2.1"]

[[vhost]]
names = ["a.test"]
  [[vhost.route]]
  path = "/moved"
  handler = "redirect"
  to = "/"
  [[vhost.route]]
  path = "/status"
  handler = "asgi"
  app = "tests.support.apps:status"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "tests.support.apps:echo"

[[vhost]]
names = ["b.test"]
  [[vhost.route]]
  path = "/"
  handler = "static"
  root = "{static}"
{more}
"""

PHP_ROUTE = """
[[vhost]]
names = ["php.test"]
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{php}"
  pool = {{ max = 2 }}
"""

ISOLATED_ROUTE = """
[[vhost]]
names = ["iso.test"]
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "tests.support.apps:slow"
  isolation = "process"
  pool = { min = 1, max = 1 }
"""

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def config(tmp_path: Path, server: str = "", more: str = "") -> str:
    static = tmp_path / "static"
    static.mkdir(exist_ok=True)
    (static / "index.html").write_text("hello")
    runtime = tmp_path / "run"
    return CONFIG.format(runtime=runtime, server=server, metrics=METRICS, static=static, more=more)


def scrape(gateway: Gateway) -> Samples:
    """Every sample of one scrape, by name and sorted labels."""
    response = httpx.get(gateway.url + METRICS, headers={"host": "ops.test"}, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def requests_total(samples: Samples, vhost: str, status_class: str) -> float:
    return samples.get(("gateway_requests_total", (("status_class", status_class), ("vhost", vhost))), 0.0)


def buckets(samples: Samples, vhost: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a vhost's duration histogram, in bound order."""
    found = [
        (float(dict(labels)["le"]), value)
        for (name, labels), value in samples.items()
        if name == "gateway_request_duration_seconds_bucket" and dict(labels)["vhost"] == vhost
    ]
    return sorted(found)


def fetch(gateway: Gateway, host: str, path: str) -> tuple[int, bytes]:
    """One request on a fresh connection (so, with workers, the kernel spreads them): status and body."""
    with socket.create_connection(gateway.address, timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        head, _, body = read_response(sock, timeout=10).partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def get(gateway: Gateway, host: str, path: str) -> int:
    return fetch(gateway, host, path)[0]


def pid_answering(gateway: Gateway) -> int:
    """Which worker answered a request to a.test (tests.support.apps:echo says)."""
    status, body = fetch(gateway, "a.test", "/")
    assert status == 200
    pid: int = json.loads(body)["pid"]
    return pid


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with run_gateway(config_text=config(tmp_path_factory.mktemp("metrics"))) as gateway:
        yield gateway


def test_counts_by_vhost_and_status_class(single: Gateway) -> None:
    statuses = [get(single, "a.test", "/") for _ in range(3)]
    statuses += [get(single, "a.test", "/moved"), get(single, "a.test", "/status?code=503")]
    statuses += [get(single, "b.test", "/"), get(single, "b.test", "/"), get(single, "b.test", "/missing")]
    assert statuses == [200, 200, 200, 302, 503, 200, 200, 404]
    with socket.create_connection(single.address, timeout=5) as sock:  # refused by the core: no Host known
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 400")

    samples = scrape(single)
    assert requests_total(samples, "a.test", "2xx") == 3
    assert requests_total(samples, "a.test", "3xx") == 1
    assert requests_total(samples, "a.test", "5xx") == 1
    assert requests_total(samples, "a.test", "4xx") == 0  # shown at 0 from the start
    assert requests_total(samples, "b.test", "2xx") == 2
    assert requests_total(samples, "b.test", "4xx") == 1
    assert requests_total(samples, "-", "4xx") == 1
    assert samples[("gateway_connections", ())] >= 1  # the scrape's own
    assert samples[("gateway_requests_in_flight", ())] == 1  # the scrape itself


def test_duration_histogram_has_every_bucket_per_vhost(single: Gateway) -> None:
    for _ in range(2):
        assert get(single, "b.test", "/") == 200
    samples = scrape(single)
    for vhost in ("a.test", "b.test"):
        found = buckets(samples, vhost)
        bounds = [bound for bound, _ in found]
        assert bounds[0] == 0.0005 and bounds[-1] == float("inf") and len(bounds) == 17
        counts = [count for _, count in found]
        assert counts == sorted(counts), "buckets are cumulative"
        total = sum(requests_total(samples, vhost, f"{n}xx") for n in range(1, 6))
        assert counts[-1] == total == samples[("gateway_request_duration_seconds_count", (("vhost", vhost),))]
        assert samples[("gateway_request_duration_seconds_sum", (("vhost", vhost),))] > 0
    assert buckets(samples, "b.test")[-2][1] == buckets(samples, "b.test")[-1][1], "a static file takes < 60 s"


def test_the_route_is_behind_allow_and_answers_get_only(single: Gateway) -> None:
    assert httpx.get(single.url + "/elsewhere/metrics", headers={"host": "ops.test"}).status_code == 403
    refused = httpx.post(single.url + METRICS, headers={"host": "ops.test"})
    assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"


def test_gateway_check_accepts_the_handler(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(config(tmp_path))
    result = gateway_command("check", str(path))
    assert result.returncode == 0, result.stderr


def pool_load(samples: Samples, pool: tuple[tuple[str, str], ...]) -> tuple[float, float, float]:
    """(processes, busy, queued) of a pool in a scrape."""
    processes, busy, queued = (samples[(f"gateway_pool_{field}", pool)] for field in ("processes", "busy", "queued"))
    return processes, busy, queued


def test_pool_gauges_follow_the_load(tmp_path: Path) -> None:
    require_program("php-cgi")
    with run_gateway(config_text=config(tmp_path, more=PHP_ROUTE.format(php=PHP_SITE) + ISOLATED_ROUTE)) as gateway:
        samples = scrape(gateway)
        php = (("kind", "php-cgi"), ("pool", "vhost[3] (php.test) route[0] '/'"))
        app = next(labels for name, labels in samples if name == "gateway_pool_processes" and ("kind", "app") in labels)
        assert pool_load(samples, php) == (2, 0, 0)  # pool.max children, idle
        assert pool_load(samples, app) == (1, 0, 0)  # min = 1, started with the gateway, idle

        # Three slow PHP requests for two children, one slow request to the app pool.
        paths = [("php.test", "/slow.php?s=2")] * 3 + [("iso.test", "/?s=2")]
        slow = [threading.Thread(target=get, args=(gateway, host, path)) for host, path in paths]
        for thread in slow:
            thread.start()
        deadline = time.monotonic() + 1.8
        while time.monotonic() < deadline:
            samples = scrape(gateway)
            if pool_load(samples, php) == (2, 2, 1) and pool_load(samples, app) == (1, 1, 0):
                break
            time.sleep(0.05)
        assert pool_load(samples, php) == (2, 2, 1)  # two children busy, the third request waiting for one
        assert pool_load(samples, app) == (1, 1, 0)
        for thread in slow:
            thread.join(10)
        samples = scrape(gateway)
        assert pool_load(samples, php) == (2, 0, 0)
        assert pool_load(samples, app) == (1, 0, 0)


def stale_counts(folder: Path, value: float) -> None:
    """What an earlier run would have left in the workers' folder: a counter file of a pid gone long ago."""
    folder.mkdir(parents=True)
    stale = MmapedDict(str(folder / "counter_4242.db"))
    key = mmap_key("gateway_requests", "gateway_requests_total", ("vhost", "status_class"), ("a.test", "2xx"), "")
    stale.write_value(key, value, 0.0)
    stale.close()


def wait_for_count(gateway: Gateway, expected: float, timeout: float = 5.0) -> Samples:
    """Scrape until a.test's 2xx count is expected: other workers flush once a second."""
    deadline = time.monotonic() + timeout
    while True:
        samples = scrape(gateway)
        if requests_total(samples, "a.test", "2xx") == expected or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def stopped_workers(gateway: Gateway, reason: str) -> list[int]:
    """The pids of the workers the supervisor stopped for reason, as its log says."""
    marker = f" stops ({reason})"
    return [
        int(line.split(marker)[0].rsplit("worker ", 1)[1]) for line in gateway.stderr().splitlines() if marker in line
    ]


def wait_until_gone(pids: list[int], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids), f"workers {pids} did not exit"


def test_workers_add_up_after_a_reload_turns_metrics_on_and_across_a_recycle(tmp_path: Path) -> None:
    require_program("php-cgi")
    files = tmp_path / "run" / "metrics"
    stale_counts(files, 1000.0)
    pools = PHP_ROUTE.format(php=PHP_SITE) + ISOLATED_ROUTE  # run by the pool host for both workers
    with_metrics = config(tmp_path, "workers = 2\nmax_requests = 15", more=pools)
    with run_gateway(config_text=with_metrics.replace('handler = "metrics"', 'handler = "health"')) as gateway:
        assert not files.exists(), "an earlier run's numbers are not this run's"
        assert get(gateway, "a.test", "/") == 200  # not counted: no metrics route yet

        (gateway.workdir / "gateway.toml").write_text(with_metrics)
        gateway.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while len(stopped_workers(gateway, "reloaded")) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        wait_until_gone(stopped_workers(gateway, "reloaded"))

        pids: list[int] = []  # one per request, until a worker has served max_requests and been replaced
        while not stopped_workers(gateway, "served max_requests") and len(pids) < 200 and time.monotonic() < deadline:
            pids.append(pid_answering(gateway))
        sent = len(pids)
        assert len(set(pids)) >= 2, "one worker answered every request"
        deadline = time.monotonic() + 15
        while not stopped_workers(gateway, "served max_requests") and time.monotonic() < deadline:
            time.sleep(0.05)
        recycled = stopped_workers(gateway, "served max_requests")[0]
        wait_until_gone([recycled])

        samples = wait_for_count(gateway, sent)
        assert requests_total(samples, "a.test", "2xx") == sent
        assert buckets(samples, "a.test")[-1][1] == sent
        assert (files / f"counter_{recycled}.db").exists()  # its counts stay in the sums
        while (files / f"gauge_livesum_{recycled}.db").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not (files / f"gauge_livesum_{recycled}.db").exists(), "an exited worker's gauges stay in the sums"
        # The pool host publishes its pools: php-cgi's children and the app pool's process, once each.
        php = (("kind", "php-cgi"), ("pool", "vhost[3] (php.test) route[0] '/'"))
        assert pool_load(samples, php) == (2, 0, 0)
        app = next(labels for name, labels in samples if name == "gateway_pool_processes" and ("kind", "app") in labels)
        assert pool_load(samples, app) == (1, 0, 0)
