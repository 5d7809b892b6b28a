"""python -m bench.php: PHP hello world, gateway + php-cgi beside nginx + php-fpm, same number of PHP children.

Three server sides, each with N PHP children (--children, default 4) that
replace themselves after the same number of requests (--max-requests, 500,
the php handler's default):
- gateway's php handler: it starts php-cgi itself (PHP_FCGI_CHILDREN=N) and
  keeps one FastCGI connection per child;
- nginx (one worker, access log off) + php-fpm (pm = static, N children, a
  Unix socket), the usual way: a new FastCGI connection per request;
- the same with FastCGI keep-alive (upstream keepalive N, fastcgi_keep_conn on).
  nginx opens as many connections as requests in flight and keeps N: a kept
  one holds its php-fpm child, so the others wait in the socket's backlog
  until a child is replaced (expect a p99 near a second).
When we are root php-fpm runs as root (-R), as php-cgi does under gateway.

The harness's method: every program of a server side (gateway and its
php-cgi, or nginx and php-fpm) on core 0, wrk on core 1, rounds alternating
the servers, medians and paired ratios. Two things it does not do are done
here: a server side of two programs (php-fpm, then nginx), and a wrk run
that fails the server when a response is not 2xx or a socket errs (the
harness only prints those). CPU is the whole server side's, PHP children
that were replaced included. Target from the issue: gateway ≥ 1.0× nginx +
php-fpm the usual way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import LOAD_CORE, ROOT, SERVER_CORE, Peer, free_port, gateway_command, report, wait_listening

HELLO = "<?php echo 'Hello from PHP';\n"
BODY = b"Hello from PHP"

GATEWAY_CONF = """
[server]
listen = ["127.0.0.1:{port}"]
access_log = "off"
runtime_dir = "{run}"
[[vhost]]
names = ["localhost", "127.0.0.1"]
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{root}"
  pool = {{ max = {children}, max_requests = {max_requests} }}
"""

FPM_CONF = """
[global]
pid = {dir}/php-fpm-{name}.pid
error_log = {dir}/php-fpm-{name}.log
log_level = warning
daemonize = no
[bench]
listen = {socket}
listen.mode = 0666
pm = static
pm.max_children = {children}
pm.max_requests = {max_requests}
"""

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx-{name}.pid;
error_log {dir}/nginx-{name}.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream php {{ server unix:{socket};{keepalive} }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location ~ \\.php$ {{
            try_files $uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass php;{keep_conn}
        }}
    }}
}}
"""


@dataclass
class PhpPeer(Peer):
    """A Peer whose server side may start with php-fpm (ready when its socket accepts), and its failures."""

    fpm_command: list[str] = field(default_factory=list)
    fpm_socket: Path | None = None
    logs: list[Path] = field(default_factory=list)
    front_us: list[float] = field(default_factory=list)
    php_us: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class WrkRun:
    rps: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def run_wrk(url: str, seconds: int, connections: int) -> WrkRun:
    """harness.run_wrk's run on the load core, also counting non-2xx responses and socket errors."""
    out = subprocess.run(
        ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if rps is None:
        raise RuntimeError(f"wrk printed no Requests/sec:\n{out}")
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkRun(
        float(rps.group(1)),
        float(p99.group(1)) * scale[p99.group(2)] if p99 else float("nan"),
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(n) for n in errors.groups()) if errors else 0,
    )


