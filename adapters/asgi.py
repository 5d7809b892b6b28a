"""The `asgi` handler: an ASGI 3 application named "module:attribute".

Also used by `gateway serve module:app`. "module:factory()" calls a factory.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any, cast

from gateway.errors import AppLoadError
from gateway.types import ASGIApp


def load_app(spec: str, app_dir: str = ".") -> ASGIApp:
    """Import the app; AppLoadError says what failed and how to fix it."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppLoadError(f"{spec!r}: expected 'module:attribute', as in 'myproject.asgi:application'")
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module = _import(module_name, spec)
    call = attribute.endswith("()")
    obj: Any = module
    for part in attribute.removesuffix("()").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"{spec!r}: module {module_name!r} has no attribute {part!r}") from None
    if call:
        obj = obj()
    if not callable(obj):
        raise AppLoadError(f"{spec!r} is a {type(obj).__name__}, not an ASGI application")
    if not _looks_asgi3(obj):
        raise AppLoadError(
            f"{spec!r} does not take (scope, receive, send) as an async callable: "
            'is it a WSGI app? Serve it with handler = "wsgi" (coming with routes)'
        )
    return cast(ASGIApp, obj)


def _import(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppLoadError(
                f"{spec!r}: no module named {module_name!r} (looked in {sys.path[0]!r} and the installed packages)"
            ) from None
        raise AppLoadError(f"{spec!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise AppLoadError(f"{spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}") from exc


def _looks_asgi3(obj: Any) -> bool:
    """ASGI 3 apps are async callables of three arguments (classes with async __call__ count)."""
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
    if inspect.iscoroutinefunction(target):
        try:
            return len(inspect.signature(target).parameters) == 3
        except (TypeError, ValueError):
            return True
    return not inspect.isfunction(target)
