"""A server's life as a user sees it: lifespan startup and shutdown, graceful stop, listeners."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.lifecycle_apps import MARKERS_ENV, RECORD_ENV
from tests.support.server import READY, ROOT, read_one_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(40)]

APPS = "tests.e2e.lifecycle_apps"


@dataclass
class Spawned:
    """A `gateway serve` started by the test itself, for what run_gateway() does not let us see."""

    proc: subprocess.Popen[bytes]
    log: Path

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 15.0) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"gateway did not exit within {timeout}s:\n{self.stderr()[-3000:]}") from None

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while READY not in self.stderr():
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited with {self.proc.returncode}:\n{self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway not ready after {timeout}s:\n{self.stderr()}")
            time.sleep(0.02)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait()


@contextlib.contextmanager
def spawn(
    args: list[str], workdir: Path, env: dict[str, str] | None = None, pass_fds: tuple[int, ...] = ()
) -> Iterator[Spawned]:
    """Start `python -m gateway serve ARGS`; kill it if the test leaves it running."""
    log = workdir / "stderr.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
            pass_fds=pass_fds,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    spawned = Spawned(proc, log)
    try:
        yield spawned
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def loopback_listener(family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind(("::1" if family == socket.AF_INET6 else "127.0.0.1", 0))
    sock.listen(16)
    return sock


def free_port(host: str = "127.0.0.1") -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def get(sock: socket.socket, path: str, extra: str = "") -> tuple[int, dict[bytes, bytes], bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n".encode())
    return read_one_response(sock, timeout=10)


def nothing_served(sock: socket.socket) -> bytes:
    """What a client whose connection was never accepted reads: nothing, then a reset or EOF."""
    sock.settimeout(5)
    try:
        return sock.recv(65536)
    except (ConnectionResetError, TimeoutError):
        return b""


# Lifespan -------------------------------------------------------------------------------------


def test_lifespan_startup_runs_before_the_first_request_and_shutdown_after_sigterm(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    listener = loopback_listener()
    port = listener.getsockname()[1]
    with spawn(
        [f"{APPS}:with_lifespan", "--listen", f"fd:{listener.fileno()}"],
        tmp_path,
        env={MARKERS_ENV: str(markers)},
        pass_fds=(listener.fileno(),),
    ) as gw:
        listener.close()
        # Sent at once: the startup takes 0.5 s, so this request waits in the backlog for it.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            status, _, body = get(sock, "/first")
            seen = json.loads(body)
            assert status == 200
            assert seen["startup_done"] is True
            assert seen["shutdown_done"] is False
            assert seen["state"] == {"greeting": "hello from startup", "pool": ["connection-1", "connection-2"]}
            status, _, body = get(sock, "/second")
            assert json.loads(body)["state"]["greeting"] == "hello from startup"
        assert not (markers / "shutdown").exists(), "shutdown ran while the server was still serving"
        assert gw.stop() == 0, gw.stderr()
    startup = float((markers / "startup").read_text())
    requests = [float(line) for line in (markers / "requests").read_text().split()]
    shutdown = float((markers / "shutdown").read_text())
    assert len(requests) == 2
    assert startup <= min(requests) and max(requests) <= shutdown


def test_state_is_a_copy_per_request(tmp_path: Path) -> None:
    """A request changing scope["state"] does not change what the next request sees."""
    markers = tmp_path / "markers"
    markers.mkdir()
    with run_gateway(f"{APPS}:with_lifespan", env={MARKERS_ENV: str(markers)}) as gw, httpx.Client() as client:
        changed = client.get(gw.url + "/a?mutate", timeout=5).json()
        after = client.get(gw.url + "/b", timeout=5).json()
    assert changed["state"]["greeting"] == "changed by a request"
    assert after["state"]["greeting"] == "hello from startup"


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("startup_fails", "database unreachable at db:5432"),
        ("startup_raises", "cannot open the connection pool"),
    ],
)
def test_failed_startup_exits_3_with_the_message_and_serves_nothing(tmp_path: Path, app: str, message: str) -> None:
    record = tmp_path / "record"
    listener = loopback_listener()
    port = listener.getsockname()[1]
    # A client already waiting when the server starts must never be answered by the app.
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    client.sendall(b"GET / HTTP/1.1\r\nHost: early\r\n\r\n")
    with spawn(
        [f"{APPS}:{app}", "--listen", f"fd:{listener.fileno()}"],
        tmp_path,
        env={RECORD_ENV: str(record)},
        pass_fds=(listener.fileno(),),
    ) as gw:
        code = gw.wait(timeout=20)
    listener.close()  # the test's copy was the last: the waiting client is turned away now
    with client:
        answer = nothing_served(client)
    stderr = gw.stderr()
    assert code == 3, stderr
    assert message in stderr
    assert READY not in stderr
    assert not record.exists(), "the app served a request although its startup failed"
    assert b"HTTP/" not in answer


@pytest.mark.parametrize("isolation", ["", 'isolation = "process"'])
def test_a_routes_failed_startup_is_told_once_with_its_route(tmp_path: Path, isolation: str) -> None:
    """The route names itself and the app's words follow, without the same prefix twice (inline or isolated)."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  path = "/api/"\n  handler = "asgi"\n'
        f'  app = "{APPS}:startup_fails"\n  {isolation}\n'
    )
    with spawn([str(config), "--listen", "127.0.0.1:0"], tmp_path, env={RECORD_ENV: str(tmp_path / "r")}) as gw:
        code = gw.wait(timeout=30)
    stderr = gw.stderr()
    assert code == 3, stderr
    told = "vhost[0] (a.test) route[0] '/api/': The app's lifespan startup failed: database unreachable at db:5432"
    assert told in stderr
    assert "The app's lifespan startup failed: vhost" not in stderr, stderr


