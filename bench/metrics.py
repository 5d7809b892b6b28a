"""What counting requests for the `metrics` handler costs: the same hello route with and without it.

The configs serve bench.apps:hello on one vhost, after a private route on
`/_gateway/metrics` whose handler is `health` (counting off: the baseline)
or `metrics` (counting on), so both route tables are alike and only the
counting differs; once in one process, once with `workers = 2`
(prometheus-client's multiprocess mode; both workers on the server core).
wrk never asks for the metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench.core_micro import REQUEST, FakeTransport
from bench.harness import PYTHON, ROOT, Peer, free_port, measure, report
from gateway.config.loader import load
from gateway.config.schema import Limits
from gateway.http.protocol import HttpProtocol
from gateway.http.state import ServerState
from gateway.logs import NullAccessLog
from gateway.metrics.requests import instrument
from gateway.routing.router import Router, build_router
from gateway.server import loop_factory

CONFIG = """
[server]
workers = {workers}
runtime_dir = "{runtime}"

[[vhost]]
names = ["bench.test"]
  [[vhost.route]]
  path = "=/_gateway/metrics"
  handler = "{handler}"
  allow = ["127.0.0.1"]
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "bench.apps:hello"
  pythonpath = ["{root}"]
  lifespan = false
"""


def peer(directory: Path, name: str, workers: int, metrics: bool) -> Peer:
    runtime = directory / f"run-{name.replace(' ', '-')}"
    text = CONFIG.format(workers=workers, runtime=runtime, handler=_handler(metrics), root=ROOT)
    path = directory / f"{name.replace(' ', '-')}.toml"
    path.write_text(text)
    port = free_port()
    command = [PYTHON, "-m", "gateway", "serve", str(path), "--listen", f"127.0.0.1:{port}"]
    return Peer(name, [*command, "--access-log", "off", "--log-level", "warning"], port)


def _handler(metrics: bool) -> str:
    return "metrics" if metrics else "health"


def micro(directory: Path, count: int = 20_000, rounds: int = 16) -> None:
    """CPU µs per request through core, router and hello app, counting off and on (no sockets).

    As bench.core_micro, on a fake transport, serving the config above with
    one router; counting on or off is the only difference. CPU time
    (process_time), the order swapped round by round so a busy machine skews
    both sides alike. Then the access-log call alone, where the counting is.
    """
    path = directory / "micro.toml"
    path.write_text(CONFIG.format(workers=1, runtime=directory, handler="metrics", root=ROOT))
    router, _ = build_router(load(str(path)))
    spent: dict[bool, list[float]] = {False: [], True: []}
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        for round_number in range(rounds):
            for counting in (False, True) if round_number % 2 else (True, False):
                spent[counting].append(runner.run(_serve(router, count, counting)))
        calls = [runner.run(_log_call(router, counting)) for counting in (False, True)]
    for name, pick in (("median", statistics.median), ("best", min)):
        off, on = pick(spent[False]), pick(spent[True])
        print(f"  CPU per request ({name} of {rounds} rounds): {off:.2f} us counting off, {on:.2f} us on ", end="")
        print(f"({on - off:+.2f} us, {on / off - 1:+.1%})")
    print(f"  the access-log call alone: {calls[0]:.2f} us counting off, {calls[1]:.2f} us on")


def _state(router: Router, counting: bool) -> ServerState:
    state = ServerState(router, Limits(keepalive_requests=10**9), asyncio.get_running_loop(), NullAccessLog())
    if counting:
        instrument(state, router)
    return state


async def _serve(router: Router, count: int, counting: bool) -> float:
    protocol = HttpProtocol(_state(router, counting))
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    started = time.process_time()
    for _ in range(count):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)
    spent = (time.process_time() - started) / count * 1e6
    assert transport.writes == count
    return spent


async def _log_call(router: Router, counting: bool, count: int = 200_000) -> float:
    log = _state(router, counting).access_log.log
    headers = [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk")]
    cycle: Any = SimpleNamespace(scope={"headers": headers}, status=200, started=time.perf_counter())
    started = time.process_time()
    for _ in range(count):
        log(None, cycle)  # type: ignore[arg-type]
    return (time.process_time() - started) / count * 1e6


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
    one = [peer(directory, "counting off", 1, False), peer(directory, "counting on", 1, True)]
    two = [peer(directory, "2 workers, counting off", 2, False), peer(directory, "2 workers, counting on", 2, True)]
    print(f"metrics counting, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
    measure([*one, *two], "/", args.rounds, args.seconds, args.connections)
    report(one, one[0])
    report(two, two[0])


if __name__ == "__main__":
    sys.exit(main())
