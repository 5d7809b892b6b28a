"""What `gateway check`, `gateway routes` and `gateway explain` print: plain text for a terminal."""

from __future__ import annotations

import importlib.util
import json
import re
from dataclasses import MISSING, Field, asdict, fields, is_dataclass, replace
from typing import Any

from gateway.config.schema import Config, Limits
from gateway.pools.options import IsolationOptions, PoolOptions
from gateway.registry import HANDLERS, handler_class
from gateway.routing.hosts import normalize_host
from gateway.routing.router import Route, Router, Vhost
from gateway.stages.rewrite import MAX_PASSES, rewrite_scope


def limits_line(limits: Limits) -> str:
    return (
        f"body ≤ {limits.max_body_size} B, head in {limits.header_timeout:g}s, "
        f"body idle {limits.body_timeout:g}s, app answers in {limits.request_timeout:g}s, "
        f"{limits.max_connections} connections"
    )


def route_line(index: int, route: Route) -> str:
    methods = f" [{', '.join(sorted(route.methods))}]" if route.methods else ""
    kind = route.matcher.describe()
    shown = _shown_stages(route)
    stages = f" after {', '.join(shown)}" if shown else ""
    line = f"  route {index} '{route.matcher.spec}' ({kind}){methods} → {route.handler_name}{_options(route)}"
    return line + _isolation(route) + stages


def _isolation(route: Route) -> str:
    handler: Any = route.handler
    if not getattr(handler, "isolated", False):
        return ""
    pool = handler.route.isolation.pool
    return f" in its own processes (pool min {pool.min}, max {pool.max})"


def _options(route: Route) -> str:
    options = getattr(route.handler, "options", None)
    if options is None:
        return ""
    shown = [
        f"{f.name} = {_toml_value(getattr(options, f.name))}"
        for f in fields(options)
        if getattr(options, f.name) != _default(f) and f.name not in ("pythonpath",)
    ]
    return f" ({', '.join(shown)})" if shown else ""


def _default(option: Field[Any]) -> object:
    return option.default if option.default is not MISSING else option.default_factory()  # type: ignore[operator]


def routes_table(config: Config, router: Router) -> list[str]:
    """Every vhost with its names and its routes in the order they are tried."""
    lines = [f"limits in force: {limits_line(config.limits)}"]
    for vhost in router.vhosts:
        default = " (default)" if vhost is router.table.default else ""
        lines.append(f"{vhost.where}{default}: {', '.join(vhost.names)}")
        lines += [route_line(i, route) for i, route in enumerate(vhost.routes)]
    return lines


def explain(config: Config, router: Router, host: str, path: str, method: str) -> list[str]:
    """Which vhost, route and handler a request meets, and why."""
    normalized = normalize_host(host)
    vhost, how = router.table.lookup(normalized)
    lines = [f"host {host!r} → {vhost.where} ({', '.join(vhost.names)}): {how}"]
    if vhost.rewrites:
        scope: dict[str, Any] = {"path": path, "query_string": b""}
        if rewrite_scope(vhost.rewrites, scope):
            query = scope["query_string"].decode("latin-1")
            lines.append(
                f"rewritten by the vhost's rules: {path!r} → {scope['path'] + ('?' + query if query else '')!r}"
            )
            path = scope["path"]
    for _ in range(MAX_PASSES + 1):
        found = _route_for(vhost, path, method, lines)
        if found is None:
            return lines
        index, route = found
        rewrite = route.stages.get("rewrite")
        scope = {"path": path, "query_string": b""}
        if rewrite is None or not rewrite_scope(rewrite.rules, scope):
            _describe_route(config, route, path, lines)
            return lines
        lines.append(f"rewritten by route {index}'s rules: {path!r} → {scope['path']!r}; routed again")
        path = scope["path"]
    lines.append(f"the rewrites loop: the gateway answers 500 after {MAX_PASSES} passes")
    return lines


