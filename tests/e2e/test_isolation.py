"""isolation = "process": app pools with real app processes, reached over their Unix sockets.

Every load is bounded in count and time; pool timings (idle_timeout) are short so the test is quick.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from tests.support.processes import alive
from tests.support.server import ROOT, Gateway, gateway_command, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

ECHO_CONFIG = """
[[vhost]]
names = ["iso.test"]
  [[vhost.route]]
  path = "/app"
  handler = "asgi"
  app = "{app}"
  isolation = "process"
  pool = {pool}
  {extra}
  [[vhost.route]]
  path = "/inline"
  handler = "asgi"
  app = "tests.support.apps:echo"
"""
ECHO = "tests.support.apps:echo"
SLOW = "tests.support.apps:slow"
HOST = {"host": "iso.test"}


def echo_config(app: str = ECHO, pool: str = "{ min = 1, max = 2 }", extra: str = "") -> str:
    return ECHO_CONFIG.format(app=app, pool=pool, extra=extra)


def status_of(gateway: Gateway, timeout: float = 5.0) -> dict[str, Any]:
    """The first app pool in `gateway status --json`.

    With a supervisor the pool host reports once a second, so its pool may be missing from the first answers.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = gateway_command("status", str(gateway.workdir / "gateway.toml"), "--json")
        assert result.returncode == 0, result.stderr
        pools = [pool for worker in json.loads(result.stdout)["workers"] for pool in worker.get("pools", [])]
        found = [pool for pool in pools if pool.get("kind") == "app pool"]
        if found:
            return cast(dict[str, Any], found[0])
        assert time.monotonic() < deadline, f"no app pool in `gateway status` within {timeout}s: {result.stdout}"
        time.sleep(0.1)


def serving_pid(gateway: Gateway) -> int:
    """The pid of the pool's first process, once the status reports one (the pool host's report may lag)."""
    wait_until(lambda: bool(status_of(gateway)["processes"]), 5, "the pool's process reported")
    return int(status_of(gateway)["processes"][0]["pid"])


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(0.1)


def concurrently(gateway: Gateway, paths: list[str]) -> list[httpx.Response]:
    """Send each path on its own connection at once; the responses in the same order."""
    results: list[Any] = [None] * len(paths)

    def one(index: int, path: str) -> None:
        with httpx.Client(base_url=gateway.url, timeout=20) as http:
            results[index] = http.get(path, headers=HOST)

    threads = [threading.Thread(target=one, args=(i, p)) for i, p in enumerate(paths)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)  # arrival order is the queue's order
    for thread in threads:
        thread.join(30)
    return results


def test_an_isolated_app_sees_the_request_as_an_inline_one(tmp_path: Path) -> None:
    with run_gateway(config_text=echo_config()) as gateway, httpx.Client(base_url=gateway.url) as http:
        isolated = http.get(
            "/app/x?y=1", headers={**HOST, "x-custom": "1", "gateway-scope": '{"client":["6.6.6.6",1]}'}
        )
        inline = http.get("/inline/x?y=1", headers={**HOST, "x-custom": "1"})
        assert isolated.status_code == 200, isolated.text
        seen, expected = isolated.json(), inline.json()
        assert seen["pid"] != gateway.proc.pid and expected["pid"] == gateway.proc.pid
        assert os.sched_getscheduler(seen["pid"]) == os.SCHED_BATCH, "it does not preempt the front"
        for key in ("query_string", "scheme", "client", "server", "http_version", "method"):
            assert seen[key] == expected[key], key
        assert (seen["path"], seen["root_path"]) == ("/app/x", "/app")
        assert seen["client"][0] == "127.0.0.1", "a client cannot forge the front's gateway-scope"
        names = [name for name, _ in seen["headers"]]
        assert "gateway-scope" not in names and not any(name.startswith("x-forwarded") for name in names)
        hop_by_hop_aside = [header for header in seen["headers"] if header[0] != "connection"]
        assert hop_by_hop_aside == [header for header in expected["headers"] if header[0] != "connection"]
        assert dict(seen["headers"])["host"] == "iso.test"


