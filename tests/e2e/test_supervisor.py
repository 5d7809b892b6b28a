"""The supervisor with real worker processes: crash restart, graceful reload and recycle, clean stop.

Every load loop is bounded in count and time; the workers serve tests/support/apps.py:echo,
which says which pid answered.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import alive
from tests.support.server import Gateway, gateway_command, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

CONFIG = """
[server]
workers = 2
runtime_dir = "{runtime}"
shutdown_timeout = 10
{extra}

[[vhost]]
names = ["sv.test"]
  [[vhost.route]]
  path = "/slow"
  handler = "asgi"
  app = "tests.support.apps:slow"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "{app}"
"""
ECHO = "tests.support.apps:echo"


def config(tmp_path: Path, extra: str = "", app: str = ECHO) -> str:
    return CONFIG.format(runtime=tmp_path / "run", extra=extra, app=app)


def pid_of(http: httpx.Client) -> int:
    response = http.get("/", headers={"host": "sv.test"})
    assert response.status_code == 200
    pid: int = response.json()["pid"]
    return pid


def pids_answering(gateway: Gateway, tries: int = 60) -> set[int]:
    """Which workers answer, over fresh connections (the kernel spreads them across workers)."""
    seen: set[int] = set()
    for _ in range(tries):
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            seen.add(pid_of(http))
    return seen


def supervisor_pid(tmp_path: Path) -> int:
    return int((tmp_path / "run" / "gateway.pid").read_text())


class Load:
    """Sequential requests on fresh connections in a thread, counting failures, bounded in time and count."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.ok = 0
        self.failed: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while not self.stop.is_set() and time.monotonic() < deadline and self.ok + len(self.failed) < 5000:
            try:
                with httpx.Client(base_url=self.gateway.url, timeout=10) as http:
                    pid_of(http)
                self.ok += 1
            except (httpx.HTTPError, AssertionError) as exc:
                self.failed.append(repr(exc))

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(40)


@pytest.fixture()
def two_workers(tmp_path: Path) -> Iterator[Gateway]:
    with run_gateway(config_text=config(tmp_path)) as gateway:
        gateway.wait_for_log("is serving", timeout=15)
        deadline = time.monotonic() + 15
        while gateway.stderr().count("is serving") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield gateway


def test_two_workers_share_the_listener_and_stop_cleanly(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path)) as gateway:
        deadline = time.monotonic() + 15
        while gateway.stderr().count("is serving") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        workers = pids_answering(gateway)
        assert len(workers) == 2, "both workers accept connections"
        supervisor = supervisor_pid(tmp_path)
        assert supervisor == gateway.proc.pid and supervisor not in workers
    assert not any(alive(pid) for pid in workers), "SIGTERM stops every worker"
    assert not (tmp_path / "run" / "gateway.pid").exists(), "the pid file is removed"


def test_a_killed_worker_is_restarted_and_only_its_requests_fail(two_workers: Gateway) -> None:
    victim = next(iter(pids_answering(two_workers, 20)))
    with Load(two_workers) as load:
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        two_workers.wait_for_log(f"worker {victim} exited with signal SIGKILL")
        served_then = load.ok
        deadline = time.monotonic() + 20  # a loaded machine serves slowly; what matters is that it goes on
        while load.ok < served_then + 20 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert len(load.failed) <= 1, f"only a request in flight on the killed worker may fail: {load.failed}"
    assert load.ok >= served_then + 20, "requests go on being served"
    answering = pids_answering(two_workers)
    assert victim not in answering and len(answering) == 2, "a new worker took its place"


def test_sighup_under_load_replaces_every_worker_without_a_failure(two_workers: Gateway) -> None:
    before = pids_answering(two_workers, 20)
    with Load(two_workers) as load:
        time.sleep(0.3)
        two_workers.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20
        while two_workers.stderr().count("stops (reloaded)") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
    assert load.failed == [], load.failed[:3]
    assert load.ok > 20
    assert not (pids_answering(two_workers, 20) & before), "a new generation serves"


