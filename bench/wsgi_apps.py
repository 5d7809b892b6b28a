"""The WSGI benchmark's app, a Flask hello world, and the gateway's ASGI app serving it.

`gateway_app` is one WsgiHandler as the whole app (as tests/e2e/wsgi_apps/serve.py
does), its bridge and threads from BENCH_WSGI_BRIDGE and BENCH_WSGI_THREADS.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Response

from adapters.wsgi import WsgiHandler, WsgiOptions
from bench.apps import HELLO
from gateway.types import HandlerContext

flask_app = Flask("bench")


@flask_app.get("/")
def hello() -> Response:
    return Response(HELLO, mimetype="text/plain")


_options = WsgiOptions(
    app="bench.wsgi_apps:flask_app",
    bridge=os.environ.get("BENCH_WSGI_BRIDGE", "gateway"),  # type: ignore[arg-type]
    threads=int(os.environ.get("BENCH_WSGI_THREADS", WsgiOptions().threads)),
)
_handler = WsgiHandler(_options, HandlerContext(Path(__file__).parent, "bench", ""))
_inner = _handler.app()


async def gateway_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "lifespan":
        await _inner(scope, receive, send)
        return
    await receive()
    await _handler.startup()
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await _handler.aclose()
    await send({"type": "lifespan.shutdown.complete"})
