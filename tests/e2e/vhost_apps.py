"""Apps served behind virtual hosts in tests/e2e/test_vhosts.py.

`alpha` and `beta` are Starlette apps: their answers show the URLs Starlette
builds (request.url_for), the scope's root_path and path, and the state their
own lifespan set, so a test sees whether mounting and lifespan are right.
The `site_*` apps are plain ASGI and only say which site answered.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

LIFESPAN_RUNS: dict[str, int] = {}


def _lifespan(name: str) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        LIFESPAN_RUNS[name] = LIFESPAN_RUNS.get(name, 0) + 1
        yield {"started_by": name, "runs": LIFESPAN_RUNS[name], "pid": os.getpid()}

    return lifespan


async def _where(request: Request) -> JSONResponse:
    return JSONResponse(
        {
            "site": request.app.state.name,
            "url_for": str(request.url_for("where")),
            "item_url": str(request.url_for("item", item_id=7)),
            "root_path": request.scope.get("root_path", ""),
            "path": request.scope["path"],
            "url": str(request.url),
            "started_by": getattr(request.state, "started_by", None),
            "runs": getattr(request.state, "runs", None),
        }
    )


async def _item(request: Request) -> JSONResponse:
    return JSONResponse({"item": request.path_params["item_id"], "url": str(request.url)})


async def _home(request: Request) -> JSONResponse:
    return JSONResponse({"site": request.app.state.name, "home": True, "path": request.scope["path"]})


def _starlette(name: str) -> Starlette:
    app = Starlette(
        routes=[
            Route("/", _home, name="home"),
            Route("/where", _where, name="where"),
            Mount("/v1", routes=[Route("/items/{item_id:int}", _item, name="item")]),
        ],
        lifespan=_lifespan(name),
    )
    app.state.name = name
    return app


alpha = _starlette("alpha")
beta = _starlette("beta")


def _site(name: str) -> Any:
    async def site(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        described = {
            "site": name,
            "host": headers.get(b"host", b"").decode("latin-1"),
            "method": scope["method"],
            "path": scope["path"],
            "root_path": scope["root_path"],
            "http_version": scope["http_version"],
        }
        body = json.dumps(described).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})

    return site


site_default = _site("default")
site_wild = _site("wild")
site_deep = _site("deep")
site_shop = _site("shop")
site_cart = _site("cart")
site_form_get = _site("form-get")
site_form_post = _site("form-post")
site_included_one = _site("included-one")
site_included_two = _site("included-two")
site_env = _site("env")


def _as_function(app: Starlette) -> Any:
    """The app behind a plain async function: the asgi handler refuses class instances for now."""

    async def entry(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await app(scope, receive, send)

    return entry


alpha_entry = _as_function(alpha)
beta_entry = _as_function(beta)