def start_pinned(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A program on the server core, in a session of its own (one group to signal), stderr to log."""
    with log.open("ab") as stderr:
        return subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )


def wait_socket(path: Path, proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"php-fpm exited with {proc.returncode} (see its log)")
        if path.is_socket():
            return
        time.sleep(0.05)
    raise RuntimeError(f"php-fpm did not open {path} after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def _stat(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def process_tree(roots: list[int]) -> list[int]:
    """The roots and every descendant (php-cgi runs in a session of its own, but is still gateway's child)."""
    found: list[int] = []
    todo = list(roots)
    while todo and len(found) < 1000:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in task.read_text().split())
    return found


def cpu_seconds(roots: list[int]) -> tuple[float, float]:
    """(front end, PHP) CPU seconds so far: utime+stime of the live processes plus cutime+cstime, so the
    PHP children replaced meanwhile count too. PHP is whatever runs as php-cgi or php-fpm."""
    front = php = 0
    for pid in process_tree(roots):
        fields = _stat(pid)
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().startswith("php"):
                php += sum(int(n) for n in fields[11:15])
            else:
                front += sum(int(n) for n in fields[11:15])
    tick = os.sysconf("SC_CLK_TCK")
    return front / tick, php / tick


def off_core(roots: list[int]) -> list[int]:
    """Processes of the server side allowed on any core other than the server core."""
    wrong = []
    for pid in process_tree(roots):
        with contextlib.suppress(OSError):
            if os.sched_getaffinity(pid) != {int(SERVER_CORE)}:
                wrong.append(pid)
    return wrong


def check_hello(url: str) -> None:
    with urllib.request.urlopen(url, timeout=5) as response:
        body = response.read()
        if response.status != 200 or body != BODY:
            raise RuntimeError(f"{url}: {response.status} {body[:80]!r}, expected 200 {BODY!r}")


def start_side(peer: PhpPeer) -> list[subprocess.Popen[bytes]]:
    """The peer's programs, started pinned and ready: php-fpm first when there is one, then the HTTP server."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        if peer.fpm_command and peer.fpm_socket is not None:
            procs.append(start_pinned(peer.fpm_command, {}, peer.logs[0]))
            wait_socket(peer.fpm_socket, procs[0])
        procs.append(start_pinned(peer.command, peer.env, peer.logs[-1]))
        wait_listening(peer.port, procs[-1])
    except BaseException:
        for proc in reversed(procs):
            stop(proc)
        raise
    return procs


def measure_round(peer: PhpPeer, path: str, seconds: int, connections: int, round_no: int) -> None:
    """One round of one peer: start its server side, check the answer, warm up, measure, stop."""
    procs = start_side(peer)
    try:
        url = f"http://127.0.0.1:{peer.port}{path}"
        check_hello(url)
        run_wrk(url, 2, connections)  # warm-up
        time.sleep(0.5)  # let the warm-up's connections close
        roots = [proc.pid for proc in procs]
        stray = off_core(roots)
        if stray:
            peer.failures.append(f"round {round_no}: processes {stray} not pinned to core {SERVER_CORE}")
        before = cpu_seconds(roots)
        run = run_wrk(url, seconds, connections)
        after = cpu_seconds(roots)
    finally:
        for proc in reversed(procs):
            stop(proc)
    record(peer, run, after[0] - before[0], after[1] - before[1], seconds, round_no)


def record(peer: PhpPeer, run: WrkRun, front: float, php: float, seconds: int, round_no: int) -> None:
    """Keep one round's numbers (CPU in seconds, for the front end and PHP) and print them."""
    requests = run.rps * seconds
    peer.rps.append(run.rps)
    peer.p99_ms.append(run.p99_ms)
    peer.cpu.append((front + php) / seconds)
    peer.front_us.append(front / requests * 1e6)
    peer.php_us.append(php / requests * 1e6)
    if run.non_2xx or run.socket_errors:
        peer.failures.append(f"round {round_no}: {run.non_2xx} non-2xx responses, {run.socket_errors} socket errors")
    print(
        f"  round {round_no} {peer.name:<30} {run.rps:>9.0f} req/s  p99 {run.p99_ms:7.2f} ms  "
        f"cpu {peer.cpu[-1] * 100:4.0f}%  non-2xx {run.non_2xx}  socket errors {run.socket_errors}",
        flush=True,
    )


def fpm_peer(name: str, workdir: Path, root: Path, children: int, max_requests: int, keepalive: bool) -> PhpPeer:
    """nginx + php-fpm, their configs written into workdir; keepalive: one kept connection per child at most."""
    fpm = shutil.which("php-fpm") or next(iter(sorted(Path("/usr/sbin").glob("php-fpm*"))), None)
    if fpm is None:
        raise SystemExit("php-fpm not found: run bash bench/setup.sh (apt-get install php-fpm)")
    port, socket = free_port(), workdir / f"php-fpm-{name}.sock"
    fpm_conf, nginx_conf = workdir / f"php-fpm-{name}.conf", workdir / f"nginx-{name}.conf"
    fpm_conf.write_text(
        FPM_CONF.format(dir=workdir, name=name, socket=socket, children=children, max_requests=max_requests)
    )
    nginx_conf.write_text(
        NGINX_CONF.format(
            dir=workdir,
            name=name,
            port=port,
            root=root,
            socket=socket,
            keepalive=f" keepalive {children};" if keepalive else "",
            keep_conn=" fastcgi_keep_conn on;" if keepalive else "",
        )
    )
    as_root = ["-R"] if os.geteuid() == 0 else []  # php-fpm refuses root without it; php-cgi runs as we do
    label = f"nginx + php-fpm ({'keep-alive' if keepalive else 'default'})"
    return PhpPeer(
        label,
        ["nginx", "-c", str(nginx_conf), "-p", str(workdir)],
        port,
        fpm_command=[str(fpm), "-F", *as_root, "-y", str(fpm_conf)],
        fpm_socket=socket,
        logs=[workdir / f"php-fpm-{name}.log", workdir / f"nginx-{name}.log"],
    )


def gateway_peer(workdir: Path, root: Path, children: int, max_requests: int) -> PhpPeer:
    port, conf = free_port(), workdir / "gateway.toml"
    conf.write_text(
        GATEWAY_CONF.format(
            port=port, run=workdir / "gateway-run", root=root, children=children, max_requests=max_requests
        )
    )
    return PhpPeer("gateway + php-cgi", gateway_command(str(conf), port), port, logs=[workdir / "gateway.log"])


def ratio_line(name: str, peer: Peer, base: Peer, target: float | None) -> str:
    median = statistics.median(peer.rps) / statistics.median(base.rps)
    paired = statistics.median(a / b for a, b in zip(peer.rps, base.rps, strict=True))
    verdict = "" if target is None else f"  (target ≥ {target:.1f}: {'met' if paired >= target else 'NOT met'})"
    return f"{name:<30} {median:5.2f}x  paired {paired:5.2f}x{verdict}"


def print_cpu_split(peers: list[PhpPeer]) -> None:
    """Where the server core's time goes: the front end (gateway or nginx) and PHP, per request (medians)."""
    print("\nCPU per request (median):")
    for peer in peers:
        front, php = statistics.median(peer.front_us), statistics.median(peer.php_us)
        print(f"  {peer.name:<30} front end {front:6.1f} us  PHP {php:6.1f} us  total {front + php:6.1f} us")


def print_logs(peers: list[PhpPeer]) -> None:
    """Warnings and errors the servers wrote (each log is at warning level: any line is worth a look)."""
    for log in (log for peer in peers for log in peer.logs):
        lines = log.read_text(errors="replace").splitlines() if log.exists() else []
        if lines:
            print(f"{log.name}: {len(lines)} line(s), first: {lines[0]}")


def write_site() -> tuple[Path, Path]:
    """A fresh folder for configs, sockets and logs, with the site (hello.php) inside: (folder, site)."""
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-php-"))
    root = workdir / "site"
    root.mkdir()
    for folder in (workdir, root):
        folder.chmod(0o755)  # nginx's worker runs as nobody
    (root / "hello.php").write_text(HELLO)
    (root / "hello.php").chmod(0o644)
    return workdir, root


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--children", type=int, default=4, help="PHP children on every side")
    parser.add_argument("--max-requests", type=int, default=500, help="requests before a PHP child is replaced")
    args = parser.parse_args()
    workdir, root = write_site()
    gateway = gateway_peer(workdir, root, args.children, args.max_requests)
    default = fpm_peer("default", workdir, root, args.children, args.max_requests, keepalive=False)
    keepalive = fpm_peer("keepalive", workdir, root, args.children, args.max_requests, keepalive=True)
    peers = [gateway, default, keepalive]
    print(
        f"PHP hello, {args.children} PHP children each (replaced after {args.max_requests} requests), "
        f"{args.connections} connections, {args.seconds}s x {args.rounds} rounds\n"
        f"whole server side (gateway + php-cgi, or nginx + php-fpm) on core {SERVER_CORE}, wrk on core {LOAD_CORE}",
        flush=True,
    )
    for round_no in range(1, args.rounds + 1):
        for peer in peers:
            measure_round(peer, "/hello.php", args.seconds, args.connections, round_no)
    report(list[Peer](peers), default)
    print_cpu_split(peers)
    print()
    print(ratio_line("gateway / nginx default", gateway, default, 1.0))
    print(ratio_line("gateway / nginx keep-alive", gateway, keepalive, None))
    print(f"configs and logs in {workdir}")
    print_logs(peers)
    for peer in peers:
        for failure in peer.failures:
            print(f"FAILED {peer.name}: {failure}")
    return 1 if any(peer.failures for peer in peers) else 0


if __name__ == "__main__":
    sys.exit(main())
