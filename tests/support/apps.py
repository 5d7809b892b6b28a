"""ASGI apps the end-to-end tests serve. Each shows something a user would notice."""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

Scope = dict[str, Any]


async def _respond(send: Any, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    """Answers with JSON describing the scope and the whole request body."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        more = message.get("more_body", False)
    described = {
        "type": scope["type"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "root_path": scope["root_path"],
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "client": scope["client"],
        "server": scope["server"],
        "state": sorted(scope.get("state", {})),
        "extensions": sorted(scope.get("extensions", {})),
        "asgi": scope["asgi"],
        "body": body.decode("latin-1"),
        "body_length": len(body),
        "pid": os.getpid(),
    }
    await _respond(send, 200, json.dumps(described).encode(), b"application/json")


async def stream(scope: Scope, receive: Any, send: Any) -> None:
    """/stream?n=N&size=S&delay=D: N body messages of S bytes, D seconds apart, no Content-Length."""
    if scope["type"] != "http":
        return
    params = dict(p.split("=") for p in scope["query_string"].decode().split("&") if "=" in p)
    count, size, delay = int(params.get("n", 3)), int(params.get("size", 10)), float(params.get("delay", 0))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for index in range(count):
        await send({"type": "http.response.body", "body": bytes([65 + index % 26]) * size, "more_body": True})
        if delay:
            await asyncio.sleep(delay)
    await send({"type": "http.response.body", "body": b""})


async def raises(scope: Scope, receive: Any, send: Any) -> None:
    """/before raises before the response starts; /after raises after the first body chunk."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")
    if scope["path"] == "/before":
        raise RuntimeError("boom before start")
    await _respond(send, 200, b"fine")


async def slow(scope: Scope, receive: Any, send: Any) -> None:
    """Sleeps ?s= seconds before answering; records a disconnect if the client leaves first."""
    if scope["type"] != "http":
        return
    seconds = float(scope["query_string"].decode().partition("=")[2] or 1)
    await asyncio.sleep(seconds)
    await _respond(send, 200, b"slept")


async def sendfile(scope: Scope, receive: Any, send: Any) -> None:
    """Sends the file named by ?path= with http.response.pathsend."""
    if scope["type"] != "http":
        return
    path = scope["query_string"].decode().partition("=")[2]
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]}
    )
    await send({"type": "http.response.pathsend", "path": path})


THIS_FILE = os.path.abspath(__file__)


async def status_file(scope: Scope, receive: Any, send: Any) -> None:
    """Answers ?code=N with this file sent by http.response.pathsend (as Starlette's FileResponse does)."""
    if scope["type"] != "http":
        return
    code = int(scope["query_string"].decode().partition("=")[2] or 404)
    await send({"type": "http.response.start", "status": code, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.pathsend", "path": THIS_FILE})


async def status(scope: Scope, receive: Any, send: Any) -> None:
    """Answers ?code=N (default 500) with the app's own body: for error documents."""
    if scope["type"] != "http":
        return
    code = int(scope["query_string"].decode().partition("=")[2] or 500)
    await _respond(send, code, f"the app's own {code} page".encode())


OWN_FIELDS = [(b"date", b"Sat, 01 Jan 2000 00:00:00 GMT"), (b"server", b"my-app/1.0"), (b"x-app", b"yes")]


async def own_fields(scope: Scope, receive: Any, send: Any) -> None:
    """Sends Date and Server of its own (the core writes both)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": OWN_FIELDS})
    await send({"type": "http.response.body", "body": b"own fields"})


def own_fields_wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """own_fields as a WSGI app."""
    start_response("200 OK", [(name.decode(), value.decode()) for name, value in OWN_FIELDS])
    return [b"own fields"]


async def fails_while_marked(scope: Scope, receive: Any, send: Any) -> None:
    """echo, whose lifespan startup fails while the file $GATEWAY_TEST_MARK exists (a reload's new workers)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if os.path.exists(os.environ.get("GATEWAY_TEST_MARK", "")):  # noqa: ASYNC240 - once per start
                    await send({"type": "lifespan.startup.failed", "message": "marked to fail"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await echo(scope, receive, send)


async def stubborn(scope: Scope, receive: Any, send: Any) -> None:
    """Sleeps 10 s and ignores being cancelled once (an app that catches CancelledError and goes on)."""
    if scope["type"] != "http":
        return
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        await asyncio.sleep(10)
    await _respond(send, 200, b"late")


async def returns_when_cancelled(scope: Scope, receive: Any, send: Any) -> None:
    """Sleeps 10 s; cancelled, it returns without answering (an app that catches CancelledError and gives up)."""
    if scope["type"] != "http":
        return
    try:
        await asyncio.sleep(10)
    except asyncio.CancelledError:
        return
    await _respond(send, 200, b"late")
