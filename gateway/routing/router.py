"""The router: Host → vhost → first matching route → that route's handler app.

Built once from the config (build_router); per request it does one cached
dict lookup for the Host header and walks the vhost's routes in config
order, as Appweb does. It is itself an ASGI app, the one the core serves,
and it runs every handler's startup/aclose from its lifespan.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config.schema import Config, RouteConfig, VhostConfig
from gateway.lifespan import STARTUP_ERRORS, close_handlers, start_handlers
from gateway.logs import VHOST_LOG_KEY, AccessLog, NullAccessLog
from gateway.pools.handler import IsolatedHandler, RemotePoolHandler
from gateway.pools.options import POOL_HOST_ENV
from gateway.registry import handler_class
from gateway.routing.hosts import HostTable, normalize_host
from gateway.routing.paths import PathMatcher
from gateway.routing.websocket import denial_send, websocket_refusal
from gateway.stages import available
from gateway.stages import limits as limits_stage
from gateway.stages.access import forwarded_rewriter
from gateway.stages.errors import ErrorPages, parse_error_pages, plain_response
from gateway.stages.rewrite import Rule, parse_rules, rewrite_scope
from gateway.types import (
    PASSES_KEY,
    TIMEOUT_PAGE_KEY,
    ASGIApp,
    Handler,
    HandlerContext,
    Later,
    Receive,
    RespondNow,
    Scope,
    Send,
    Whole,
)

HOST_CACHE_SIZE = 4096
PYTHON_HANDLERS = frozenset({"asgi", "wsgi"})


@dataclass(slots=True)
class Route:
    """A compiled route: how it matches and the app that answers."""

    matcher: PathMatcher
    methods: frozenset[str] | None
    handler_name: str
    handler: Handler
    app: ASGIApp
    where: str
    mount: str = ""
    state: dict[str, Any] | None = None  # the handler's lifespan state, copied into each scope
    context: HandlerContext | None = None
    stages: dict[str, Any] = field(default_factory=dict)  # the stages in force, outermost first, with their options
    websocket_app: ASGIApp | None = None  # what answers a websocket scope: app, or a refusal (handler speaks none)
    respond_now: RespondNow | None = None  # the app's synchronous answers, when no stage wraps it


@dataclass(slots=True)
class Vhost:
    names: tuple[str, ...]
    routes: list[Route]
    where: str
    default: bool = False
    source: str = ""
    access_log_spec: str | None = None
    access_log: AccessLog | NullAccessLog | None = None  # opened at startup
    rewrites: tuple[Rule, ...] = ()  # the vhost's rewrite rules, applied before its routes are matched
    error_pages: ErrorPages | None = None
    answers_now: bool = False  # a route may answer at once (FastRouter): no rewrites or error pages in the way


class Router:
    """The ASGI app for a config with [[vhost]] tables."""

    names_its_failures = True  # its lifespan.startup.failed messages say which route failed, and how

    def __init__(
        self,
        vhosts: list[Vhost],
        table: HostTable[Vhost],
        log_format: str = "combined",
        forwarded: Callable[[Scope], None] | None = None,
    ) -> None:
        self.vhosts = vhosts
        self.log_format = log_format
        self.table = table
        self.cache: dict[bytes, Vhost] = {}
        self.forwarded = forwarded  # trusted proxies' X-Forwarded-For/Forwarded, applied before anything else

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
                return
            send = denial_send(send)  # a websocket handshake: the gateway's refusals become denial responses
        if self.forwarded is not None:
            self.forwarded(scope)
        vhost = self.vhost_for(scope["headers"])
        if vhost.access_log is not None:
            scope[VHOST_LOG_KEY] = vhost.access_log
        # A route's rewrite routes its request here again (PASSES_KEY): the vhost's rewrites and error
        # documents applied already, on its first pass (nginx's `rewrite ... last` in a location).
        if vhost.rewrites and PASSES_KEY not in scope:
            rewrite_scope(vhost.rewrites, scope)
        if vhost.error_pages is not None and PASSES_KEY not in scope:
            send = vhost.error_pages.send_for(scope, send, self)
            if 504 in vhost.error_pages.pages:
                scope[TIMEOUT_PAGE_KEY] = True
        path = scope["path"]
        allowed: set[str] | None = None
        for route in vhost.routes:
            found = route.matcher.match(path)
            if not found:
                continue
            if route.methods is not None and scope.get("method", "GET") not in route.methods:
                allowed = (allowed or set()) | route.methods
                continue
            if route.mount:
                scope["root_path"] += route.mount
            if route.state is not None:
                scope["state"] = route.state.copy()
            if found is not True:
                scope["gateway.route_match"] = found
            app = route.app if kind == "http" else route.websocket_app or route.app
            if vhost.error_pages is None:
                await app(scope, receive, send)
            else:
                await vhost.error_pages.run(app, scope, receive, send)
            return
        if allowed is not None:
            await plain_response(
                send,
                405,
                f"405 Method Not Allowed\n{scope.get('method', 'GET')} is not allowed here.\n",
                [(b"allow", ", ".join(sorted(allowed)).encode())],
            )
        else:
            await plain_response(send, 404, "404 Not Found\nNothing is served at this path.\n")

    def vhost_for(self, headers: list[tuple[bytes, bytes]]) -> Vhost:
        """The vhost for a request's Host header (cached by its raw bytes)."""
        raw = b""
        for name, value in headers:
            if name == b"host":
                raw = value
                break
        vhost = self.cache.get(raw)
        if vhost is None:
            vhost = self.table.lookup(normalize_host(raw))[0]
            if len(self.cache) < HOST_CACHE_SIZE:
                self.cache[raw] = vhost
        return vhost

    @property
    def vhost_access_logs(self) -> bool:
        """Whether a vhost has an access_log of its own (opened at lifespan startup)."""
        return any(vhost.access_log is not None for vhost in self.vhosts)

    def handlers(self) -> list[tuple[str, Handler]]:
        return [(route.where, route.handler) for vhost in self.vhosts for route in vhost.routes]

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        try:
            for vhost in self.vhosts:
                if vhost.access_log_spec is not None:
                    key = f"{vhost.where}.access_log"
                    vhost.access_log = AccessLog.open(vhost.access_log_spec, self.log_format, key)
            started = await start_handlers(handler for _, handler in self.handlers())
        except STARTUP_ERRORS as exc:
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        if message["type"] == "lifespan.shutdown":
            await close_handlers(started)
            for vhost in self.vhosts:
                if vhost.access_log is not None:
                    vhost.access_log.close()
            await send({"type": "lifespan.shutdown.complete"})