def test_two_django_projects_side_by_side(tmp_path: Path) -> None:
    text = ""
    for site in ("blog", "shop"):
        settings = f"tests.e2e.pool_apps.{site}_project.settings"  # each pool's own, whatever the gateway's is
        text += f"""
[[vhost]]
names = ["{site}.test"]
  [[vhost.route]]
  path = "/{site}"
  handler = "wsgi"
  app = "tests.e2e.pool_apps.{site}_project.wsgi:application"
  isolation = "process"
  pool = {{ min = 1, max = 1 }}
  env = {{ {site.upper()}_DB = "{tmp_path / (site + ".sqlite3")}", DJANGO_SETTINGS_MODULE = "{settings}" }}
"""
    with run_gateway(config_text=text) as gateway, httpx.Client(base_url=gateway.url) as http:
        pages = {}
        for site, visits in (("blog", 1), ("shop", 1), ("blog", 2), ("blog", 3), ("shop", 2)):
            response = http.get(f"/{site}/", headers={"host": f"{site}.test"})
            assert response.status_code == 200, response.text
            page = response.json()
            assert page["site"] == site and page["settings"] == f"tests.e2e.pool_apps.{site}_project.settings"
            assert page["database"] == str(tmp_path / f"{site}.sqlite3")
            assert page["visits"] == visits, "each project counts in its own database"
            assert page["script_name"] == f"/{site}" and page["remote_addr"] == "127.0.0.1"
            pages[site] = page
        assert pages["blog"]["pid"] != pages["shop"]["pid"]
        config_file = str(gateway.workdir / "gateway.toml")
        check = gateway_command("check", config_file)
        assert check.returncode == 0 and "share one interpreter" not in check.stdout + check.stderr
        inline = (
            Path(config_file)
            .read_text()
            .replace('isolation = "process"', "")
            .replace("pool = { min = 1, max = 1 }", "")
        )
        inline = "\n".join(line for line in inline.splitlines() if "_DB =" not in line)
        Path(config_file).write_text(inline)
        inline_env = {
            "BLOG_DB": str(tmp_path / "b.sqlite3"),
            "SHOP_DB": str(tmp_path / "s.sqlite3"),
            "DJANGO_SETTINGS_MODULE": "tests.e2e.pool_apps.blog_project.settings",  # one interpreter: one settings
        }
        clash = gateway_command("check", config_file, env=inline_env)
        assert "two Django projects would share one interpreter" in clash.stdout + clash.stderr


def test_the_pool_grows_under_load_and_shrinks_when_idle(tmp_path: Path) -> None:
    pool = "{ min = 1, max = 3, idle_timeout = 1, concurrency = 1 }"
    with run_gateway(config_text=echo_config(SLOW, pool)) as gateway:
        assert len(status_of(gateway)["processes"]) == 1, "min = 1 starts one with the gateway"
        peak: list[int] = []
        watcher = threading.Thread(
            target=lambda: peak.extend(len(status_of(gateway)["processes"]) for _ in range(6) if not time.sleep(0.4))
        )
        watcher.start()
        responses = concurrently(gateway, ["/app?s=2"] * 3)
        watcher.join(20)
        assert [r.status_code for r in responses] == [200, 200, 200]
        assert max(peak) == 3, f"three slow requests at once: three processes (saw {peak})"
        wait_until(lambda: len(status_of(gateway)["processes"]) == 1, 8, "back to min after idle_timeout")
        assert "stopped after 1s idle" in gateway.stderr()


def test_a_full_queue_answers_503_with_retry_after(tmp_path: Path) -> None:
    pool = "{ min = 1, max = 1, queue = 1, concurrency = 1 }"
    with run_gateway(config_text=echo_config(SLOW, pool)) as gateway:
        responses = concurrently(gateway, ["/app?s=1"] * 3)
        assert sorted(r.status_code for r in responses) == [200, 200, 503]
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.headers["retry-after"] == "1" and "busy" in refused.text