def _route_for(vhost: Vhost, path: str, method: str, lines: list[str]) -> tuple[int, Route] | None:
    """The route path and method meet, each route tried noted in lines; None (with the answer noted) if none."""
    allowed: set[str] = set()
    for index, route in enumerate(vhost.routes):
        found = route.matcher.match(path)
        if not found:
            lines.append(f"  route {index} '{route.matcher.spec}' ({route.matcher.describe()}): no match")
            continue
        if route.methods is not None and method not in route.methods:
            lines.append(
                f"  route {index} '{route.matcher.spec}': path matches, method {method} not in "
                f"{', '.join(sorted(route.methods))}"
            )
            allowed |= route.methods
            continue
        lines.append(f"  route {index} '{route.matcher.spec}' ({route.matcher.describe()}): matches")
        return index, route
    if allowed:
        lines.append(
            f"only the method failed: the gateway answers 405 Method Not Allowed, Allow: {', '.join(sorted(allowed))}"
        )
    else:
        lines.append("no route matches: the gateway answers 404 Not Found")
    return None


def _describe_route(config: Config, route: Route, path: str, lines: list[str]) -> None:
    lines.append(f"handler: {route.handler_name}{_options(route)}")
    if route.mount:
        lines.append(f"mounted at {route.mount!r}: the app sees root_path={route.mount!r}, path={path!r}")
    if _shown_stages(route):
        lines.append(f"stages: {', '.join(_shown_stages(route))} (outermost first; ranges on every route)")
    lines.append(f"limits: {limits_line(_route_limits(config.limits, route))}")


def _shown_stages(route: Route) -> list[str]:
    """The stages a route's config asked for (ranges, on for every route, would only be noise)."""
    return [name for name in route.stages if name != "ranges"]


def _route_limits(limits: Limits, route: Route) -> Limits:
    """The server's limits with the route's own (its limits stage) in their place."""
    own = route.stages.get("limits")
    if own is None:
        return limits
    return replace(
        limits,
        max_body_size=own.max_body_size,
        body_timeout=own.body_timeout,
        request_timeout=own.request_timeout,
    )


def warnings(router: Router) -> list[str]:
    """Shadowed routes, and Django projects that would share one interpreter."""
    found = [f"{vhost.source}: {vhost.where}.{text}" for vhost in router.vhosts for text in _shadowed(vhost)]
    found += _duplicate_names(router)
    settings = _django_projects(router)
    if len(settings) > 1:
        found.append(
            "two Django projects would share one interpreter (settings are process-global): "
            + "; ".join(f"{where} ({module})" for module, where in settings.items())
            + ' — serve them with isolation = "process" (each in a pool of its own)'
        )
    return found


def _duplicate_names(router: Router) -> list[str]:
    """A name claimed by two vhosts: the earlier one answers, the later one never does for it."""
    seen: dict[str, Vhost] = {}
    found = []
    for vhost in router.vhosts:
        for name in vhost.names:
            first = seen.setdefault(name, vhost)
            if first is not vhost:
                found.append(
                    f"{vhost.source}: {vhost.where}.names: {name!r} is already a name of "
                    f"{first.where} ({first.source}), which answers for it"
                )
    return found


def _shadowed(vhost: Vhost) -> list[str]:
    texts = []
    for later_index, later in enumerate(vhost.routes):
        for index, earlier in enumerate(vhost.routes[:later_index]):
            same_paths = earlier.matcher.spec == later.matcher.spec or earlier.matcher.covers(later.matcher)
            all_methods = earlier.methods is None or (later.methods is not None and later.methods <= earlier.methods)
            if same_paths and all_methods:
                texts.append(
                    f"route[{later_index}]: '{later.matcher.spec}' is never reached: "
                    f"route[{index}] '{earlier.matcher.spec}' matches all its paths"
                    + ("" if earlier.methods is None else " and methods")
                    + " first"
                )
                break
    return texts


def _django_projects(router: Router) -> dict[str, str]:
    """Module files that set DJANGO_SETTINGS_MODULE, by the app they belong to (read, not imported)."""
    projects: dict[str, str] = {}
    for where, handler in router.handlers():
        if getattr(handler, "isolated", False):
            continue  # its app runs in processes of its own
        spec_text = getattr(getattr(handler, "options", None), "app", "")
        module = str(spec_text).partition(":")[0]
        if not module:
            continue
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        try:
            with open(spec.origin, encoding="utf-8") as source:
                text = source.read()
        except OSError:
            continue
        if "DJANGO_SETTINGS_MODULE" in text:
            named = _SETTINGS_NAMED.search(text)  # a project's asgi.py and wsgi.py name the same settings: one
            projects.setdefault(named.group(1) if named else module, where)
    return projects


