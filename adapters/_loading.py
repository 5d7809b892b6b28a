"""Importing an application named "module:attribute" (or "module:factory()"), for asgi and wsgi."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from gateway.errors import AppLoadError


def import_object(spec: str, kind: str, example: str) -> Any:
    """The callable named by spec; AppLoadError says what failed and how to fix it.

    kind ("an ASGI application") and example ("myproject.asgi:application") shape the messages.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppLoadError(f"{spec!r}: expected 'module:attribute', as in {example!r}")
    obj: Any = _import(module_name, spec)
    for part in attribute.removesuffix("()").split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AppLoadError(f"{spec!r}: module {module_name!r} has no attribute {part!r}") from None
    if attribute.endswith("()"):
        try:
            obj = obj()
        except (Exception, SystemExit) as exc:
            raise AppLoadError(f"{spec!r}: the factory raised {type(exc).__name__}: {exc}") from exc
    if not callable(obj):
        raise AppLoadError(f"{spec!r} is a {type(obj).__name__}, not {kind}")
    return obj


def prepend_sys_path(folders: list[str]) -> None:
    """Put folders at the front of sys.path, in the order given, skipping those already there."""
    for folder in reversed(folders):
        if folder not in sys.path:
            sys.path.insert(0, folder)


def _import(module_name: str, spec: str) -> Any:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise AppLoadError(
                f"{spec!r}: no module named {module_name!r} (looked in {sys.path[0]!r} and the installed packages)"
            ) from None
        raise AppLoadError(f"{spec!r}: importing {module_name!r} failed: {exc}") from exc
    except Exception as exc:
        raise AppLoadError(f"{spec!r}: importing {module_name!r} raised {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:  # sys.exit() or argparse at import time: the gateway's exit, not the module's
        raise AppLoadError(
            f"{spec!r}: importing {module_name!r} called sys.exit({exc.code!r}) (argparse does on bad arguments); "
            "a module an app is loaded from must not run its command line on import (if __name__ == '__main__')"
        ) from None
