"""Side-by-side runs: each server pinned to core 0, wrk pinned to core 1, rounds alternated.

Nothing here asserts: the numbers are for the issue notes and the README.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SERVER_CORE, LOAD_CORE = "0", "1"


@dataclass
class Peer:
    """A server under test: how to start it, and its numbers per round."""

    name: str
    command: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    wrk_args: list[str] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def gateway_command(target: str, port: int) -> list[str]:
    """gateway serving target on loopback as every benchmark runs it: no access log, quiet."""
    listen = f"127.0.0.1:{port}"
    return [
        PYTHON,
        "-m",
        "gateway",
        "serve",
        target,
        "--listen",
        listen,
        "--access-log",
        "off",
        "--log-level",
        "warning",
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port} after {timeout}s")


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process and its children so far (nginx workers are children)."""
    total = 0.0
    for task in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{task}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def run_wrk(url: str, seconds: int, connections: int, extra: list[str] | None = None) -> tuple[float, float]:
    """(requests per second, p99 latency in ms) from one wrk run on the load core."""
    out = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            *(extra or []),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: .*", out)
    if errors:
        print(f"    wrk reported: {errors.group(0)}", file=sys.stderr)
    return rps, float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan")


def measure(peers: list[Peer], path: str, rounds: int, seconds: int, connections: int) -> None:
    """Alternate the peers round by round so drift on the machine hits them alike."""
    for round_no in range(rounds):
        for peer in peers:
            proc = subprocess.Popen(
                ["taskset", "-c", SERVER_CORE, *peer.command],
                cwd=ROOT,
                env={**os.environ, **peer.env},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                wait_listening(peer.port, proc)
                url = f"http://127.0.0.1:{peer.port}{path}"
                run_wrk(url, 2, connections, peer.wrk_args)  # warm-up
                time.sleep(0.5)  # let the warm-up's connections close (per-client connection limits)
                before = cpu_seconds(proc.pid)
                rps, p99 = run_wrk(url, seconds, connections, peer.wrk_args)
                used = (cpu_seconds(proc.pid) - before) / seconds
                peer.rps.append(rps)
                peer.p99_ms.append(p99)
                peer.cpu.append(used)
                print(
                    f"  round {round_no + 1} {peer.name:<24} {rps:>10.0f} req/s  p99 {p99:7.2f} ms  "
                    f"cpu {used * 100:4.0f}%",
                    flush=True,
                )
            finally:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def report(peers: list[Peer], baseline: Peer) -> None:
    """Medians, and the median of per-round ratios: rounds run back to back, so a round's
    ratio cancels most of the drift a shared machine shows from one minute to the next."""
    base = statistics.median(baseline.rps)
    print(f"\n{'server':<34}{'req/s (median)':>16}{'p99 ms':>10}{'cpu':>8}{'ratio':>8}{'paired':>8}")
    for peer in peers:
        rps = statistics.median(peer.rps)
        paired = statistics.median(a / b for a, b in zip(peer.rps, baseline.rps, strict=True))
        print(
            f"{peer.name:<34}{rps:>16.0f}{statistics.median(peer.p99_ms):>10.2f}"
            f"{statistics.median(peer.cpu) * 100:>7.0f}%{rps / base:>7.2f}x{paired:>7.2f}x"
        )
    print(
        f"(against {baseline.name}; 'paired' is the median of per-round ratios; "
        f"server on core {SERVER_CORE}, wrk on core {LOAD_CORE})"
    )
