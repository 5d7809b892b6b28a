"""The `wsgi` handler: a WSGI (PEP 3333) application, run on worker threads.

`bridge = "gateway"` (the default) is our lean bridge, adapters/_wsgi_bridge.py
(its rules are at its top; the environ's are in _wsgi_environ.py). It is
measured ~3.5× faster than a2wsgi, whose per-message thread hand-off costs
about 230 µs a request; `bridge = "a2wsgi"` serves the same app through
a2wsgi instead.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from adapters._loading import import_object, prepend_sys_path
from adapters._wsgi_a2wsgi import a2wsgi_app
from adapters._wsgi_bridge import Bridge, WSGIApp
from gateway.errors import AppLoadError
from gateway.types import ASGIApp, HandlerContext

STOP_GRACE = 10.0  # seconds aclose() waits for busy workers


@dataclass(frozen=True, slots=True)
class WsgiOptions:
    app: str = field(default="", metadata={"doc": "the WSGI application, as 'module:attribute' or 'module:factory()'"})
    pythonpath: tuple[str, ...] = field(default=(), metadata={"doc": "folders to import from, relative to the config"})
    bridge: Literal["gateway", "a2wsgi"] = field(
        default="gateway", metadata={"doc": '"gateway" (the lean bridge, fastest) or "a2wsgi"'}
    )
    threads: int = field(default=8, metadata={"doc": "worker threads running the app: requests it serves at once"})


class WsgiHandler:
    """A WSGI app in this process, mounted at the route's prefix (SCRIPT_NAME)."""

    Options = WsgiOptions

    def __init__(self, options: WsgiOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context
        self._wsgi: WSGIApp | None = None
        self._bridge: Bridge | None = None
        self._a2wsgi: Any = None

    def load(self) -> WSGIApp:
        """Import the app (once); AppLoadError names the route."""
        if self._wsgi is None:
            folders = [str(self.context.resolve(f)) for f in self.options.pythonpath]
            prepend_sys_path([*folders, str(self.context.config_dir)])
            try:
                self._wsgi = load_wsgi_app(self.options.app)
            except AppLoadError as exc:
                raise AppLoadError(f"{self.context.where}: {exc}") from None
        return self._wsgi

    def problems(self) -> list[tuple[str, str]]:
        if not self.options.app:
            return [("app", 'missing; name the application, as in app = "mysite.wsgi:application"')]
        if self.options.threads < 1:
            return [("threads", f"expected at least 1 worker thread, got {self.options.threads}")]
        try:
            self.load()
        except AppLoadError as exc:
            return [("app", str(exc).removeprefix(f"{self.context.where}: "))]
        return []

    def app(self) -> ASGIApp:
        wsgi = self.load()
        if self.options.bridge == "a2wsgi":
            if self._a2wsgi is None:
                self._a2wsgi = a2wsgi_app(wsgi, self.options.threads)
            return cast(ASGIApp, self._a2wsgi)
        if self._bridge is None:
            self._bridge = Bridge(wsgi, self.options.threads, self.context.where)
        return self._bridge

    async def startup(self) -> None:
        if self._bridge is not None:
            self._bridge.start()

    async def aclose(self) -> None:
        if self._bridge is not None:
            await self._bridge.aclose(STOP_GRACE)
        if self._a2wsgi is not None:
            self._a2wsgi.executor.shutdown(wait=False, cancel_futures=True)


def load_wsgi_app(spec: str) -> WSGIApp:
    """Import "module:attribute" (a trailing "()" calls a factory); AppLoadError says what failed."""
    obj = import_object(spec, "a WSGI application", "mysite.wsgi:application")
    call = obj if inspect.isfunction(obj) or inspect.ismethod(obj) else type(obj).__call__
    if inspect.iscoroutinefunction(call):
        raise AppLoadError(f'{spec!r} is an async callable, an ASGI app: serve it with handler = "asgi"')
    return cast(WSGIApp, obj)