class FastRouter(Router):
    """A Router with routes that can answer at once: only such configs pay for trying them first."""

    def gateway_respond_now(self, scope: Scope) -> Whole | Later | None:
        """The matched route's synchronous answer (gateway/http/whole.py), when nothing in between acts.

        Only for a plain route of a vhost without rewrites or error pages (with
        no trusted proxies to apply, build_router makes no FastRouter): there
        the scope reaches the handler as is, with the route's mount in its
        root_path as __call__ would add it. None otherwise, leaving the scope
        untouched for __call__.
        """
        headers = scope["headers"]
        raw = b""
        for name, value in headers:  # vhost_for's lookup, inlined: this runs for every request
            if name == b"host":
                raw = value
                break
        vhost = self.cache.get(raw) or self.vhost_for(headers)
        if not vhost.answers_now:
            return None
        path = scope["path"]
        for route in vhost.routes:
            matcher = route.matcher
            if not matcher.everything:
                found = matcher.match(path)
                if not found:
                    continue
                if found is not True:
                    return None
            respond_now = route.respond_now
            if respond_now is None:
                return None
            if route.methods is not None and scope["method"] not in route.methods:
                return None
            mount = route.mount
            if mount:  # as __call__ does; undone below for a None, which leaves the scope as it was
                root_path = scope["root_path"]
                scope["root_path"] = root_path + mount
            answer = respond_now(scope)
            if answer is None:
                if mount:
                    scope["root_path"] = root_path
                return None
            if vhost.access_log is not None:
                scope[VHOST_LOG_KEY] = vhost.access_log
            return answer
        return None


def build_router(config: Config) -> tuple[Router, list[tuple[str, str, str]]]:
    """The router for a config, and every problem its handlers report (roots, imports)."""
    problems: list[tuple[str, str, str]] = []
    # The core lets the widest body any route accepts through; then every route holds to its own.
    hold_body = widest_body(config) > config.limits.max_body_size
    vhosts = [_build_vhost(config, vhost, hold_body, problems) for vhost in config.vhosts]
    default = next((v for v in vhosts if v.default), vhosts[0])
    table: HostTable[Vhost] = HostTable(default)
    for vhost in vhosts:
        for name in vhost.names:
            table.add(name, vhost)  # the first vhost keeps a name; report.warnings() says so
    forwarded = forwarded_rewriter(config.server.trusted_proxies)
    for vhost in vhosts:
        vhost.answers_now = (
            not vhost.rewrites and vhost.error_pages is None and any(r.respond_now for r in vhost.routes)
        )
    fast = forwarded is None and any(vhost.answers_now for vhost in vhosts)
    router = (FastRouter if fast else Router)(vhosts, table, config.server.access_log_format, forwarded)
    for vhost in vhosts:
        for route in vhost.routes:
            if route.context is not None:
                route.context.dispatch = router
    return router, problems


