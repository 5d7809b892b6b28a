"""The core's own cost per request, without sockets: a fake transport, the hello app.

What is left once syscalls and the load generator are out of the picture:
parser callbacks, the cycle, the task, the response head. Prints µs/request.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from bench.apps import hello
from gateway.config.schema import Limits
from gateway.http.protocol import HttpProtocol
from gateway.http.state import ServerState
from gateway.logs import NullAccessLog
from gateway.server import loop_factory

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


async def measure(count: int) -> float:
    loop = asyncio.get_running_loop()
    state = ServerState(hello, Limits(keepalive_requests=10**9), loop, NullAccessLog())
    protocol = HttpProtocol(state)
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    started = time.perf_counter()
    for _ in range(count):
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)
    elapsed = time.perf_counter() - started
    assert transport.writes == count
    return elapsed / count * 1e6


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    for _ in range(3):
        with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
            print(f"{runner.run(measure(count)):.2f} us/request")


if __name__ == "__main__":
    main()
