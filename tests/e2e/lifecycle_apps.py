"""Apps for the limits, lifecycle and CLI tests: each leaves traces a test can read back.

Files are named by environment variables the test sets for the server process:
GATEWAY_TEST_RECORD (one line per request event) and GATEWAY_TEST_MARKERS (a
directory for lifespan marker files).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

Scope = dict[str, Any]
RECORD_ENV = "GATEWAY_TEST_RECORD"
MARKERS_ENV = "GATEWAY_TEST_MARKERS"


def _append(path: str, line: str) -> None:
    with open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")


async def _respond(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def recorder(scope: Scope, receive: Any, send: Any) -> None:
    """Writes "start METHOD /path" when a request reaches it, "done METHOD /path N" once its body is whole.

    A request the core refuses while parsing must leave no line at all (or, when
    the refusal comes from the body, a start line and never a done line).
    """
    if scope["type"] != "http":
        return
    record = os.environ[RECORD_ENV]
    target = f"{scope['method']} {scope['path']}"
    _append(record, f"start {target}")
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            _append(record, f"disconnect {target}")
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    _append(record, f"done {target} {size}")
    await _respond(send, 200, b"recorded\n")


async def with_lifespan(scope: Scope, receive: Any, send: Any) -> None:
    """Startup takes 0.5 s, then sets state and writes a "startup" marker; shutdown writes "shutdown".

    Each HTTP request answers with the state it sees and whether startup had
    finished, and appends its time to the "requests" marker; with ?sleep=N it
    first sleeps N seconds, then appends its time to the "finished" marker; with
    ?mutate it changes its scope["state"], which no other request may see.
    """
    markers = Path(os.environ[MARKERS_ENV])
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await asyncio.sleep(0.5)
                scope["state"]["greeting"] = "hello from startup"
                scope["state"]["pool"] = ["connection-1", "connection-2"]
                (markers / "startup").write_text(repr(time.time()))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                (markers / "shutdown").write_text(repr(time.time()))
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    _append(str(markers / "requests"), repr(time.time()))
    query = scope["query_string"].decode()
    if query == "mutate":
        scope["state"]["greeting"] = "changed by a request"
    if query.startswith("sleep="):
        await asyncio.sleep(float(query[6:]))
        _append(str(markers / "finished"), repr(time.time()))
    seen = {
        "startup_done": (markers / "startup").exists(),
        "shutdown_done": (markers / "shutdown").exists(),
        "state": {key: scope["state"][key] for key in sorted(scope.get("state", {}))},
    }
    await _respond(send, 200, json.dumps(seen).encode(), b"application/json")


async def startup_fails(scope: Scope, receive: Any, send: Any) -> None:
    """Reports lifespan.startup.failed with a message; records any HTTP request it is given."""
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable at db:5432"})
        return
    _append(os.environ[RECORD_ENV], "served a request")
    await _respond(send, 200, b"should never be served\n")


async def startup_raises(scope: Scope, receive: Any, send: Any) -> None:
    """Raises once lifespan startup has begun; records any HTTP request it is given."""
    if scope["type"] == "lifespan":
        await receive()
        raise RuntimeError("cannot open the connection pool")
    _append(os.environ[RECORD_ENV], "served a request")
    await _respond(send, 200, b"should never be served\n")


async def plain(scope: Scope, receive: Any, send: Any) -> None:
    """An HTTP-only app, as many are: anything but an HTTP scope is an error."""
    if scope["type"] != "http":
        raise ValueError(f"this app only speaks HTTP, not {scope['type']!r}")
    await _respond(send, 200, b"plain app\n")


async def answers_first(scope: Scope, receive: Any, send: Any) -> None:
    """Starts its answer (a first piece sent) before it reads the body: an Expect: 100-continue gets no 100."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.body", "body": b"%d\n" % size})
