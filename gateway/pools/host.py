"""The pool host: with several workers, one process per generation owns every isolated route's pool.

Workers share the pools rather than each running its own, so `pool.max`
is the whole gateway's and the queue and least-busy choice see every
request (Passenger's core plays this part beside its web server). The
supervisor starts the host first and the generation's workers once it
serves (gateway/supervisor.py); each worker reaches it over one Unix socket
(GATEWAY_POOL_HOST) through RemotePoolHandler, naming the route in its
gateway-scope field. The host restores the scope from that field and
hands the request to the route's AppPool, which sends it on to an app
process with a gateway-scope of its own.
"""

from __future__ import annotations

import logging

from gateway.config.schema import Config
from gateway.errors import ConfigError, StartupError
from gateway.pools.handler import IsolatedHandler
from gateway.pools.scope_header import apply_scope_header
from gateway.routing.paths import PathMatcher
from gateway.stages.errors import plain_response
from gateway.types import Handler, HandlerContext, Receive, Scope, Send

logger = logging.getLogger("gateway.error")


class PoolHost:
    """The ASGI app of a pool host: requests from workers, dispatched by route to their pools."""

    def __init__(self, pools: dict[str, IsolatedHandler]) -> None:
        self.pools = pools

    def handlers(self) -> list[tuple[str, Handler]]:
        """For `gateway status` (server.handler_statuses), as the router lists its handlers."""
        return [(where, handler) for where, handler in self.pools.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if not apply_scope_header(scope):
            await plain_response(send, 403, "403 Forbidden\nThe pool host answers the gateway's workers only.\n")
            return
        handler = self.pools.get(scope.pop("pool", ""))
        if handler is None or handler.pool is None:
            await plain_response(send, 404, "404 Not Found\nNo such pool (a worker of another config?).\n")
            return
        await handler.pool(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        started: list[IsolatedHandler] = []
        try:
            for handler in self.pools.values():
                await handler.startup()
                started.append(handler)
        except (StartupError, OSError, RuntimeError) as exc:
            for handler in reversed(started):
                await handler.aclose()
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        if (await receive())["type"] == "lifespan.shutdown":
            for handler in reversed(started):
                try:
                    await handler.aclose()
                except Exception:
                    logger.exception("error while stopping %s", handler.route.where)
            await send({"type": "lifespan.shutdown.complete"})


def pool_host_app(config: Config) -> PoolHost:
    """An IsolatedHandler (with its pool) for each isolated route; ConfigError for their problems."""
    pools: dict[str, IsolatedHandler] = {}
    problems: list[tuple[str, str, str]] = []
    for vhost in config.vhosts:
        label = f"{vhost.where} ({vhost.names[0] if vhost.names else 'no name'})"
        for route in vhost.routes:
            if not route.isolation.isolated:
                continue
            where = f"{label} {route.where.rpartition('.')[2]} {route.path!r}"
            context = HandlerContext(config.config_dir, where, PathMatcher(route.path).mount, config.runtime_path)
            context.limits = config.limits
            handler = IsolatedHandler(route, context, config)
            problems += [(vhost.source, f"{route.where}.{key}", text) for key, text in handler.problems()]
            handler.app()
            pools[route.where] = handler
    if problems:
        raise ConfigError(problems)
    return PoolHost(pools)
