"""The static handler as a plain ASGI app for bench/static.py: BENCH_STATIC_ROOT served at "/"."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adapters.static import StaticHandler, StaticOptions
from gateway.types import HandlerContext

_handler = StaticHandler(
    StaticOptions(root=os.environ.get("BENCH_STATIC_ROOT", "/tmp/gateway-bench")),
    HandlerContext(Path.cwd(), "bench", ""),
)
_files = _handler.app()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await _files(scope, receive, send)
