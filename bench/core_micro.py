"""The core's own cost per request, without sockets: a fake transport, the hello app.

What is left once syscalls and the load generator are out of the picture:
parser callbacks, the cycle, the task, the response head. Prints µs/request.

`--static` serves a 1 KiB file through a config with one static route (the
core's answer-at-once path, gateway/http/whole.py) instead. Timings swing on
a shared machine; instruction counts do not: `valgrind --tool=callgrind
python -m bench.core_micro --static --count N --runs 1` for two counts N,
the difference over the difference in N, gives instructions per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.apps import hello
from bench.static import CONFIG as STATIC_CONFIG
from gateway.config.loader import load
from gateway.config.schema import Limits
from gateway.http.protocol import HttpProtocol
from gateway.http.state import ServerState
from gateway.logs import NullAccessLog
from gateway.routing.router import build_router
from gateway.server import loop_factory
from gateway.types import ASGIApp

REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"


class FakeTransport:
    """Counts writes; everything else is a no-op."""

    def __init__(self) -> None:
        self.writes = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8080), "peername": ("127.0.0.1", 5555)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.writes += 1

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def close(self) -> None: ...
    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None: ...


STATIC_REQUEST = b"GET /small.bin HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\n\r\n"


def static_router(folder: Path) -> ASGIApp:
    """A router for bench.static's config (one static route), over a folder with a 1 KiB file."""
    (folder / "small.bin").write_bytes(os.urandom(1024))
    (folder / "gateway.toml").write_text(STATIC_CONFIG.format(root=folder))
    router, problems = build_router(load(folder / "gateway.toml"))
    assert not problems, problems
    return router


async def measure(app: ASGIApp, request: bytes, count: int) -> float:
    loop = asyncio.get_running_loop()
    state = ServerState(app, Limits(keepalive_requests=10**9), loop, NullAccessLog())
    protocol = HttpProtocol(state)
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(request)  # the first request fills caches (the static file's, the request line's)
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    for _ in range(count):
        protocol.data_received(request)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    assert transport.writes == count + 1
    return elapsed / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000, help="requests per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--static", action="store_true", help="a 1 KiB static file instead of the hello app")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        app, request = (static_router(Path(folder)), STATIC_REQUEST) if args.static else (hello, REQUEST)
        for _ in range(args.runs):
            with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
                print(f"{runner.run(measure(app, request, args.count)):.2f} us/request")


if __name__ == "__main__":
    main()
