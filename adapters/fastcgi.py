"""The `fastcgi` handler: scripts under `root` run by a FastCGI server at `address` (php-fpm, for one).

The request path maps under root as nginx's `root` does (the route's prefix
stays in the path); _fastcgi_scripts.py decides which script runs (try_files
semantics, traversal refused), existing static files go to the static
handler, and _fastcgi_exchange.py speaks FastCGI through a bounded pool of
connections (_fastcgi_client.py).

The `php` handler (php.py) is this one with php-cgi spawned and supervised
by the gateway instead of an address.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from adapters._fastcgi_client import BackendError, FastCgiPool, check_address
from adapters._fastcgi_exchange import REQUEST_ID, Overloaded, run_request
from adapters._fastcgi_later import FastCgiLater
from adapters._fastcgi_params import ParamsBuilder
from adapters._fastcgi_scripts import STATIC, Script, ScriptTable
from adapters._request_body import ClientGone, request_body
from adapters._static_files import Reply
from adapters.static import StaticHandler, StaticOptions
from gateway.types import ASGIApp, HandlerContext, Later, Receive, RespondNow, Scope, Send, Whole

logger = logging.getLogger("gateway.adapters.fastcgi")
BAD_GATEWAY = Reply(502, "Bad Gateway: the script's server failed; the reason is in the gateway's error log.")
UNAVAILABLE = Reply(
    503, "Service Unavailable: the script's server is overloaded; try again.", ((b"retry-after", b"1"),)
)


def _scripts_doc(text: str) -> dict[str, Any]:
    return {"doc": text}


@dataclass(frozen=True, slots=True)
class ScriptOptions:
    """The keys every FastCGI route has: where scripts live and which run."""

    root: str = field(default="", metadata=_scripts_doc("the site's folder; a URL path maps under it as nginx's root"))
    index: str = field(
        default="index.php",
        metadata=_scripts_doc("the script for a folder's URL, and the front controller for paths that name no file"),
    )
    front_controller: bool = field(
        default=True, metadata=_scripts_doc("run root's index for paths that name no file (pretty URLs); else 404")
    )
    extensions: tuple[str, ...] = field(
        default=(".php",), metadata=_scripts_doc("only files ending so ever run; every other file is served as is")
    )
    params: dict[str, str] = field(
        default_factory=dict, metadata=_scripts_doc("extra FastCGI params for every request, as nginx's fastcgi_param")
    )


@dataclass(frozen=True, slots=True)
class FastCgiOptions(ScriptOptions):
    address: str = field(
        default="", metadata=_scripts_doc('the FastCGI server: "unix:/run/php/php-fpm.sock" or "127.0.0.1:9000"')
    )
    max_connections: int = field(
        default=8,
        metadata=_scripts_doc(
            "connections at once (more requests wait); with keep_conn, at most the server's children"
        ),
    )
    keep_conn: bool = field(
        default=False, metadata=_scripts_doc("reuse connections (FCGI_KEEP_CONN); php-fpm honours it")
    )
    connect_timeout: float = field(
        default=5.0, metadata={"kind": "duration", "doc": "seconds to keep trying to connect before a 502"}
    )


class FastCgiHandler:
    """Scripts under a root, run by a FastCGI server the gateway reaches at an address."""

    Options: Any = FastCgiOptions

    def __init__(self, options: Any, context: HandlerContext) -> None:
        self.options = options
        self.context = context
        self.pool: FastCgiPool | None = None

    def problems(self) -> list[tuple[str, str]]:
        found = self.script_problems()
        if not self.options.address:
            found.append(("address", 'missing; the FastCGI server, as in address = "unix:/run/php/php-fpm.sock"'))
        else:
            reason = check_address(self.options.address)
            if reason:
                found.append(("address", reason))
        if self.options.max_connections < 1:
            found.append(("max_connections", "must be at least 1"))
        return found

    def script_problems(self) -> list[tuple[str, str]]:
        options = self.options
        found = []
        if not options.root:
            return [("root", 'missing; the folder of the scripts, as in root = "public"')]
        reason = self.context.folder_problem(options.root)
        if reason:
            found.append(("root", reason))
        if not options.index or "/" in options.index or options.index.startswith("."):
            found.append(("index", f'{options.index!r} must be a plain file name, as in index = "index.php"'))
        elif not options.index.endswith(tuple(options.extensions)):
            found.append(("index", f"{options.index!r} does not end in one of extensions {list(options.extensions)}"))
        for extension in options.extensions:
            if not extension.startswith(".") or "/" in extension or len(extension) < 2:
                found.append(("extensions", f'{extension!r} is not a file extension such as ".php"'))
        return found

    def app(self) -> ASGIApp:
        options = self.options
        root = os.path.realpath(self.context.resolve(options.root))
        table = ScriptTable(
            os.fsencode(root),
            tuple(os.fsencode(e) for e in options.extensions),
            os.fsencode(options.index),
            options.front_controller,
        )
        static_context = HandlerContext(self.context.config_dir, self.context.where, "", self.context.runtime_dir)
        static = StaticHandler(StaticOptions(root=root, index=("index.html", "index.htm")), static_context).app()
        return FastCgiApp(self, table, static, root)

    def make_pool(self) -> FastCgiPool:
        options = self.options
        return FastCgiPool(options.address, options.max_connections, options.keep_conn, options.connect_timeout)

    async def startup(self) -> None:
        self.pool = self.make_pool()

    async def aclose(self) -> None:
        if self.pool is not None:
            self.pool.close()


class FastCgiApp:
    """The ASGI app of one FastCGI route."""

    def __init__(self, handler: FastCgiHandler, table: ScriptTable, static: ASGIApp, root: str) -> None:
        self.handler = handler
        self.table = table
        self.static = static
        self.root = root
        self.params = ParamsBuilder(root, handler.options.params)
        self.static_now: RespondNow | None = getattr(static, "gateway_respond_now", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        resolved = self.table.resolve(scope["raw_path"])
        if isinstance(resolved, Script):
            await self.run(resolved, scope, receive, send)
        elif resolved is STATIC:
            await self.static(scope, receive, send)
        elif isinstance(resolved, Reply):
            await resolved.send(send)

    def gateway_respond_now(self, scope: Scope) -> Whole | Later | None:
        """A GET without a body taken without a task (_fastcgi_later.py), or a static file's answer at once.

        Only with kept connections, which the taskless path needs; the core
        asks only for bodyless requests, the ranges stage passes on only GETs
        without Range. None sends the request the usual way.
        """
        pool = self.handler.pool
        if pool is None or not pool.keep_conn or scope["method"] != "GET":
            return None
        resolved = self.table.resolve(scope["raw_path"])
        if resolved.__class__ is Script:
            script: Script = resolved
            params = self.params.build(REQUEST_ID, scope, script.params, 0)
            return FastCgiLater(pool, params, script.filename, self.relay, logger)
        if resolved is STATIC and self.static_now is not None:
            return self.static_now(scope)
        return None

    async def run(self, script: Script, scope: Scope, receive: Receive, send: Send) -> None:
        pool = self.handler.pool
        if pool is None:
            raise RuntimeError("the fastcgi route was not started (its lifespan startup did not run)")
        await self.relay(self._send_request(pool, script, scope, receive, send), script.filename, send)

    async def _send_request(
        self, pool: FastCgiPool, script: Script, scope: Scope, receive: Receive, send: Send
    ) -> None:
        length, body = await request_body(scope, receive)
        params = self.params.build(REQUEST_ID, scope, script.params, length)
        await run_request(pool, params, length, body, send, script.filename)

    @staticmethod
    async def relay(work: Coroutine[Any, Any, None], filename: str, send: Send) -> None:
        """Run a request's exchange; the server's failures become the client's 502 or 503."""
        try:
            await work
        except ClientGone:
            return
        except Overloaded as exc:
            logger.error("%s: %s", filename, exc)
            await UNAVAILABLE.send(send)
        except BackendError as exc:
            logger.error("%s: %s", filename, exc)
            await BAD_GATEWAY.send(send)