def test_a_process_is_recycled_after_max_requests(tmp_path: Path) -> None:
    pool = "{ min = 1, max = 1, max_requests = 3 }"
    with run_gateway(config_text=echo_config(ECHO, pool)) as gateway, httpx.Client(base_url=gateway.url) as http:
        pids = []
        for _ in range(7):
            response = http.get("/app", headers=HOST)
            assert response.status_code == 200
            pids.append(response.json()["pid"])
        assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
        wait_until(lambda: not alive(pids[0]), 10, "the recycled process stopped")
        assert "max_requests (3) reached" in status_of(gateway)["last_recycle"]


def test_recycling_under_load_fails_no_request(tmp_path: Path) -> None:
    """A request handed a slot on a process that then reaches max_requests is still served there."""
    pool = "{ min = 1, max = 1, max_requests = 4, concurrency = 2 }"
    codes: list[int] = []

    def client(url: str) -> None:
        with httpx.Client(base_url=url, timeout=20) as http:
            codes.extend(http.get("/app", headers=HOST).status_code for _ in range(25))

    with run_gateway(config_text=echo_config(ECHO, pool)) as gateway:
        threads = [threading.Thread(target=client, args=(gateway.url,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(codes) == 150 and set(codes) == {200}, sorted(set(codes))
        assert "none is available" not in gateway.stderr()


STUCK_CONFIG = """
[limits]
request_timeout = 2
[[vhost]]
names = ["iso.test"]
  [[vhost.route]]
  path = "/app"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.apps:environ_app"
  threads = 1
  isolation = "process"
  pool = { min = 1, max = 1 }
"""


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "supervisor"])
def test_a_wsgi_process_whose_request_timed_out_is_replaced(tmp_path: Path, workers: int) -> None:
    """A WSGI thread cannot be stopped: left stuck, it would make every later request a 504 (gunicorn's timeout).

    With a supervisor the pool lives in the pool host, and the worker's own 504 may come first.
    """
    config_text = f"[server]\nworkers = {workers}\n" + STUCK_CONFIG
    with run_gateway(config_text=config_text) as gateway, httpx.Client(base_url=gateway.url, timeout=20) as http:
        assert http.get("/app/stats", headers=HOST).status_code == 200  # the pool serves (and reports)
        stuck_pid = serving_pid(gateway)
        assert http.get("/app/sleep?s=60", headers=HOST).status_code == 504
        response = http.get("/app/stats", headers=HOST)
        assert response.status_code == 200, "the next request met the stuck thread"
        # With a supervisor `gateway status` shows what the pool host reported last (once a second).
        wait_until(lambda: "passed request_timeout" in status_of(gateway)["last_recycle"], 3, "the recycle reported")
        wait_until(lambda: not alive(stuck_pid), 15, "the stuck process was stopped")


def test_a_wsgi_process_whose_client_left_at_request_timeout_is_replaced(tmp_path: Path) -> None:
    """What the pool host sees when a worker gives its own 504 first: the request's connection leaves unanswered."""
    config_text = "[server]\nworkers = 2\n" + STUCK_CONFIG
    with run_gateway(config_text=config_text) as gateway, httpx.Client(base_url=gateway.url, timeout=20) as http:
        assert http.get("/app/stats", headers=HOST).status_code == 200  # the pool serves (and reports)
        stuck_pid = serving_pid(gateway)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{gateway.url}/app/sleep?s=60", headers=HOST, timeout=1.8)  # leaves before the 504
        wait_until(lambda: "passed request_timeout" in status_of(gateway)["last_recycle"], 5, "recycled")
        assert http.get("/app/stats", headers=HOST).status_code == 200, "the next request met the stuck thread"
        wait_until(lambda: not alive(stuck_pid), 15, "the stuck process was stopped")


def test_a_request_whose_process_dies_before_answering_is_a_502_not_sent_to_another(tmp_path: Path) -> None:
    """A request that kills its process could kill every process it were resent to (Passenger does not resend)."""
    pool = "{ min = 2, max = 2, concurrency = 1 }"
    config_text = echo_config("tests.e2e.pool_apps.apps:crash_once", pool)
    with run_gateway(config_text=config_text) as gateway, httpx.Client(base_url=gateway.url, timeout=10) as http:
        before = {process["pid"] for process in status_of(gateway)["processes"]}
        marker = tmp_path / "crashed"
        response = http.get(f"/app?marker={marker}", headers=HOST)
        assert response.status_code == 502, response.text
        crashed = int(marker.read_text())
        wait_until(lambda: not alive(crashed), 5, "the crashed process is gone")
        (other,) = before - {crashed}
        assert alive(other), "the request was not resent to the other process"
        answer = http.get(f"/app?marker={marker}", headers=HOST).json()
        assert answer["pid"] != crashed
        wait_until(lambda: len(status_of(gateway)["processes"]) == 2, 10, "min = 2 kept: the dead one replaced")
        assert other in {process["pid"] for process in status_of(gateway)["processes"]}
        assert "exited with status 1" in gateway.stderr()


def pool_socket(gateway: Gateway, number: int) -> Path:
    """The socket of the pool's process `number` once it is there: the "serving" line run_gateway waits
    for may be an app process's own, logged before the other processes' sockets exist."""
    folder = gateway.workdir / ".gateway"
    wait_until(lambda: any(folder.glob(f"app-*-{number}.sock")), 10, f"process {number}'s socket")
    return next(folder.glob(f"app-*-{number}.sock"))


def test_a_request_no_process_took_is_offered_to_another(tmp_path: Path) -> None:
    """A refused connect sent none of the request: another process may take it (a dying one refuses until reaped)."""
    with run_gateway(config_text=echo_config(ECHO, "{ min = 2, max = 2, concurrency = 1 }")) as gateway:
        first_socket = pool_socket(gateway, 1)
        first_socket.unlink()  # process 1, the one an idle pool picks first, can no longer be reached
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            answers = [http.get("/app", headers=HOST) for _ in range(3)]
        assert [answer.status_code for answer in answers] == [200, 200, 200]
        assert "process 1 did not take a request (cannot connect" in gateway.stderr()


def test_a_request_no_process_takes_is_a_502_after_three_tries(tmp_path: Path) -> None:
    with run_gateway(config_text=echo_config(ECHO, "{ min = 1, max = 1 }")) as gateway:
        pool_socket(gateway, 1).unlink()
        answer = httpx.get(f"{gateway.url}/app", headers=HOST, timeout=10)
        assert answer.status_code == 502
        assert gateway.stderr().count("did not take a request") == 2, "the third try's failure is the answer"
        assert "cannot connect: No such file or directory" in gateway.stderr()


def test_a_killed_process_is_replaced(tmp_path: Path) -> None:
    with run_gateway(config_text=echo_config(ECHO, "{ min = 1, max = 1 }")) as gateway:
        with httpx.Client(base_url=gateway.url) as http:
            first = http.get("/app", headers=HOST).json()["pid"]
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: not alive(first), 5, "the process died")
        with httpx.Client(base_url=gateway.url) as http:
            response = http.get("/app", headers=HOST)
        assert response.status_code == 200 and response.json()["pid"] != first
        assert "exited with signal SIGKILL" in gateway.stderr()