def test_plain_app_without_lifespan_still_serves_and_logs_no_error(tmp_path: Path) -> None:
    with run_gateway(f"{APPS}:plain") as gw:
        response = httpx.get(gw.url + "/", timeout=5)
    assert (response.status_code, response.text) == (200, "plain app\n")
    stderr = gw.stderr()
    assert "Traceback" not in stderr, stderr
    assert "[ERROR]" not in stderr, stderr


# Graceful stop -----------------------------------------------------------------------------------


def _refused(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1) as sock:
            # Accepted into a backlog the server no longer reads: never served.
            sock.sendall(b"GET / HTTP/1.1\r\nHost: late\r\n\r\n")
            return nothing_served(sock) == b""
    except ConnectionRefusedError:
        return True


def test_sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() -> None:
    with run_gateway("tests.support.apps:slow") as gw:
        idle = gw.connect()
        assert get(idle, "/?s=0")[0] == 200  # an idle keep-alive connection
        busy = gw.connect(timeout=10)
        busy.sendall(b"GET /?s=3 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.5)  # the request is in the app now
        stopped_at = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        # The idle connection is closed promptly, not kept to its keep-alive timeout.
        idle.settimeout(3)
        assert idle.recv(1) == b""
        idle.close()
        # New connections are refused while the slow request is still running.
        deadline = time.monotonic() + 2.0
        while not _refused(gw.address):
            assert time.monotonic() < deadline, "new connections still served after SIGTERM"
            time.sleep(0.1)
        assert gw.proc.poll() is None, "the server exited before its request in flight finished"
        with busy:
            status, headers, body = read_one_response(busy, timeout=10)
            assert (status, body) == (200, b"slept")
            assert headers.get(b"connection") == b"close"
            assert busy.recv(1) == b""
        code = gw.proc.wait(timeout=10)
        elapsed = time.monotonic() - stopped_at
    assert code == 0, gw.stderr()
    assert elapsed < 5.0
    stderr = gw.stderr()
    assert "gateway stopping" in stderr and "gateway stopped" in stderr


def test_lifespan_shutdown_waits_for_the_request_in_flight(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    with run_gateway(f"{APPS}:with_lifespan", env={MARKERS_ENV: str(markers)}) as gw, gw.connect(10) as busy:
        busy.sendall(b"GET /work?sleep=1.5 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.5)
        gw.proc.send_signal(signal.SIGTERM)
        status, _, body = read_one_response(busy, timeout=10)
        assert status == 200
        assert json.loads(body)["shutdown_done"] is False
        assert gw.proc.wait(timeout=10) == 0
    finished = float((markers / "finished").read_text())
    assert float((markers / "shutdown").read_text()) >= finished


def test_request_outliving_shutdown_timeout_is_cut_and_the_server_still_exits_0(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    config = "[server]\nshutdown_timeout = 1\n"
    with (
        run_gateway(f"{APPS}:with_lifespan", config_text=config, env={MARKERS_ENV: str(markers)}) as gw,
        gw.connect(10) as busy,
    ):
        busy.sendall(b"GET /forever?sleep=30 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.5)
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(timeout=10)
        elapsed = time.monotonic() - started
        assert nothing_served(busy) == b"", "a cut request must not look like a complete response"
    assert code == 0, gw.stderr()
    assert elapsed < 3.0, f"stopping took {elapsed:.2f}s with shutdown_timeout = 1"
    assert (markers / "shutdown").exists(), "lifespan shutdown must run even after a forced drain"
    assert not (markers / "finished").exists()


def test_second_sigterm_stops_without_waiting() -> None:
    with run_gateway("tests.support.apps:slow") as gw, gw.connect(10) as busy:
        busy.sendall(b"GET /?s=20 HTTP/1.1\r\nHost: test\r\n\r\n")
        time.sleep(0.5)
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert gw.proc.poll() is None
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(timeout=10)
        elapsed = time.monotonic() - started
    assert code == 0, gw.stderr()
    assert elapsed < 2.0, f"a second SIGTERM still waited {elapsed:.2f}s"


def test_sigterm_when_idle_exits_0_at_once() -> None:
    with run_gateway("tests.support.apps:echo") as gw:
        assert httpx.get(gw.url + "/", timeout=5).status_code == 200
        started = time.monotonic()
        gw.proc.send_signal(signal.SIGTERM)
        code = gw.proc.wait(timeout=10)
        elapsed = time.monotonic() - started
    assert code == 0
    assert elapsed < 2.0, f"an idle server took {elapsed:.2f}s to stop"


# Listeners -------------------------------------------------------------------------------------------


def _served_at(client: httpx.Client, url: str) -> dict[str, object]:
    response = client.get(url, timeout=5)
    assert response.status_code == 200
    seen: dict[str, object] = response.json()
    return seen


def test_ipv6_loopback_listener() -> None:
    if not has_ipv6_loopback():
        pytest.skip("this machine has no IPv6 loopback")
    port = free_port("::1")
    with run_gateway("tests.support.apps:echo", args=("--listen", f"[::1]:{port}")) as gw:
        with httpx.Client() as client:
            seen = _served_at(client, f"http://[::1]:{port}/v6")
        assert f"http://[::1]:{port}" in gw.stderr()
    assert seen["server"] == ["::1", port]
    assert seen["client"][0] == "::1"  # type: ignore[index]


def test_several_listeners_at_once_and_the_unix_socket_is_removed_on_exit(tmp_path: Path) -> None:
    unix_path = tmp_path / "gw.sock"
    port4 = free_port()
    args = ["--listen", f"127.0.0.1:{port4}", "--listen", f"unix:{unix_path}"]
    ipv6 = has_ipv6_loopback()
    port6 = free_port("::1") if ipv6 else 0
    if ipv6:
        args += ["--listen", f"[::1]:{port6}"]
    with run_gateway("tests.support.apps:echo", args=tuple(args)) as gw:
        ready = gw.stderr()
        assert f"http://127.0.0.1:{port4}" in ready and f"unix:{unix_path}" in ready
        with httpx.Client() as client:
            assert _served_at(client, f"{gw.url}/fd")["path"] == "/fd"  # run_gateway's own fd: listener
            assert _served_at(client, f"http://127.0.0.1:{port4}/v4")["server"] == ["127.0.0.1", port4]
            if ipv6:
                assert _served_at(client, f"http://[::1]:{port6}/v6")["server"] == ["::1", port6]
        assert unix_path.exists()
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(unix_path))) as client:
            assert _served_at(client, "http://gateway/unix")["path"] == "/unix"
    assert not unix_path.exists(), "the unix socket file was left behind"


def test_listen_list_from_the_config_file(tmp_path: Path) -> None:
    unix_path = tmp_path / "cfg.sock"
    port = free_port()
    config = tmp_path / "gateway.toml"
    config.write_text(f'app = "tests.support.apps:echo"\n[server]\nlisten = ["127.0.0.1:{port}", "unix:{unix_path}"]\n')
    with spawn([str(config)], tmp_path) as gw:
        gw.wait_ready()
        with httpx.Client() as client:
            assert _served_at(client, f"http://127.0.0.1:{port}/tcp")["path"] == "/tcp"
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(unix_path))) as client:
            assert _served_at(client, "http://gateway/unix")["path"] == "/unix"
        assert gw.stop() == 0, gw.stderr()
    assert not unix_path.exists()


def test_stale_unix_socket_file_is_replaced(tmp_path: Path) -> None:
    unix_path = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as crashed:
        crashed.bind(str(unix_path))  # a server that died without cleaning up
    assert unix_path.exists()
    with (
        run_gateway("tests.support.apps:echo", args=("--listen", f"unix:{unix_path}")),
        httpx.Client(transport=httpx.HTTPTransport(uds=str(unix_path))) as client,
    ):
        assert _served_at(client, "http://gateway/fresh")["path"] == "/fresh"
    assert not unix_path.exists()


def test_live_unix_socket_is_not_stolen(tmp_path: Path) -> None:
    unix_path = tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other_server:
        other_server.bind(str(unix_path))
        other_server.listen(1)
        with spawn(["tests.support.apps:echo", "--listen", f"unix:{unix_path}"], tmp_path) as gw:
            code = gw.wait(timeout=20)
        assert unix_path.exists(), "the other server's socket file was removed"
    assert code == 3, gw.stderr()
    assert "another server is already listening" in gw.stderr()


def test_a_listener_that_cannot_bind_stops_startup_before_the_app_starts(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with spawn(
            [f"{APPS}:with_lifespan", "--listen", f"127.0.0.1:{port}"], tmp_path, env={MARKERS_ENV: str(markers)}
        ) as gw:
            code = gw.wait(timeout=20)
    assert code == 3, gw.stderr()
    assert not (markers / "startup").exists(), "lifespan startup ran although a listener failed"
