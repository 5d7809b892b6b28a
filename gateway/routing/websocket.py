"""WebSocket handshakes in the router: the gateway's refusals as denial responses, and routes that cannot accept.

A handshake is routed like any request (vhost, path, methods as a GET) and
meets the same request stages: access, auth and limits refuse it with their
usual answers (403, 401 with WWW-Authenticate, 429 with Retry-After). Those
answers are plain http.response messages marked GATEWAY_MADE; for a
websocket scope denial_send() turns them into the ASGI
websocket.http.response extension the core advertises, so the client gets
the very same HTTP response instead of a bare 403.

Only handlers that declare `websocket = True` (asgi, proxy) get websocket
scopes; for any other route the router answers the handshake with a 400 that
names the handler, before the handler's app could misread the scope.
"""

from __future__ import annotations

from gateway.stages.errors import GATEWAY_MADE, plain_response
from gateway.types import ASGIApp, Message, Receive, Scope, Send


def denial_send(send: Send) -> Send:
    """send for a websocket scope: the gateway's own HTTP refusals go out as the denial extension's messages."""
    denying = False

    async def send_denial(message: Message) -> None:
        nonlocal denying
        kind = message["type"]
        if kind == "http.response.start" and message.get(GATEWAY_MADE):
            denying = True
            await send({**message, "type": "websocket.http.response.start"})
        elif kind == "http.response.body" and denying:
            await send({**message, "type": "websocket.http.response.body"})
        else:
            await send(message)

    return send_denial


def websocket_refusal(handler_name: str) -> ASGIApp:
    """The app a route whose handler speaks no WebSocket gives to handshakes: 400, saying why."""
    text = (
        f"400 Bad Request\nThis address is served by the '{handler_name}' handler, which does not speak "
        "WebSocket; route WebSocket paths to an asgi or proxy handler.\n"
    )

    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        await plain_response(send, 400, text)

    return refuse
