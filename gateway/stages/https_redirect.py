"""The https_redirect stage: a plain-HTTP request to this vhost or route gets 308 to its https:// URL.

`https_redirect = true` (the TLS listener's port) or a port number; a route's
`https_redirect = false` serves plain HTTP on a vhost that redirects (an ACME
http-01 challenge path, say). Outermost of the stages: credentials and
cookies should not be asked for or set over plain HTTP first. 308 keeps the
method and body (RFC 9110 §15.4.9), so a POST is repeated as a POST. A
plain ws:// handshake gets 403 naming the wss:// URL (clients do not follow
a redirect on an upgrade, and letting it through would defeat the point).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.stages import Report
from gateway.stages.errors import plain_response
from gateway.tls.redirect import https_url
from gateway.types import ASGIApp, HandlerContext, Receive, Scope, Send

KEYS = ("https_redirect",)
ORDER = 5


@dataclass(frozen=True, slots=True)
class Options:
    port: int | None  # None: the TLS listener's port (else 443)


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> Options | None:
    value = values["https_redirect"]
    if value is False:
        return None
    if value is True:
        return Options(None)
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 65535:
        return Options(value)
    report("https_redirect", f"expected true, false or the HTTPS port (1-65535), got {value!r}")
    return None


def wrap(options: Options, app: ASGIApp) -> ASGIApp:
    port = options.port

    async def redirect_plain_http(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope["scheme"] in ("https", "wss"):
            await app(scope, receive, send)
            return
        target = https_url(scope, port)
        if kind == "websocket":  # a client does not follow a redirect on an upgrade: say where to go instead
            target = "wss://" + target.removeprefix("https://")
            await plain_response(send, 403, f"403 Forbidden\nThis site takes WebSockets over TLS only: {target}\n")
            return
        text = f"308 Permanent Redirect\nThis site is served over HTTPS: {target}\n"
        await plain_response(send, 308, text, [(b"location", target.encode("ascii"))])

    return redirect_plain_http
