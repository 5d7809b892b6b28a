"""ASGI apps for the pool tests: one whose process dies, one that names its interpreter, one that cannot load."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any


async def crash_once(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The first request (per ?marker= file) kills its process before answering; later ones answer."""
    if scope["type"] != "http":
        return
    marker = scope["query_string"].decode().partition("=")[2]
    crashed = _crash_unless_marked(marker)
    body = json.dumps({"pid": os.getpid(), "crashed": crashed}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _crash_unless_marked(marker: str) -> int:
    """The pid that crashed, read from the marker file; without the file: write it and die."""
    path = Path(marker)
    if not path.exists():
        path.write_text(str(os.getpid()))
        os._exit(1)
    return int(path.read_text())


async def interpreter(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Which Python runs this process (the pool's `python`), and in which folder (its `cwd`)."""
    if scope["type"] != "http":
        return
    facts = {"executable": sys.executable, "prefix": sys.prefix, "pid": os.getpid(), "cwd": os.getcwd()}
    body = json.dumps(facts).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


if os.environ.get("POOL_TEST_FAIL_IMPORT"):
    raise ImportError("this app refuses to load (POOL_TEST_FAIL_IMPORT is set)")


if os.environ.get("POOL_TEST_SLOW_IMPORT"):
    import time

    time.sleep(float(os.environ["POOL_TEST_SLOW_IMPORT"]))  # an app whose start outlasts pool.start_timeout

if os.environ.get("POOL_TEST_SLOW_IF") and Path(os.environ["POOL_TEST_SLOW_IF"]).exists():
    import time

    time.sleep(30)  # a replacement that takes its time, for the health handler's test
