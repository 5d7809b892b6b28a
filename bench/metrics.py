"""What counting requests for the `metrics` handler costs: the same hello route with and without it.

Three configs serve bench.apps:hello on one vhost: without a metrics route
(counting off: the baseline), with one (one process), and with one under
`workers = 2` against the same config without it (prometheus-client's
multiprocess mode; both workers on the server core). wrk never asks for the
metrics, so what shows is the per-request counting alone.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.harness import PYTHON, ROOT, Peer, free_port, measure, report
from gateway.config.loader import load
from gateway.config.schema import Limits
from gateway.http.state import ServerState
from gateway.logs import NullAccessLog
from gateway.metrics.requests import instrument
from gateway.routing.router import build_router

CONFIG = """
[server]
workers = {workers}
runtime_dir = "{runtime}"

[[vhost]]
names = ["bench.test"]
{metrics}
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "bench.apps:hello"
  pythonpath = ["{root}"]
  lifespan = false
"""
METRICS_ROUTE = """
  [[vhost.route]]
  path = "=/_gateway/metrics"
  handler = "metrics"
  allow = ["127.0.0.1"]
"""


def peer(directory: Path, name: str, workers: int, metrics: bool) -> Peer:
    runtime = directory / f"run-{name.replace(' ', '-')}"
    text = CONFIG.format(workers=workers, runtime=runtime, metrics=METRICS_ROUTE if metrics else "", root=ROOT)
    path = directory / f"{name.replace(' ', '-')}.toml"
    path.write_text(text)
    port = free_port()
    command = [PYTHON, "-m", "gateway", "serve", str(path), "--listen", f"127.0.0.1:{port}"]
    return Peer(name, [*command, "--access-log", "off", "--log-level", "warning"], port)


def micro(directory: Path, count: int = 200_000) -> None:
    """µs per request of the access-log call alone, with and without counting (no sockets, no app)."""
    headers = [(b"host", b"bench.test"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
    cycle: Any = SimpleNamespace(scope={"headers": headers}, status=200, started=time.perf_counter())
    loop = asyncio.new_event_loop()
    for metrics in (False, True):
        path = directory / f"micro-{metrics}.toml"
        route = METRICS_ROUTE if metrics else ""
        path.write_text(CONFIG.format(workers=1, runtime=directory, metrics=route, root=ROOT))
        router, _ = build_router(load(str(path)))
        state = ServerState(router, Limits(), loop, NullAccessLog())
        instrument(state, router)
        log = state.access_log.log
        started = time.perf_counter()
        for _ in range(count):
            log(None, cycle)  # type: ignore[arg-type]
        spent = (time.perf_counter() - started) / count * 1e6
        print(f"  access-log call, {'with' if metrics else 'without'} a metrics route: {spent:.2f} us/request")
    loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--micro", action="store_true", help="only the per-call cost, without sockets")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    micro(directory)
    if args.micro:
        return
    one = [peer(directory, "no metrics route", 1, False), peer(directory, "metrics route", 1, True)]
    two = [peer(directory, "2 workers, no metrics", 2, False), peer(directory, "2 workers, metrics", 2, True)]
    print(f"metrics counting, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
    measure([*one, *two], "/", args.rounds, args.seconds, args.connections)
    report(one, one[0])
    report(two, two[0])


if __name__ == "__main__":
    sys.exit(main())