def test_an_invalid_config_on_sighup_keeps_the_old_workers(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path)) as gateway:
        gateway.wait_for_log("is serving")
        before = pids_answering(gateway, 20)
        config_file = gateway.workdir / "gateway.toml"
        config_file.write_text(config_file.read_text().replace('handler = "asgi"', 'handler = "asgee"', 1))
        gateway.proc.send_signal(signal.SIGHUP)
        log = gateway.wait_for_log("the current workers keep serving", timeout=30)
        assert "reload refused" in log and "asgee" in log
        assert pids_answering(gateway, 20) <= before


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_lets_a_slow_request_finish(two_workers: Gateway, signum: int) -> None:
    """SIGINT as a terminal's Ctrl-C: the workers lead their own process groups, so it reaches the supervisor only
    (SIGINT to a worker and then the supervisor's SIGTERM meant 'stop at once')."""
    workers = pids_answering(two_workers, 20)
    assert all(os.getpgid(pid) == pid for pid in workers)
    result: list[int] = []

    def slow() -> None:
        with httpx.Client(base_url=two_workers.url, timeout=20) as http:
            result.append(http.get("/slow?s=2", headers={"host": "sv.test"}).status_code)

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.7)
    two_workers.proc.send_signal(signum)
    thread.join(20)
    assert result == [200]
    assert two_workers.proc.wait(20) == 0


def test_max_requests_recycles_workers_without_a_failure(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path, "max_requests = 25")) as gateway:
        gateway.wait_for_log("is serving")
        first = pids_answering(gateway, 10)
        with Load(gateway) as load:
            deadline = time.monotonic() + 20
            while gateway.stderr().count("served max_requests") < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            deadline = time.monotonic() + 20
            while any(alive(pid) for pid in first) and time.monotonic() < deadline:
                time.sleep(0.1)  # the recycled workers drain once their replacements serve
        assert load.failed == [], load.failed[:3]
        assert not (pids_answering(gateway, 20) & first), "recycled workers were replaced"


def test_workers_that_fail_at_boot_stop_the_gateway(tmp_path: Path) -> None:
    text = config(tmp_path, app="tests.e2e.lifecycle_apps:startup_fails")
    with (
        pytest.raises(AssertionError, match="exited with 3") as failed,
        run_gateway(config_text=text, ready_timeout=60),
    ):
        pass
    assert "workers failed 3 times in a row before serving" in str(failed.value)


def test_no_worker_survives_kill_9_of_the_supervisor(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path), expect_exit=None) as gateway:
        gateway.wait_for_log("is serving")
        workers = pids_answering(gateway, 20)
        gateway.proc.kill()
        gateway.proc.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in workers if alive(pid)]


def test_reload_and_stop_commands_find_the_gateway_by_its_pid_file(two_workers: Gateway) -> None:
    config_file = str(two_workers.workdir / "gateway.toml")
    before = pids_answering(two_workers, 20)
    reload = gateway_command("reload", config_file)
    assert reload.returncode == 0 and f"reloading gateway (pid {two_workers.proc.pid})" in reload.stdout
    deadline = time.monotonic() + 20
    while two_workers.stderr().count("stops (reloaded)") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not (pids_answering(two_workers, 20) & before)
    stop = gateway_command("stop", config_file)
    assert stop.returncode == 0
    assert two_workers.proc.wait(20) == 0
    again = gateway_command("stop", config_file)
    assert again.returncode == 2 and "no gateway is running" in again.stderr


def test_max_memory_replaces_a_worker_that_grew(tmp_path: Path) -> None:
    """Every worker is above 1 MiB of RSS: each is replaced (a new one first) at the next memory check."""
    with run_gateway(config_text=config(tmp_path, 'max_memory = "1MiB"')) as gateway:
        gateway.wait_for_log("is serving")
        first = pids_answering(gateway, 10)
        with Load(gateway) as load:
            gateway.wait_for_log("uses more than max_memory (1048576 bytes): starting its replacement", timeout=15)
            deadline = time.monotonic() + 15
            while gateway.stderr().count("stops (uses more than max_memory") < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
        assert load.failed == [], load.failed[:3]
        assert pids_answering(gateway, 10) - first, "replacements serve"


def test_status_lists_every_worker(two_workers: Gateway, tmp_path: Path) -> None:
    config_file = str(two_workers.workdir / "gateway.toml")
    workers = pids_answering(two_workers, 20)
    time.sleep(1.2)  # workers report once a second
    table = gateway_command("status", config_file)
    assert table.returncode == 0, table.stderr
    assert f"supervisor pid {two_workers.proc.pid}" in table.stdout
    for pid in workers:
        assert f"{pid}  serving" in table.stdout
    document = json.loads(gateway_command("status", config_file, "--json").stdout)
    reported = {worker["pid"]: worker for worker in document["workers"]}
    assert set(reported) == workers
    assert sum(worker["requests"] for worker in reported.values()) >= 20
    assert all(worker["rss"] > 0 and worker["state"] == "serving" for worker in reported.values())
    admin = tmp_path / "run" / "admin.sock"
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600, "only the owner may ask"