def _build_vhost(config: Config, vhost: VhostConfig, hold_body: bool, problems: list[tuple[str, str, str]]) -> Vhost:
    routes = [_build_route(config, vhost, route, hold_body, problems) for route in vhost.routes]
    log = vhost.access_log
    if log is not None and log not in ("-", "off"):
        log = str(config.config_dir / log)  # relative to the config file, like every path in it
    report = _vhost_reporter(vhost, problems)
    rewrites = parse_rules(vhost.stages["rewrite"], report) if "rewrite" in vhost.stages else ()
    pages = parse_error_pages(vhost.errors, vhost.intercept_errors, report)
    return Vhost(
        vhost.names, routes, vhost.where, vhost.default, vhost.source, log, rewrites=rewrites, error_pages=pages
    )


def _vhost_reporter(vhost: VhostConfig, problems: list[tuple[str, str, str]]) -> Callable[[str, str], None]:
    """A stage's report(key_path, message) for keys written on the vhost itself."""

    def report(key_path: str, message: str) -> None:
        problems.append((vhost.source, f"{vhost.where}.{key_path}", message))

    return report


def handler_context(config: Config, vhost: VhostConfig, route: RouteConfig, mount: str) -> HandlerContext:
    """Where a route's handler sits: its label for messages, its mount, the config's folders and limits.

    The router, a pool host and an app process each build a route's handler with one.
    """
    label = f"{vhost.where} ({vhost.names[0] if vhost.names else 'no name'})"
    where = f"{label} {route.where.rpartition('.')[2]} {route.path!r}"
    context = HandlerContext(config.config_dir, where, mount, config.runtime_path)
    context.limits = config.limits
    return context


def _build_route(
    config: Config,
    vhost: VhostConfig,
    route: RouteConfig,
    hold_body: bool,
    problems: list[tuple[str, str, str]],
) -> Route:
    matcher = PathMatcher(route.path)
    context = handler_context(config, vhost, route, matcher.mount)
    where = context.where
    handler: Handler
    if route.isolation.isolated and os.environ.get(POOL_HOST_ENV):
        handler = RemotePoolHandler(route, context, config, os.environ[POOL_HOST_ENV])
    elif route.isolation.isolated:
        handler = IsolatedHandler(route, context, config)
    else:
        handler = handler_class(route.handler)(route.options, context)
    found = handler.problems()
    problems += [(vhost.source, f"{route.where}.{key}" if key else route.where, text) for key, text in found]
    methods = frozenset(route.methods) | ({"HEAD"} if "GET" in route.methods else set()) if route.methods else None
    app = handler.app() if not found else _broken_app
    mount = matcher.mount if route.handler in PYTHON_HANDLERS else ""
    state = getattr(handler, "state", None)
    app, stages = _with_stages(app, vhost, route, context, hold_body, problems)
    websocket_app = app if getattr(handler, "websocket", False) else websocket_refusal(route.handler)
    respond_now = getattr(app, "gateway_respond_now", None) if state is None else None
    return Route(
        matcher, methods, route.handler, handler, app, where, mount, state, context, stages, websocket_app, respond_now
    )


def widest_body(config: Config) -> int:
    """The largest max_body_size of the server, a vhost or a route: what the core must let through."""
    tables = [vhost.stages for vhost in config.vhosts] + [r.stages for v in config.vhosts for r in v.routes]
    return limits_stage.widest_body(tables, config.limits.max_body_size)


def _with_stages(
    app: ASGIApp,
    vhost: VhostConfig,
    route: RouteConfig,
    context: HandlerContext,
    hold_body: bool,
    problems: list[tuple[str, str, str]],
) -> tuple[ASGIApp, dict[str, Any]]:
    """The handler's app inside the route's stages (a route's key replaces its vhost's), and their names."""
    inherited = {key: value for key, value in vhost.stages.items() if key != "rewrite"}  # the router runs those
    written = {**inherited, **route.stages}
    if hold_body:
        written.setdefault("limits", {})  # the core lets the widest body through: each route holds to its own
    if route.handler != "static":
        written.setdefault("ranges", True)  # Appweb's "ranges work for every handler" (static does its own)
    if not written:
        return app, {}
    layers = []
    for name, module in available():
        values = {key: written[key] for key in module.KEYS if key in written}
        if not values:
            continue

        def report(key_path: str, message: str) -> None:
            top = key_path.split(".", 1)[0].split("[", 1)[0]
            owner = route.where if top in route.stages else vhost.where
            problem = (vhost.source, f"{owner}.{key_path}", message)
            if problem not in problems:  # a vhost's key is checked once per route that inherits it
                problems.append(problem)

        options = module.parse(values, context, report)
        if options is not None:
            layers.append((name, module, options))
    for _, module, options in reversed(layers):
        app = module.wrap(options, app)
    return app, {name: options for name, _, options in layers}


async def _broken_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Stands in for a handler that reported problems (never served: the problems stop startup)."""
    await plain_response(send, 500, "500 Internal Server Error\nThis route is misconfigured.\n")
