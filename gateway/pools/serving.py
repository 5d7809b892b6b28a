"""Inside an app process: the one route's app, served by the gateway's own core on a Unix socket.

`gateway serve CONFIG --isolated-route "vhost[0].route[1]" --listen unix:…`
is how a pool starts one (app_process.py). The process loads the same config,
builds that route's handler as an inline one and serves nothing else: no
router, no stages, no access log (the front ran the stages and logs the
request), limits no tighter than the front's. Each request's scope is set
from the front's gateway-scope field (scope_header.py).
"""

from __future__ import annotations

from dataclasses import replace

from gateway.config.schema import Config, RouteConfig, VhostConfig
from gateway.errors import ConfigError
from gateway.lifespan import handlers_lifespan
from gateway.pools.scope_header import apply_scope_header
from gateway.registry import handler_class
from gateway.routing.paths import PathMatcher
from gateway.routing.router import handler_context
from gateway.stages.errors import plain_response
from gateway.types import ASGIApp, Handler, Receive, Scope, Send

EXTRA_HEADERS = 8  # gateway-scope and a Host the front may add


def find_route(config: Config, where: str) -> tuple[VhostConfig, RouteConfig]:
    """The route at a config position ("vhost[0].route[1]"), with its vhost."""
    for vhost in config.vhosts:
        for route in vhost.routes:
            if route.where == where:
                return vhost, route
    raise ConfigError([(config.source, where, "no such route in the config (was it changed since the pool started?)")])


def app_process_config(config: Config, widest_body: int) -> Config:
    """The app process's settings: the front enforces limits, so ours only need to let its requests through."""
    limits = config.limits
    limits = replace(
        limits,
        max_body_size=max(limits.max_body_size, widest_body),
        max_header_count=limits.max_header_count + EXTRA_HEADERS,
        max_header_size=max(limits.max_header_size, 64 * 1024),  # gateway-scope can be long (root_path, user)
    )
    server = replace(config.server, access_log="off", workers=1)
    return replace(config, limits=limits, server=server)


class IsolatedApp:
    """The ASGI app an app process serves: one handler, its lifespan, scopes from the front."""

    names_its_failures = True  # handlers_lifespan's messages say which route failed (as the Router's)

    def __init__(self, handler: Handler, app: ASGIApp) -> None:
        self.handler = handler
        self.app = app
        self.state: dict[str, object] | None = getattr(handler, "state", None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await handlers_lifespan([self.handler], receive, send)
            return
        if not apply_scope_header(scope):
            await plain_response(send, 403, "403 Forbidden\nAn app process answers the gateway's workers only.\n")
            return
        if self.state is not None:
            scope["state"] = self.state.copy()
        await self.app(scope, receive, send)


def isolated_app(config: Config, where: str) -> IsolatedApp:
    """The app of the route at `where`, built as an inline handler; ConfigError for its problems."""
    vhost, route = find_route(config, where)
    context = handler_context(config, vhost, route, PathMatcher(route.path).mount)
    handler = handler_class(route.handler)(route.options, context)
    found = handler.problems()
    if found:
        raise ConfigError([(config.source, f"{where}.{key}" if key else where, text) for key, text in found])
    return IsolatedApp(handler, handler.app())
