"""StaticHandler served as a plain ASGI app, for tests/e2e/test_static.py.

GATEWAY_TEST_STATIC_ROOT names the folder. Four handlers serve it, each picked
by its mount the way a prefix route would pick it, so one server covers
every option set (until these become [[vhost.route]] handler = "static"):

  /static/...  mount "/static": defaults, max_age = 60
  /open/...    mount "/open": autoindex and follow_symlinks on
  /plain/...   mount "/plain": precompressed off, index = ["home.html", "index.html"]
  anything else  mount "": the root itself at "/", defaults

The lifespan runs every handler's problems() and startup(), and aclose().
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adapters.static import StaticHandler, StaticOptions
from gateway.types import ASGIApp, HandlerContext

ROOT_ENV = "GATEWAY_TEST_STATIC_ROOT"

_SETS: dict[str, dict[str, Any]] = {
    "/static": {"max_age": 60.0},
    "/open": {"autoindex": True, "follow_symlinks": True},
    "/plain": {"precompressed": False, "index": ("home.html", "index.html")},
    "": {},
}
_handlers: list[tuple[str, StaticHandler]] = []
_apps: list[tuple[str, ASGIApp]] = []


def _build() -> None:
    root = os.environ[ROOT_ENV]
    for mount, options in _SETS.items():
        context = HandlerContext(Path.cwd(), f"test route {mount or '/'!r}", mount)
        handler = StaticHandler(StaticOptions(root=root, **options), context)
        _handlers.append((mount, handler))
        _apps.append((mount, handler.app()))


def _pick(path: str) -> ASGIApp:
    for mount, app in _apps:
        if not mount or path == mount or path.startswith(mount + "/"):
            return app
    raise LookupError(path)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await _pick(scope["path"])(scope, receive, send)
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            _build()
            problems = [f"{key}: {text}" for _, handler in _handlers for key, text in handler.problems()]
            if problems:
                await send({"type": "lifespan.startup.failed", "message": "; ".join(problems)})
                return
            for _, handler in _handlers:
                await handler.startup()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            for _, handler in _handlers:
                await handler.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return