def test_app_processes_die_with_a_killed_gateway(tmp_path: Path) -> None:
    with run_gateway(config_text=echo_config(), expect_exit=None) as gateway:
        with httpx.Client(base_url=gateway.url) as http:
            app_pid = http.get("/app", headers=HOST).json()["pid"]
        gateway.proc.kill()
        gateway.proc.wait(5)
        wait_until(lambda: not alive(app_pid), 10, "the app process followed the gateway (parent-death signal)")


def test_sigterm_lets_an_isolated_slow_request_finish(tmp_path: Path) -> None:
    with run_gateway(config_text=echo_config(SLOW)) as gateway:
        result: list[httpx.Response] = []
        thread = threading.Thread(
            target=lambda: result.append(httpx.get(f"{gateway.url}/app?s=1.5", headers=HOST, timeout=10))
        )
        thread.start()
        time.sleep(0.5)
        gateway.proc.send_signal(signal.SIGTERM)
        thread.join(10)
        assert gateway.proc.wait(10) == 0
        assert result and result[0].status_code == 200 and result[0].text == "slept"


def test_an_app_that_cannot_start(tmp_path: Path) -> None:
    app = "tests.e2e.pool_apps.apps:interpreter"
    broken = 'env = { POOL_TEST_FAIL_IMPORT = "1" }'
    with run_gateway(config_text=echo_config(app, "{ min = 0, max = 1 }", broken)) as gateway:
        with httpx.Client(base_url=gateway.url) as http:
            response = http.get("/app", headers=HOST)
            assert response.status_code == 502 and "could not be started" in response.text
            assert http.get("/inline", headers=HOST).status_code == 200, "the rest of the gateway serves on"
        log = gateway.wait_for_log("could not start")
        assert "this app refuses to load" in log
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(echo_config(app, "{ min = 1, max = 1 }", broken))
    refused = gateway_command("serve", str(config_file), "--listen", "127.0.0.1:0")
    assert refused.returncode == 3, "a min = 1 pool that cannot start stops the gateway at startup"
    assert "this app refuses to load" in refused.stderr and "could not start" in refused.stderr


