"""The one table of handler names → "module:Class", imported only when a config uses them."""

from __future__ import annotations

import importlib
from typing import cast

from gateway.types import Handler

HANDLERS: dict[str, str] = {
    "asgi": "adapters.asgi:AsgiHandler",
    "wsgi": "adapters.wsgi:WsgiHandler",
    "static": "adapters.static:StaticHandler",
    "redirect": "adapters.redirect:RedirectHandler",
    "php": "adapters.php:PhpHandler",
    "fastcgi": "adapters.fastcgi:FastCgiHandler",
    "cgi": "adapters.cgi:CgiHandler",
    "proxy": "adapters.proxy:ProxyHandler",
    "health": "adapters.health:HealthHandler",
    "metrics": "adapters.metrics:MetricsHandler",
}


def handler_class(name: str) -> type[Handler]:
    """The handler class registered under name (KeyError if none is)."""
    module_name, _, class_name = HANDLERS[name].partition(":")
    return cast(type[Handler], getattr(importlib.import_module(module_name), class_name))