def test_status_of_a_single_process_and_of_nothing(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path).replace("workers = 2", "workers = 1")) as gateway:
        config_file = str(gateway.workdir / "gateway.toml")
        document = json.loads(gateway_command("status", config_file, "--json").stdout)
        assert document["supervisor"] is None
        assert [worker["pid"] for worker in document["workers"]] == [gateway.proc.pid]
        reload = gateway_command("reload", config_file)
        assert reload.returncode == 2 and "single process, which does not reload" in reload.stderr
    gone = gateway_command("status", config_file)
    assert gone.returncode == 2 and "no gateway is running" in gone.stderr


def php_masters(parent: int) -> list[int]:
    """php-cgi processes whose parent is `parent` (masters; their children have the master as parent)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat_fields = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(stat_fields[1]) == parent and "php-cgi" in (entry / "comm").read_text():
                    found.append(int(entry.name))
    return found


def test_the_pool_host_runs_one_php_cgi_for_every_worker(tmp_path: Path) -> None:
    site = Path(__file__).parent / "php_site"
    text = (
        config(tmp_path)
        + f"""
[[vhost]]
names = ["php.test"]
  [[vhost.route]]
  path = "/_health"
  handler = "health"
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{site}"
  pool = {{ max = 2 }}
"""
    )
    with run_gateway(config_text=text) as gateway:
        workers = pids_answering(gateway, 30)
        for _ in range(10):
            with httpx.Client(base_url=gateway.url) as http:
                assert http.get("/pid.php", headers={"host": "php.test"}).status_code == 200
                assert http.get("/_health", headers={"host": "php.test"}).json() == {"status": "ready"}
        time.sleep(1.2)  # status reports come once a second
        document = json.loads(gateway_command("status", str(gateway.workdir / "gateway.toml"), "--json").stdout)
        host = next(worker for worker in document["workers"] if worker["role"] == "pools")
        assert len(workers) == 2 and host["pid"] not in workers
        assert [pool["kind"] for pool in host["pools"]] == ["php-cgi"]
        assert php_masters(host["pid"]) == [host["pools"][0]["pid"]], "one php-cgi, the pool host's"
        assert all(php_masters(pid) == [] for pid in workers), "the workers run none of their own"


@pytest.mark.parametrize("workers", [1, 2])
def test_reopen_logs_after_logrotate_renamed_the_file(tmp_path: Path, workers: int) -> None:
    """logrotate's postrotate (`gateway reopen-logs`, SIGUSR1): lines go on into a new file of the log's name."""
    log = tmp_path / "access.log"
    extra = f'access_log = "{log}"'
    text = config(tmp_path, extra=extra).replace("workers = 2", f"workers = {workers}")
    with run_gateway(config_text=text) as gateway:
        deadline = time.monotonic() + 15
        while gateway.stderr().count("is serving") < workers and workers > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(base_url=gateway.url, timeout=10) as http:
            for _ in range(4):
                pid_of(http)
            _wait_for_text(log, "GET / HTTP/1.1")
            log.rename(tmp_path / "access.log.1")
            reopen = gateway_command("reopen-logs", str(gateway.workdir / "gateway.toml"))
            assert reopen.returncode == 0, reopen.stderr
            assert f"reopening the access logs of gateway (pid {gateway.proc.pid})" in reopen.stdout
            gateway.wait_for_log("reopened 1 access log file(s)", timeout=10)
            if workers > 1:
                deadline = time.monotonic() + 10
                while gateway.stderr().count("reopened 1 access log file(s)") < workers:
                    assert time.monotonic() < deadline, gateway.stderr()
                    time.sleep(0.05)
            for _ in range(10):  # over fresh connections: the kernel spreads them across the workers
                with httpx.Client(base_url=gateway.url, timeout=10) as fresh:
                    pid_of(fresh)
        _wait_for_text(log, "GET / HTTP/1.1")
        assert gateway.proc.poll() is None, "SIGUSR1 did not stop it"
    rotated = (tmp_path / "access.log.1").read_text()
    assert rotated.count("GET / HTTP/1.1") == 4, "what was written before the rename stays in the old file"
    assert log.read_text().count("GET / HTTP/1.1") == 10


def _wait_for_text(path: Path, text: str, timeout: float = 5.0) -> None:
    """The access log is flushed once a second."""
    deadline = time.monotonic() + timeout
    while not path.exists() or text not in path.read_text():
        assert time.monotonic() < deadline, f"{text!r} never reached {path}"
        time.sleep(0.05)


def serving_workers(gateway: Gateway, generation: int, count: int, timeout: float = 20.0) -> list[int]:
    """Wait until `gateway status` shows count serving workers of that generation; their pids."""
    config_file = str(gateway.workdir / "gateway.toml")
    deadline = time.monotonic() + timeout
    while True:
        document = json.loads(gateway_command("status", config_file, "--json").stdout)
        pids = [
            w["pid"]
            for w in document["workers"]
            if w["generation"] == generation and w["state"] == "serving" and w["role"] == "worker"
        ]
        if len(pids) == count and len(document["workers"]) == count:
            return pids
        assert time.monotonic() < deadline, document
        time.sleep(0.2)


def test_a_reload_whose_workers_cannot_start_keeps_the_old_ones_serving(tmp_path: Path) -> None:
    mark = tmp_path / "fail"
    text = config(tmp_path, app="tests.support.apps:fails_while_marked")
    with run_gateway(config_text=text, env={"GATEWAY_TEST_MARK": str(mark)}) as gateway:
        before = serving_workers(gateway, 1, 2)
        mark.touch()
        assert gateway_command("reload", str(gateway.workdir / "gateway.toml")).returncode == 0
        gateway.wait_for_log("reload abandoned", timeout=20)
        assert gateway.proc.poll() is None, "the gateway goes on"
        assert sorted(serving_workers(gateway, 1, 2)) == sorted(before)
        assert pids_answering(gateway, 10) <= set(before)
        mark.unlink()
        assert gateway_command("reload", str(gateway.workdir / "gateway.toml")).returncode == 0
        serving_workers(gateway, 3, 2)  # generation 2 was abandoned; a later reload works


def test_an_old_worker_that_cannot_start_again_after_an_abandoned_reload_stops_nothing(tmp_path: Path) -> None:
    """Workers read the files when they start: a restarted old one fails as the reload did, beside one that serves."""
    mark = tmp_path / "fail"
    text = config(tmp_path, app="tests.support.apps:fails_while_marked")
    with run_gateway(config_text=text, env={"GATEWAY_TEST_MARK": str(mark)}) as gateway:
        victim, survivor = serving_workers(gateway, 1, 2)
        mark.touch()
        assert gateway_command("reload", str(gateway.workdir / "gateway.toml")).returncode == 0
        gateway.wait_for_log("reload abandoned", timeout=20)
        os.kill(victim, signal.SIGKILL)
        gateway.wait_for_log("keeps failing before it serves; the others serve on", timeout=20)
        assert gateway.proc.poll() is None, "one worker serves: the gateway goes on"
        assert pids_answering(gateway, 5) == {survivor}


def test_a_reload_applies_the_new_server_settings(tmp_path: Path) -> None:
    with run_gateway(config_text=config(tmp_path)) as gateway:
        serving_workers(gateway, 1, 2)
        config_file = gateway.workdir / "gateway.toml"
        config_file.write_text(config_file.read_text().replace("workers = 2", "workers = 3"))
        assert gateway_command("reload", str(config_file)).returncode == 0
        assert len(set(serving_workers(gateway, 2, 3))) == 3


def test_a_stopping_gateway_refuses_new_connections_at_once(two_workers: Gateway) -> None:
    thread = threading.Thread(target=lambda: httpx.get(f"{two_workers.url}/slow?s=3", headers={"host": "sv.test"}))
    thread.start()
    time.sleep(0.5)
    two_workers.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    started = time.monotonic()
    with pytest.raises(ConnectionRefusedError):
        two_workers.connect(timeout=5).recv(1)
    assert time.monotonic() - started < 1
    thread.join(20)


def test_a_second_gateway_from_the_same_config_is_refused(two_workers: Gateway) -> None:
    second = gateway_command("serve", str(two_workers.workdir / "gateway.toml"), "--listen", "127.0.0.1:0")
    assert second.returncode == 3
    assert f"another gateway (pid {two_workers.proc.pid}) is running from" in second.stderr


def test_stop_leaves_alone_a_process_that_reused_the_pid(tmp_path: Path) -> None:
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(config(tmp_path))
    # Its command line names "gateway serve", but it is not one (a pid reused by an editor, a pager...).
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "gateway", "serve"])
    try:
        (tmp_path / "run").mkdir()
        (tmp_path / "run" / "gateway.pid").write_text(f"{bystander.pid}\n")
        stop = gateway_command("stop", str(config_file))
        assert stop.returncode == 2 and "no gateway is running" in stop.stderr
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
