"""[[vhost]] and [[vhost.route]] tables: common keys here, handler keys by each handler's Options."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from gateway.config.schema import RouteConfig, VhostConfig
from gateway.config.validate import Problems, build, did_you_mean, log_path_problem
from gateway.pools.options import ISOLATION_KEYS, IsolationOptions
from gateway.registry import HANDLERS, handler_class
from gateway.routing.hosts import check_name
from gateway.routing.paths import parse_path
from gateway.stages import stage_keys
from gateway.tls.settings import parse_tls

VHOST_KEYS = ("names", "default", "access_log", "errors", "intercept_errors", "tls", "route")
ROUTE_KEYS = ("path", "methods", "handler")
ISOLATABLE = ("asgi", "wsgi")  # handlers whose app can run in a pool of its own (gateway/pools/)
METHOD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def parse_vhosts(tables: Any, start: int, source: str, problems: Problems, config_dir: Path) -> list[VhostConfig]:
    """VhostConfigs from a [[vhost]] array; numbering continues from `start` across includes."""
    if not isinstance(tables, list):
        problems.add("vhost", "expected [[vhost]] tables (an array of tables)")
        return []
    vhosts = []
    for offset, table in enumerate(tables):
        where = f"vhost[{start + offset}]"
        if not isinstance(table, dict):
            problems.add(where, "expected a table")
            continue
        vhosts.append(_parse_vhost(table, where, source, problems, config_dir))
    return vhosts


def _parse_vhost(table: dict[str, Any], where: str, source: str, problems: Problems, config_dir: Path) -> VhostConfig:
    stage_of = stage_keys()
    stages = {key: value for key, value in table.items() if key in stage_of}
    for key in table:
        if key in stage_of:
            continue
        if key in ISOLATION_KEYS:
            problems.add(f"{where}.{key}", f"'{key}' belongs on a route (an asgi or wsgi [[vhost.route]])")
        elif key not in VHOST_KEYS:
            known = [*VHOST_KEYS, *stage_of]
            problems.add(f"{where}.{key}", f"unknown key{did_you_mean(key, known)}; a vhost has {', '.join(known)}")
    names = table.get("names", [])
    if isinstance(names, str):
        names = [names]
    if "names" not in table:
        problems.add(f"{where}.names", 'missing; a vhost needs names = ["example.com"]')
        names = []
    elif not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        problems.add(f"{where}.names", 'expected a list of host names, as in ["example.com", "*.example.com"]')
        names = []
    for index, name in enumerate(names):
        reason = check_name(name)
        if reason:
            problems.add(f"{where}.names[{index}]", reason)
    default = table.get("default", False)
    if not isinstance(default, bool):
        problems.add(f"{where}.default", f"expected true or false, got {default!r}")
        default = False
    routes = table.get("route", [])
    if not isinstance(routes, list) or not routes:
        problems.add(f"{where}.route", "a vhost needs at least one [[vhost.route]]")
        routes = []
    parsed = [_parse_route(r, f"{where}.route[{i}]", problems) for i, r in enumerate(routes)]
    access_log = table.get("access_log")
    if access_log is not None and not isinstance(access_log, str):
        problems.add(f"{where}.access_log", f'expected a path, "-" or "off", got {access_log!r}')
        access_log = None
    elif access_log is not None and (reason := log_path_problem(access_log, config_dir)):
        problems.add(f"{where}.access_log", reason)
    kept = tuple(r for r in parsed if r is not None)
    errors, intercept = table.get("errors"), table.get("intercept_errors")
    tls = parse_tls(table["tls"], f"{where}.tls", source, problems) if "tls" in table else None
    return VhostConfig(tuple(names), default, kept, where, source, access_log, stages, errors, intercept, tls)


def _parse_route(table: Any, where: str, problems: Problems) -> RouteConfig | None:
    if not isinstance(table, dict):
        problems.add(where, "expected a table")
        return None
    handler = table.get("handler")
    if not isinstance(handler, str) or handler not in HANDLERS:
        hint = did_you_mean(str(handler), HANDLERS) if isinstance(handler, str) else ""
        shown = f"unknown handler {handler!r}{hint}" if handler is not None else "missing"
        problems.add(f"{where}.handler", f"{shown}; handlers: {', '.join(HANDLERS)}")
        return None
    path = table.get("path", "/")
    try:
        if not isinstance(path, str):
            raise ValueError(f'expected a string such as "/api/", "=/exact" or "~^/regex$", got {path!r}')
        parse_path(path)
    except ValueError as exc:
        problems.add(f"{where}.path", str(exc))
    try:
        options_class = handler_class(handler).Options
    except ImportError as exc:
        problems.add(
            f"{where}.handler",
            f"the {handler!r} handler cannot be loaded ({exc}); "
            "is a package it needs missing? (pip install -e '.[dev]')",
        )
        return None
    own: dict[str, Any] = {}
    option_names = {f.name for f in dataclasses.fields(options_class)}
    stage_of = stage_keys()
    stages: dict[str, Any] = {}
    isolation_table: dict[str, Any] = {}
    for key, value in table.items():
        if key in ROUTE_KEYS:
            continue
        if key in stage_of and key not in option_names:
            stages[key] = value
            continue
        if key in ISOLATION_KEYS and handler in ISOLATABLE:
            isolation_table[key] = value
            continue
        if key == "isolation":
            problems.add(
                f"{where}.isolation",
                f"isolation is for asgi and wsgi routes, not {handler!r} (php, cgi and proxy already "
                "run their work in other processes; static, redirect and health run none)",
            )
            continue
        own[key] = value
    isolatable = ISOLATION_KEYS if handler in ISOLATABLE else ()
    known = [*ROUTE_KEYS, *stage_of, *isolatable, *(f.name for f in dataclasses.fields(options_class))]
    for key in own:
        if key not in known:
            problems.add(
                f"{where}.{key}",
                f"unknown key for handler '{handler}'{did_you_mean(key, known)}; it takes {', '.join(known)}",
            )
    options = build(options_class, {k: v for k, v in own.items() if k in known}, where, problems)
    methods = _methods(table.get("methods"), where, problems)
    isolation = _isolation(isolation_table, where, problems)
    return RouteConfig(str(path), handler, methods, options, where, stages, isolation)


def _isolation(table: dict[str, Any], where: str, problems: Problems) -> IsolationOptions:
    """The route's isolation keys; pool, python, env and cwd mean nothing without isolation = "process"."""
    isolation = build(IsolationOptions, table, where, problems)
    if not isolation.isolated:
        for key in table:
            if key != "isolation":
                problems.add(f"{where}.{key}", f"'{key}' applies to a process pool: add isolation = \"process\"")
    pool = isolation.pool
    if pool.max < 1:
        problems.add(f"{where}.pool.max", "must be 1 or more")
    elif pool.min > pool.max:
        problems.add(f"{where}.pool.min", f"{pool.min} is more than pool.max ({pool.max})")
    if not pool.start_timeout:
        problems.add(f"{where}.pool.start_timeout", "must be more than 0")
    return isolation


def _methods(value: Any, where: str, problems: Problems) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if value == []:  # () means every method: an empty list would open the route it meant to close
        problems.add(f"{where}.methods", "an empty list would take no method; leave methods out to take them all")
        return ()
    if isinstance(value, list):
        for index, method in enumerate(value):
            if isinstance(method, str) and method and method != method.upper() and set(method.upper()) <= METHOD_CHARS:
                problems.add(f"{where}.methods[{index}]", f"{method!r} must be upper case (write {method.upper()!r})")
                return ()
    if not isinstance(value, list) or not all(isinstance(m, str) and m and set(m) <= METHOD_CHARS for m in value):
        problems.add(f"{where}.methods", f'expected a list of upper-case methods, as in ["GET", "POST"], got {value!r}')
        return ()
    return tuple(value)