# os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site.settings"), as django-admin startproject writes it
_SETTINGS_NAMED = re.compile(r"""DJANGO_SETTINGS_MODULE['"]\s*,\s*['"]([\w.]+)['"]""")


def handler_reference() -> list[str]:
    """The handler keys as Markdown, from each handler's Options dataclass (the README's reference)."""
    lines: list[str] = []
    for name in HANDLERS:
        try:
            options = handler_class(name).Options
        except ImportError:
            continue
        lines += ["", f"### `{name}`", ""]
        lines += _options_table(options) if fields(options) else ["No keys of its own."]
    lines += ["", "### Isolation keys of `asgi` and `wsgi` routes", ""]
    lines += _options_table(IsolationOptions)
    lines += ["", '`pool` keys (with `isolation = "process"`):', ""]
    lines += _options_table(PoolOptions)
    return lines


def _options_table(options: type[Any]) -> list[str]:
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for option in fields(options):
        shown = _toml_value(_default(option))
        lines.append(f"| `{option.name}` | `{shown}` | {option.metadata.get('doc', '')} |")
    return lines


def _toml_value(value: object) -> str:
    """A default as it would be written in the config: lists, inline tables for dicts and nested options."""
    if is_dataclass(value) and not isinstance(value, type):
        value = asdict(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {_toml_value(item)}" for key, item in value.items()) + " }" if value else "{}"
    return json.dumps(list(value) if isinstance(value, tuple) else value)


def status_table(document: dict[str, Any]) -> list[str]:
    """`gateway status` for a terminal, like passenger-status: the supervisor, each worker, each PHP pool."""
    supervisor = document.get("supervisor")
    head = f"supervisor pid {supervisor}, generation {document.get('generation')}" if supervisor else "single process"
    lines = [f"{document.get('config')}: {head}"]
    lines.append(
        f"  {'pid':>7}  {'state':<9} {'requests':>9} {'in flight':>9} {'RSS':>8} {'uptime':>8}  started because"
    )
    for worker in document.get("workers", []):
        lines.append(
            f"  {worker.get('pid', '?'):>7}  {worker.get('state', '?'):<9} {worker.get('requests', '-'):>9} "
            f"{worker.get('in_flight', '-'):>9} {_mib(worker.get('rss')):>8} {_duration(worker.get('uptime')):>8}  "
            f"{'pool host; ' if worker.get('role') == 'pools' else ''}{worker.get('started_because', '')}"
        )
        for pool in worker.get("pools", []):
            if pool.get("kind") == "app pool":
                lines += _app_pool_lines(pool)
                continue
            lines.append(
                f"           {pool.get('kind')} pid {pool.get('pid')} {pool.get('state')}: "
                f"{pool.get('children')} children, {pool.get('restarts')} restarts — {pool.get('route')}"
            )
    return lines


def _app_pool_lines(pool: dict[str, Any]) -> list[str]:
    """An isolation pool under its worker: a summary line, then one line per app process."""
    processes = pool.get("processes", [])
    recycled = pool.get("last_recycle") or "none yet"
    lines = [
        f"           {pool.get('pool')}: {len(processes)} of max {pool.get('max')} processes, "
        f"{pool.get('queued', 0)} queued; last recycle: {recycled}"
    ]
    for process in processes:
        lines.append(
            f"    {process.get('pid', '?'):>7}  {process.get('state', '?'):<9} {process.get('requests', '-'):>9} "
            f"{process.get('in_flight', '-'):>9} {_mib(process.get('rss')):>8} {_duration(process.get('uptime')):>8}  "
            f"{process.get('recycle_reason', '')}"
        )
    return lines


def _mib(value: object) -> str:
    return f"{value / 1048576:.0f} MiB" if isinstance(value, int | float) else "-"


def _duration(value: object) -> str:
    if not isinstance(value, int | float):
        return "-"
    seconds = int(value)
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )
