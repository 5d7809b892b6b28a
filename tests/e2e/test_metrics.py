"""The `metrics` handler over real sockets: counts by vhost and status class, histograms, PHP pools, workers.

Scrapes are parsed with prometheus-client's own text parser, as a Prometheus
server would read them. The metrics route is on a vhost of its own
(ops.test), so scrapes do not count under the vhosts the tests load.
"""

from __future__ import annotations

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


def get(gateway: Gateway, host: str, path: str) -> int:
    """One request on a fresh connection (so, with workers, the kernel spreads them); its status."""
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        return http.get(path, headers={"host": host}).status_code


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


def test_php_pool_gauges_follow_the_load(tmp_path: Path) -> None:
    require_program("php-cgi")
    text = config(tmp_path, more=PHP_ROUTE.format(php=PHP_SITE))
    with run_gateway(config_text=text) as gateway:
        assert get(gateway, "php.test", "/hello.php") == 200
        pool = (("kind", "php-cgi"), ("pool", "vhost[3] (php.test) route[0] '/'"))
        samples = scrape(gateway)
        assert samples[("gateway_pool_processes", pool)] == 2
        assert samples[("gateway_pool_busy", pool)] == 0

        slow = [threading.Thread(target=get, args=(gateway, "php.test", "/slow.php?s=2")) for _ in range(3)]
        for thread in slow:
            thread.start()
        deadline = time.monotonic() + 1.8
        while time.monotonic() < deadline:  # two children busy, the third request waiting for one
            samples = scrape(gateway)
            if samples[("gateway_pool_busy", pool)] == 2 and samples[("gateway_pool_queued", pool)] == 1:
                break
            time.sleep(0.05)
        assert (samples[("gateway_pool_busy", pool)], samples[("gateway_pool_queued", pool)]) == (2, 1)
        for thread in slow:
            thread.join(10)
        samples = scrape(gateway)
        assert (samples[("gateway_pool_busy", pool)], samples[("gateway_pool_queued", pool)]) == (0, 0)


def test_app_pool_gauges(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path, more=ISOLATED_ROUTE)) as gateway:
        samples = scrape(gateway)
        pools = [labels for name, labels in samples if name == "gateway_pool_processes"]
        pool = next(labels for labels in pools if ("kind", "app") in labels)
        assert samples[("gateway_pool_processes", pool)] == 1  # min = 1, started with the gateway
        assert samples[("gateway_pool_busy", pool)] == 0
        slow = threading.Thread(target=get, args=(gateway, "iso.test", "/?s=1.5"))
        slow.start()
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline and samples[("gateway_pool_busy", pool)] != 1:
            time.sleep(0.05)
            samples = scrape(gateway)
        assert samples[("gateway_pool_busy", pool)] == 1
        slow.join(10)


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


def load_until_both_answer(gateway: Gateway, count: int, bound: int = 200) -> int:
    """count requests to a.test on fresh connections, more (up to bound) until both workers answered; how many."""
    pids: set[int] = set()
    sent = 0
    while sent < count or (len(pids) < 2 and sent < bound):
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            response = http.get("/", headers={"host": "a.test"})
        assert response.status_code == 200
        pids.add(response.json()["pid"])
        sent += 1
    assert len(pids) == 2, f"one worker answered all {sent} requests"
    return sent


def test_counts_of_two_workers_add_up_and_an_earlier_run_is_forgotten(tmp_path: Path) -> None:
    stale_counts(tmp_path / "run" / "metrics", 1000.0)
    with run_gateway(config_text=config(tmp_path, "workers = 2")) as gateway:
        assert not (tmp_path / "run" / "metrics" / "counter_4242.db").exists()
        sent = load_until_both_answer(gateway, 40)
        samples = wait_for_count(gateway, sent)
        assert requests_total(samples, "a.test", "2xx") == sent
        assert buckets(samples, "a.test")[-1][1] == sent


def test_counts_survive_a_recycled_worker(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path, "workers = 2\nmax_requests = 15")) as gateway:
        sent = 0
        deadline = time.monotonic() + 20
        while "stops (served max_requests)" not in gateway.stderr() and time.monotonic() < deadline and sent < 200:
            assert get(gateway, "a.test", "/") == 200
            sent += 1
        old = gateway.wait_for_log("stops (served max_requests)", timeout=10)
        recycled = int(old.split("stops (served max_requests)")[0].rsplit("worker ", 1)[1].strip())
        deadline = time.monotonic() + 10
        while alive(recycled) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(recycled), "the recycled worker did not exit"
        assert requests_total(wait_for_count(gateway, sent), "a.test", "2xx") == sent