@pytest.fixture(scope="module")
def other_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv that finds the gateway through a .pth file (no network needed to install it)."""
    folder = tmp_path_factory.mktemp("venv") / "other"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=60)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(folder), "platbase": str(folder)}))
    ours = sysconfig.get_path("purelib")
    (site / "gateway-under-test.pth").write_text(f"{ROOT}\n{ours}\n")
    return folder / "bin" / "python"


def test_a_pool_runs_under_another_interpreter(tmp_path: Path, other_python: Path) -> None:
    extra = f'python = "{other_python}"\n  cwd = "{tmp_path}"'
    config_text = echo_config("tests.e2e.pool_apps.apps:interpreter", extra=extra)
    with run_gateway(config_text=config_text) as gateway, httpx.Client(base_url=gateway.url) as http:
        answer = http.get("/app", headers=HOST).json()
        assert answer["prefix"] == str(other_python.parent.parent)
        assert answer["cwd"] == str(tmp_path)


def test_an_interpreter_without_the_gateway_is_a_clear_error(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True, timeout=60)
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(echo_config(extra=f'python = "{bare}/bin/python"'))
    result = gateway_command("check", str(config_file), env={"PYTHONPATH": ""})
    assert result.returncode == 2
    assert "vhost[0].route[0].python" in result.stderr and "cannot import the gateway" in result.stderr
    assert f"{bare}/bin/python -m pip install" in result.stderr


def test_status_shows_the_pool(tmp_path: Path) -> None:
    with run_gateway(config_text=echo_config(ECHO, "{ min = 1, max = 2 }")) as gateway:
        with httpx.Client(base_url=gateway.url) as http:
            app_pid = http.get("/app", headers=HOST).json()["pid"]
        table = gateway_command("status", str(gateway.workdir / "gateway.toml"))
        assert table.returncode == 0, table.stderr
        assert "pool vhost[0].route[0] (asgi tests.support.apps:echo): 1 of max 2 processes, 0 queued" in table.stdout
        assert f"{app_pid}  ready" in table.stdout
        routes = gateway_command("routes", str(gateway.workdir / "gateway.toml"))
        assert '→ asgi (app = "tests.support.apps:echo") in its own processes (pool min 1, max 2)' in routes.stdout


WORKERS_CONFIG = """
[server]
workers = 2
shutdown_timeout = 10
""" + echo_config(ECHO, "{ min = 1, max = 1 }")


def test_workers_share_one_pool_in_the_pool_host(tmp_path: Path) -> None:
    with run_gateway(config_text=WORKERS_CONFIG) as gateway:
        answered = set()
        workers = set()
        for _ in range(30):
            with httpx.Client(base_url=gateway.url) as http:  # new connections: the kernel spreads them
                answered.add(http.get("/app", headers=HOST).json()["pid"])
                workers.add(http.get("/inline", headers=HOST).json()["pid"])
        assert len(workers) == 2 and len(answered) == 1, "both workers reach the same pool of max 1"
        time.sleep(1.2)  # status reports come once a second
        table = gateway_command("status", str(gateway.workdir / "gateway.toml"))
        assert "pool host; start" in table.stdout and f"{answered.pop()}  ready" in table.stdout


def test_reload_under_load_starts_new_pools_without_failures(tmp_path: Path) -> None:
    with run_gateway(config_text=WORKERS_CONFIG) as gateway:
        with httpx.Client(base_url=gateway.url) as http:
            before = http.get("/app", headers=HOST).json()["pid"]
        failures: list[str] = []
        seen: set[int] = set()
        running = True

        def load() -> None:
            deadline = time.monotonic() + 20
            while running and time.monotonic() < deadline:
                try:
                    with httpx.Client(base_url=gateway.url, timeout=10) as http:
                        response = http.get("/app", headers=HOST)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code} {response.text[:100]}")
                    else:
                        seen.add(response.json()["pid"])
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

        thread = threading.Thread(target=load)
        thread.start()
        time.sleep(0.5)
        gateway.proc.send_signal(signal.SIGHUP)
        gateway.wait_for_log("pool host", timeout=10)
        wait_until(lambda: len(seen - {before}) > 0 and not alive(before), 20, "the new generation's pool serves")
        running = False
        thread.join(25)
        assert failures == [], failures[:3]


def test_a_killed_pool_host_is_restarted(tmp_path: Path) -> None:
    with run_gateway(config_text=WORKERS_CONFIG) as gateway:
        time.sleep(1.2)
        document = json.loads(gateway_command("status", str(gateway.workdir / "gateway.toml"), "--json").stdout)
        host = next(worker for worker in document["workers"] if worker["role"] == "pools")
        os.kill(host["pid"], signal.SIGKILL)
        gateway.wait_for_log(f"pool host {host['pid']} exited with signal SIGKILL", timeout=10)

        def serves() -> bool:
            with httpx.Client(base_url=gateway.url) as http:
                return http.get("/app", headers=HOST).status_code == 200

        wait_until(serves, 15, "a new pool host serves the route")


def test_a_process_that_dies_mid_response_cuts_that_response(tmp_path: Path) -> None:
    with run_gateway(config_text=echo_config("tests.support.apps:stream", "{ min = 1, max = 1 }")) as gateway:
        document = status_of(gateway)
        app_pid = document["processes"][0]["pid"]
        with gateway.connect() as sock:
            sock.sendall(b"GET /app?n=50&size=100&delay=0.1 HTTP/1.1\r\nHost: iso.test\r\n\r\n")
            sock.settimeout(5)
            first = sock.recv(65536)
            assert first.startswith(b"HTTP/1.1 200"), first
            os.kill(app_pid, signal.SIGKILL)
            received = first
            while chunk := sock.recv(65536):
                received += chunk
        assert not received.endswith(b"0\r\n\r\n"), "a cut response never looks complete"
        with httpx.Client(base_url=gateway.url) as http:
            assert http.get("/app?n=1", headers=HOST).status_code == 200, "the next request gets a new process"


def test_a_process_that_does_not_start_in_time_is_failed(tmp_path: Path) -> None:
    app = "tests.e2e.pool_apps.apps:interpreter"
    slow = 'env = { POOL_TEST_SLOW_IMPORT = "30" }'
    with run_gateway(config_text=echo_config(app, "{ min = 0, max = 1, start_timeout = 1 }", slow)) as gateway:
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            response = http.get("/app", headers=HOST)
        assert response.status_code == 502
        assert "did not start serving within 1s (pool.start_timeout)" in gateway.stderr()


def test_stopping_while_a_process_starts_is_quiet(tmp_path: Path) -> None:
    """A process still starting when the pool closes is no start failure (it printed a task's traceback)."""
    app = "tests.e2e.pool_apps.apps:interpreter"
    slow = 'env = { POOL_TEST_SLOW_IMPORT = "30" }'
    text = "[server]\nshutdown_timeout = 1\n" + echo_config(app, "{ min = 0, max = 1, start_timeout = 20 }", slow)
    with run_gateway(config_text=text) as gateway:
        waiting = threading.Thread(target=lambda: _ignoring_errors(gateway, "/app"), daemon=True)
        waiting.start()  # its request starts the pool's process, which then imports its app for 30 s
        time.sleep(1.5)
    log = gateway.stderr()
    assert "Traceback" not in log and "never retrieved" not in log, log
    assert "could not start" not in log, log


def _ignoring_errors(gateway: Gateway, path: str) -> None:
    with contextlib.suppress(httpx.HTTPError), httpx.Client(base_url=gateway.url, timeout=10) as http:
        http.get(path, headers=HOST)


def test_health_waits_for_a_pool_with_no_process_serving(tmp_path: Path) -> None:
    marker = tmp_path / "slow-now"
    text = echo_config("tests.e2e.pool_apps.apps:interpreter", extra=f'env = {{ POOL_TEST_SLOW_IF = "{marker}" }}')
    text += '  [[vhost.route]]\n  path = "=/_gateway/health"\n  handler = "health"\n'
    with run_gateway(config_text=text) as gateway, httpx.Client(base_url=gateway.url) as http:
        assert http.get("/_gateway/health", headers=HOST).json() == {"status": "ready"}
        marker.write_text("")
        app_pid = http.get("/app", headers=HOST).json()["pid"]
        os.kill(app_pid, signal.SIGKILL)
        wait_until(lambda: http.get("/_gateway/health", headers=HOST).status_code == 503, 5, "health says waiting")
        waiting = http.get("/_gateway/health", headers=HOST).json()["waiting_for"]
        assert waiting == ["app pool of vhost[0].route[0] (no process serving)"]


WSGI_ROUTE = """
  [[vhost.route]]
  path = "/{prefix}"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.apps:env"
  bridge = "{bridge}"
  {isolation}
"""
WSGI_CONFIG = '[[vhost]]\nnames = ["iso.test"]\n' + "".join(
    WSGI_ROUTE.format(prefix=prefix, bridge=bridge, isolation=isolation)
    for prefix, bridge, isolation in [
        ("ours", "gateway", 'isolation = "process"\n  pool = { min = 1, max = 1 }'),
        ("a2wsgi", "a2wsgi", 'isolation = "process"\n  pool = { min = 1, max = 1 }'),
        ("inline-ours", "gateway", ""),
        ("inline-a2wsgi", "a2wsgi", ""),
    ]
)


def test_an_isolated_wsgi_app_gets_the_inline_environ_through_either_bridge(tmp_path: Path) -> None:
    with run_gateway(config_text=WSGI_CONFIG) as gateway, httpx.Client(base_url=gateway.url) as http:
        seen = {
            prefix: http.post(f"/{prefix}/x?y=1", headers={**HOST, "x-custom": "1"}, content=b"posted")
            for prefix in ("ours", "a2wsgi", "inline-ours", "inline-a2wsgi")
        }
        assert all(response.status_code == 200 for response in seen.values()), {p: r.text for p, r in seen.items()}
        environs = {prefix: response.json() for prefix, response in seen.items()}
        keys = ("PATH_INFO", "QUERY_STRING", "REMOTE_ADDR", "SERVER_NAME", "SERVER_PORT", "REQUEST_METHOD")
        keys += ("HTTP_X_CUSTOM", "CONTENT_LENGTH", "wsgi.url_scheme", "body")
        for prefix in ("ours", "a2wsgi"):
            isolated, inline = environs[prefix], environs[f"inline-{prefix}"]
            assert isolated["SCRIPT_NAME"] == f"/{prefix}"
            assert {key: isolated.get(key) for key in keys} == {key: inline.get(key) for key in keys}, prefix
        assert environs["a2wsgi"]["body"] == "posted" and environs["a2wsgi"]["REMOTE_ADDR"] == "127.0.0.1"
