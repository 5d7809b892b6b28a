"""Starlette WebSocket endpoints for tests/e2e/test_websocket.py, with an HTTP /stats page reporting what they saw.

The gateway serves this module inline (handler = "asgi"), so /stats reads the
same module state the endpoints write; uvicorn serves it as the proxy's
upstream too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

STATS: dict[str, Any] = {"flood_sent": 0, "flood_done": False, "disconnects": [], "scopes": []}
FLOOD_MESSAGE = b"x" * 16384
FLOOD_COUNT = 4096  # 64 MiB if nothing held the app back


async def echo(websocket: WebSocket) -> None:
    """Echoes text and bytes; "close" closes with 4000 "bye"; "headers?" answers with what the app saw."""
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol=offered[0] if offered else None, headers=[(b"x-echo", b"yes")])
    STATS["scopes"].append({k: websocket.scope[k] for k in ("scheme", "path", "root_path", "subprotocols")})
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text == "close":
            await websocket.close(4000, "bye")
            return
        if text == "whoami":
            await websocket.send_json({"user": websocket.scope.get("user"), "client": websocket.scope["client"][0]})
        elif text is not None:
            await websocket.send_text(text)
        else:
            await websocket.send_bytes(message["bytes"])


async def deny(websocket: WebSocket) -> None:
    """Refuses the handshake with its own HTTP response (the websocket.http.response extension)."""
    response = PlainTextResponse("members only\n", status_code=401, headers={"www-authenticate": 'Bearer realm="x"'})
    await websocket.send_denial_response(response)


async def reject(websocket: WebSocket) -> None:
    await websocket.close()  # before accept: the server answers 403


async def flood(websocket: WebSocket) -> None:
    """Sends FLOOD_COUNT messages as fast as send() lets it, counting them (a slow reader's backpressure)."""
    await websocket.accept()
    STATS["flood_sent"], STATS["flood_done"] = 0, False
    try:
        for _ in range(FLOOD_COUNT):
            await websocket.send_bytes(FLOOD_MESSAGE)
            STATS["flood_sent"] += 1
        STATS["flood_done"] = True
        await websocket.close()
    except (OSError, WebSocketDisconnect):
        pass


async def watch(websocket: WebSocket) -> None:
    """Waits for the end and records the websocket.disconnect it got."""
    await websocket.accept()
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            STATS["disconnects"].append({"code": message["code"], "reason": message.get("reason", "")})
            return


async def stats(request: Request) -> JSONResponse:
    return JSONResponse(STATS)


async def hang(websocket: WebSocket) -> None:
    await asyncio.sleep(3600)


app = Starlette(
    routes=[
        WebSocketRoute("/echo", echo),
        WebSocketRoute("/deny", deny),
        WebSocketRoute("/reject", reject),
        WebSocketRoute("/flood", flood),
        WebSocketRoute("/watch", watch),
        WebSocketRoute("/hang", hang),
        Route("/stats", stats),
    ]
)
