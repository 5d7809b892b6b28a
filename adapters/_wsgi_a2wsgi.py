"""`bridge = "a2wsgi"`: a2wsgi's WSGIMiddleware, made to let go of a client that has gone.

Its environ also gets what ours has and a2wsgi's lacks: wsgi.input_terminated
(its input ends where the body ends, so Werkzeug reads a chunked body rather
than taking it as empty) and REMOTE_USER / AUTH_TYPE from the auth stage.

Why: a2wsgi hands each message from the app's thread to a sender task
through a bounded queue. When the core's send() raises for a client that
has gone (ClientDisconnect, as ASGI spec 2.4 allows), that task dies, the
queue fills, and the app's thread blocks on it for ever: `threads` aborted
downloads made the route answer nothing again. Here send() drops what
comes after the client has left, and the app's iterable ends at its next
chunk (its close() still called once, by a2wsgi), as with our own bridge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from adapters._meta_variables import add_user_variables
from adapters._wsgi_bridge import WSGIApp
from gateway.types import ASGIApp, Message, Receive, Scope, Send

GONE = "gateway.client_gone"  # scope key: a one-item list, True once send() met the client gone


def a2wsgi_app(wsgi: WSGIApp, threads: int) -> ASGIApp:
    """The ASGI app serving wsgi through a2wsgi on `threads` threads."""
    from a2wsgi import WSGIMiddleware  # only when a config asks for it

    middleware = cast(ASGIApp, WSGIMiddleware(_stopping(wsgi), workers=threads))  # type: ignore[arg-type]

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        gone = scope[GONE] = [False]

        async def send_or_drop(message: Message) -> None:
            if gone[0]:
                return
            try:
                await send(message)
            except OSError:
                gone[0] = True

        await middleware(scope, receive, send_or_drop)

    serve.executor = middleware.executor  # type: ignore[attr-defined]  # the handler's aclose() shuts it down
    return serve


def _stopping(wsgi: WSGIApp) -> WSGIApp:
    def call(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        scope = environ["asgi.scope"]
        environ["wsgi.input_terminated"] = True
        add_user_variables(environ, scope)
        return _UntilGone(wsgi(environ, start_response), scope.get(GONE, [False]))

    return call


class _UntilGone:
    """The app's iterable, ending once the client has gone; close() passes on to the app's."""

    def __init__(self, result: Iterable[bytes], gone: list[bool]) -> None:
        self.result = result
        self.gone = gone

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.result:
            if self.gone[0]:
                return
            yield chunk

    def close(self) -> None:
        close = getattr(self.result, "close", None)
        if close is not None:
            close()
