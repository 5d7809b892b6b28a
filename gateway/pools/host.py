"""The pool host: with several workers, one process per generation owns every isolated route's pool and php-cgi.

Workers share the pools rather than each running its own, so `pool.max`
is the whole gateway's and the queue and least-busy choice see every
request (Passenger's core plays this part beside its web server). The
supervisor starts the host first and the generation's workers once it
serves (gateway/supervisor.py); each worker reaches it over one Unix socket
(GATEWAY_POOL_HOST) through RemotePoolHandler, naming the route in its
gateway-scope field. The host restores the scope from that field and
hands the request to the route's AppPool, which sends it on to an app
process with a gateway-scope of its own. It runs each PHP site's php-cgi
too: the workers find its socket by the host's name (_php_pool.owner_tag)
and speak FastCGI to it directly.
"""

from __future__ import annotations

from gateway.config.schema import Config
from gateway.errors import ConfigError
from gateway.lifespan import handlers_lifespan
from gateway.metrics import start_publishing
from gateway.metrics.multiprocess import wanted as metrics_wanted
from gateway.pools.handler import IsolatedHandler
from gateway.pools.scope_header import apply_scope_header
from gateway.registry import handler_class
from gateway.routing.paths import PathMatcher
from gateway.routing.router import handler_context
from gateway.stages.errors import plain_response
from gateway.types import Handler, Receive, Scope, Send


class PoolHost:
    """The ASGI app of a pool host: requests from workers, dispatched by route to their pools."""

    def __init__(
        self, pools: dict[str, IsolatedHandler], php: dict[str, Handler] | None = None, metrics: bool = False
    ) -> None:
        self.pools = pools
        self.php = php or {}
        self.metrics = metrics  # a metrics route in the config: publish the pools' gauges for the workers' scrapes

    def handlers(self) -> list[tuple[str, Handler]]:
        """Every handler this process starts: for lifespan and `gateway status` (server.handler_statuses)."""
        return [*self.pools.items(), *self.php.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            publisher = start_publishing() if self.metrics else None  # for the lifespan's length: the pools' life
            try:
                await handlers_lifespan([handler for _, handler in self.handlers()], receive, send)
            finally:
                if publisher is not None:
                    publisher.cancel()
            return
        if not apply_scope_header(scope):
            await plain_response(send, 403, "403 Forbidden\nThe pool host answers the gateway's workers only.\n")
            return
        handler = self.pools.get(scope.pop("pool", ""))
        if handler is None or handler.pool is None:
            await plain_response(send, 404, "404 Not Found\nNo such pool (a worker of another config?).\n")
            return
        await handler.pool(scope, receive, send)


def pool_host_app(config: Config) -> PoolHost:
    """An IsolatedHandler (with its pool) for each isolated route, a PhpHandler running php-cgi for each
    PHP route (the workers talk FastCGI to it themselves); ConfigError for their problems."""
    pools: dict[str, IsolatedHandler] = {}
    php: dict[str, Handler] = {}
    problems: list[tuple[str, str, str]] = []
    for vhost in config.vhosts:
        for route in vhost.routes:
            if not route.isolation.isolated and route.handler != "php":
                continue
            context = handler_context(config, vhost, route, PathMatcher(route.path).mount)
            handler: Handler
            if route.handler == "php":
                handler = handler_class("php")(route.options, context)
                handler.runs_php = True  # type: ignore[attr-defined]
                php[route.where] = handler
            else:
                handler = pools[route.where] = IsolatedHandler(route, context, config)
            problems += [(vhost.source, f"{route.where}.{key}", text) for key, text in handler.problems()]
            handler.app()
    if problems:
        raise ConfigError(problems)
    return PoolHost(pools, php, metrics_wanted(config))
