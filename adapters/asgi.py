"""The `asgi` handler: an ASGI 3 application named "module:attribute".

Also used by `gateway serve module:app`. "module:factory()" calls a factory.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, cast

from adapters._loading import import_object, prepend_sys_path
from gateway.errors import AppLoadError, StartupError
from gateway.lifespan import Lifespan
from gateway.types import ASGIApp, HandlerContext


def load_app(spec: str, app_dir: str = ".") -> ASGIApp:
    """Import the app; AppLoadError says what failed and how to fix it."""
    prepend_sys_path([app_dir])
    obj = import_object(spec, "an ASGI application", "myproject.asgi:application")
    if not _looks_asgi3(obj):
        raise AppLoadError(
            f"{spec!r} does not take (scope, receive, send) as an async callable: "
            'is it a WSGI app? Serve it with handler = "wsgi"'
        )
    return cast(ASGIApp, obj)


def _looks_asgi3(obj: Any) -> bool:
    """ASGI 3 apps are async callables of three arguments (classes with async __call__ count)."""
    # The bound __call__ of an instance, so `self` is not counted as an argument.
    target = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else obj.__call__
    if inspect.iscoroutinefunction(target):
        try:
            return len(inspect.signature(target).parameters) == 3
        except (TypeError, ValueError):
            return True
    return not inspect.isfunction(target)


@dataclass(frozen=True, slots=True)
class AsgiOptions:
    app: str = field(default="", metadata={"doc": "the application, as 'module:attribute'"})
    factory: bool = field(default=False, metadata={"doc": "call app() to get the application"})
    pythonpath: tuple[str, ...] = field(default=(), metadata={"doc": "folders to import from, relative to the config"})
    lifespan: bool = field(default=True, metadata={"doc": "run the app's lifespan startup and shutdown"})


class AsgiHandler:
    """An in-process ASGI app, mounted at the route's prefix (root_path)."""

    Options = AsgiOptions
    websocket = True  # its app takes websocket scopes (the router refuses handshakes elsewhere)

    def __init__(self, options: AsgiOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context
        self._app: ASGIApp | None = None
        self._lifespan: Lifespan | None = None
        self.state: dict[str, Any] = {}

    def load(self) -> ASGIApp:
        """Import the app (once); AppLoadError names the route."""
        if self._app is None:
            prepend_sys_path([str(self.context.resolve(folder)) for folder in self.options.pythonpath])
            spec = self.options.app + ("()" if self.options.factory and not self.options.app.endswith("()") else "")
            try:
                self._app = load_app(spec, str(self.context.config_dir))
            except AppLoadError as exc:
                raise AppLoadError(f"{self.context.where}: {exc}") from None
            # Routes naming the same app object share its lifespan state.
            self.state = _shared_states.setdefault(id(self._app), self.state)
        return self._app

    def problems(self) -> list[tuple[str, str]]:
        if not self.options.app:
            return [("app", 'missing; name the application, as in app = "myproject.asgi:application"')]
        try:
            self.load()
        except AppLoadError as exc:
            return [("app", str(exc).removeprefix(f"{self.context.where}: "))]
        return []

    def app(self) -> ASGIApp:
        """The app itself; the router gives each request a copy of `state` (its lifespan state)."""
        return self.load()

    async def startup(self) -> None:
        """Run the app's lifespan startup, once per app object however many routes name it."""
        if not self.options.lifespan:
            return
        shared = _shared_lifespans.get(id(self.load()))
        if shared is None:
            shared = _shared_lifespans[id(self.load())] = _SharedLifespan(Lifespan(self.load(), self.state))
            try:
                await shared.lifespan.startup()
            except StartupError as exc:
                del _shared_lifespans[id(self.load())]
                raise StartupError(f"{self.context.where}: {exc}") from None
        shared.users += 1
        self._lifespan = shared.lifespan

    async def aclose(self) -> None:
        if self._lifespan is None:
            return
        shared = _shared_lifespans.get(id(self.load()))
        self._lifespan = None
        if shared is not None:
            shared.users -= 1
            if shared.users == 0:
                del _shared_lifespans[id(self.load())]
                await shared.lifespan.shutdown(30.0)


class _SharedLifespan:
    """One app object's lifespan, shared by every route that names it (one startup, one state)."""

    def __init__(self, lifespan: Lifespan) -> None:
        self.lifespan = lifespan
        self.users = 0


_shared_lifespans: dict[int, _SharedLifespan] = {}
_shared_states: dict[int, dict[str, Any]] = {}
