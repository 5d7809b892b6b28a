"""The apps every server in the benchmarks runs: the same bytes out for each."""

from __future__ import annotations

import os
from typing import Any

HELLO = b"Hello, world!"
FILE = os.environ.get("BENCH_FILE", "/tmp/gateway-bench/file.bin")


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": HELLO})


async def pathsend(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]}
    )
    await send({"type": "http.response.pathsend", "path": FILE})
