"""One WsgiHandler served as the whole app, configured from the environment.

GATEWAY_TEST_WSGI_APP ("module:attribute"), GATEWAY_TEST_WSGI_BRIDGE
("gateway" or "a2wsgi"), GATEWAY_TEST_WSGI_MOUNT (a prefix such as "/app",
as a route's path would give) and GATEWAY_TEST_WSGI_THREADS. The lifespan
scope runs the handler's startup() and aclose(), as the router does.

    run_gateway("tests.e2e.wsgi_apps.serve:app", env={...})
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adapters.wsgi import WsgiHandler, WsgiOptions
from gateway.types import HandlerContext

ROOT = Path(__file__).resolve().parents[3]
MOUNT = os.environ.get("GATEWAY_TEST_WSGI_MOUNT", "").rstrip("/")
options = WsgiOptions(
    app=os.environ.get("GATEWAY_TEST_WSGI_APP", "tests.e2e.wsgi_apps.apps:environ_app"),
    bridge=os.environ.get("GATEWAY_TEST_WSGI_BRIDGE", "gateway"),  # type: ignore[arg-type]
    threads=int(os.environ.get("GATEWAY_TEST_WSGI_THREADS", "8")),
)
handler = WsgiHandler(options, HandlerContext(ROOT, f"serve.py {options.app}", MOUNT))
problems = handler.problems()
if problems:
    raise RuntimeError("; ".join(f"{key}: {text}" for key, text in problems))
inner = handler.app()


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    path = scope["path"]
    if MOUNT and not (path == MOUNT or path.startswith(MOUNT + "/")):
        await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"outside the mount\n"})
        return
    scope["root_path"] = scope.get("root_path", "") + MOUNT
    await inner(scope, receive, send)


async def _lifespan(receive: Any, send: Any) -> None:
    await receive()
    try:
        await handler.startup()
    except Exception as exc:
        await send({"type": "lifespan.startup.failed", "message": str(exc)})
        return
    await send({"type": "lifespan.startup.complete"})
    await receive()
    await handler.aclose()
    await send({"type": "lifespan.shutdown.complete"})
