"""run_gateway(): the real server in a child process on a socket the test bound itself.

The test binds 127.0.0.1:0 (so no port races), passes the socket as fd:N,
waits for the "serving on" log line, and on exit stops the server with
SIGTERM and checks that it exited 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READY = "gateway serving on"


@dataclass
class Gateway:
    """A running gateway: where it listens and what it logged."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    workdir: Path
    unix_path: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def stderr(self) -> str:
        return (self.workdir / "stderr.log").read_text(errors="replace")

    def stdout(self) -> str:
        return (self.workdir / "stdout.log").read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 5.0, stream: str = "stderr") -> str:
        """Wait until text appears in the log (the access log is flushed once a second)."""
        deadline = time.monotonic() + timeout
        while True:
            content = self.stderr() if stream == "stderr" else self.stdout()
            if text in content:
                return content
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not in {stream} after {timeout}s:\n{content[-3000:]}")
            time.sleep(0.05)

    def connect(self, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection(self.address, timeout=timeout)
        return sock


@contextlib.contextmanager
def run_gateway(
    *targets: str,
    config_text: str | None = None,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    expect_exit: int | None = 0,
    ready_timeout: float = 15.0,
) -> Iterator[Gateway]:
    """Start `python -m gateway serve` on a fresh loopback port; stop it with SIGTERM after."""
    workdir = Path(tempfile.mkdtemp(prefix="gateway-test-"))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "gateway", "serve"]
    if config_text is not None:
        config = workdir / "gateway.toml"
        config.write_text(config_text)
        command.append(str(config))
    command += [*targets, "--listen", f"fd:{listener.fileno()}", *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    with open(workdir / "stdout.log", "wb") as out, open(workdir / "stderr.log", "wb") as err:
        proc = subprocess.Popen(command, cwd=ROOT, pass_fds=[listener.fileno()], stdout=out, stderr=err, env=full_env)
    listener.close()
    gateway = Gateway(proc, "127.0.0.1", port, workdir)
    try:
        _wait_ready(gateway, ready_timeout)
        yield gateway
    finally:
        _stop(gateway, expect_exit)


def _wait_ready(gateway: Gateway, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while READY not in gateway.stderr():
        if gateway.proc.poll() is not None:
            raise AssertionError(f"gateway exited with {gateway.proc.returncode} before serving:\n{gateway.stderr()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gateway not ready after {timeout}s:\n{gateway.stderr()}")
        time.sleep(0.02)


def _stop(gateway: Gateway, expect_exit: int | None) -> None:
    proc = gateway.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(f"gateway did not stop within 15s of SIGTERM:\n{gateway.stderr()[-3000:]}") from None
    if expect_exit is not None and proc.returncode != expect_exit:
        raise AssertionError(
            f"gateway exited with {proc.returncode}, expected {expect_exit}:\n{gateway.stderr()[-3000:]}"
        )


def read_response(sock: socket.socket, timeout: float = 5.0) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout)
    chunks = []
    with contextlib.suppress(ConnectionResetError):
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def read_one_response(sock: socket.socket, timeout: float = 5.0) -> tuple[int, dict[bytes, bytes], bytes]:
    """One response read off a keep-alive connection (Content-Length or chunked framing)."""
    sock.settimeout(timeout)
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed before a full response head: {buffer!r}")
        buffer += data
    head, _, rest = buffer.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        while len(rest) < length:
            data = sock.recv(65536)
            if not data:
                break
            rest += data
        return status, headers, rest[:length]
    if headers.get(b"transfer-encoding") == b"chunked":
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest += sock.recv(65536)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest += sock.recv(65536)
            body += rest[:size]
            rest = rest[size + 2 :]
            if size == 0:
                return status, headers, body
    return status, headers, rest


def gateway_command(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS...` to its end, for the one-shot commands (check, routes, explain, stop...)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
