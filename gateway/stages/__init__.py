"""Stages: small ASGI wrappers between the router and a route's handler, composed once at config load.

Each stage is one module here with the same four names:

    KEYS: tuple[str, ...]        the route/vhost config keys it reads, e.g. ("auth",)
    ORDER: int                   its place in the chain, outermost first (see CHAIN below)
    def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> Options | None
        values holds this stage's keys as configured for one route (a route's
        value replaces its vhost's); report(key_path, message) records a
        config problem (key_path like "auth.users"); None means "not active here".
    def wrap(options: Options, app: ASGIApp) -> ASGIApp
        the app with the stage in front; called once per route at load.

A stage never looks at the config per request: parse() compiles everything
(regexes, files, tables) once; wrap() closes over the result.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType

Report = Callable[[str, str], None]

# Outermost first: over which scheme (https_redirect), the response headers (around every answer below,
# refusals included), who may ask (access), who is asking (auth), how much (limits), where it goes
# (rewrite), then the output filters around the handler's response (compress, ranges).
CHAIN = ("https_redirect", "headers", "access", "auth", "limits", "rewrite", "compress", "ranges")


def available() -> list[tuple[str, ModuleType]]:
    """The stage modules of CHAIN that exist in this release, in chain order (imported once, at load)."""
    found = []
    for name in CHAIN:
        try:
            module = importlib.import_module(f"gateway.stages.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gateway.stages.{name}":
                raise  # the stage exists but a package it needs is missing: say so
            continue
        found.append((name, module))
    return found


def stage_keys() -> dict[str, str]:
    """Config key → the stage that reads it."""
    return {key: name for name, module in available() for key in module.KEYS}
