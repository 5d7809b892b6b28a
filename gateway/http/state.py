"""What every connection of one worker shares: the app, limits, counters, logs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gateway.config.schema import Limits
from gateway.http.responses import CommonHeaders
from gateway.http.ws_settings import WebSocketSettings
from gateway.logs import flush_access_logs
from gateway.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.http.protocol import HttpProtocol
    from gateway.http.websocket import WebSocketConnection
    from gateway.logs import RequestLog

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
EXTENSIONS: dict[str, dict[str, Any]] = {"http.response.pathsend": {}}


async def unavailable_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers connections beyond max_connections or max_connections_per_client."""
    body = b"503 Service Unavailable\nThe server has too many connections; try again shortly.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"1")],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ServerState:
    """Per-worker state shared by every HttpProtocol."""

    def __init__(
        self,
        app: ASGIApp,
        limits: Limits,
        loop: asyncio.AbstractEventLoop,
        access_log: RequestLog,
        server_header: str = "gateway",
        root_path: str = "",
    ) -> None:
        self.app = app
        self.unavailable_app: ASGIApp = unavailable_app
        self.limits = limits
        self.loop = loop
        self.uses_uvloop = type(loop).__module__.startswith("uvloop")
        self.access_log = access_log
        self.logs_requests = True  # False once startup found no access log anywhere (Server): no call per request
        self.common = CommonHeaders(server_header)
        self.root_path = root_path
        self.lifespan_state: dict[str, Any] = {}
        self.connections: set[HttpProtocol | WebSocketConnection] = set()  # an upgraded connection moves over
        self.closing: set[HttpProtocol | WebSocketConnection] = set()  # lingering: open, no longer counted
        self.per_client: dict[str, int] = {}
        # A trusted proxy (an ingress, a load balancer) carries many clients: not held to the per-client limit.
        self.trusted_peer: Callable[[str], bool] | None = None
        self.requests = 0  # served by this worker, for max_requests
        self.websocket = WebSocketSettings()  # the [server] ws_* keys (Server sets them)

    def scope_template(self, transport: asyncio.BaseTransport) -> dict[str, Any]:
        """The parts of a scope that are the same for every request on a connection."""
        sockname = transport.get_extra_info("sockname")
        peername = transport.get_extra_info("peername")
        if isinstance(sockname, tuple):
            server: tuple[str, int | None] | None = (sockname[0], sockname[1])
        else:
            server = (sockname, None) if sockname else None
        client = (peername[0], peername[1]) if isinstance(peername, tuple) and peername else None
        scheme = "https" if transport.get_extra_info("sslcontext") is not None else "http"
        return {
            "type": "http",
            "asgi": ASGI_VERSION,
            "scheme": scheme,
            "server": server,
            "client": client,
            "root_path": self.root_path,
            "extensions": EXTENSIONS,
        }

    def admit(self, protocol: HttpProtocol) -> bool:
        """Count a new connection; False when it is beyond a connection limit."""
        self.connections.add(protocol)
        ip = protocol.client_ip
        count = self.per_client.get(ip, 0) + 1
        self.per_client[ip] = count
        limits = self.limits
        if len(self.connections) - len(self.closing) > limits.max_connections:
            return False
        if not ip or count <= limits.max_connections_per_client:
            return True
        return self.trusted_peer is not None and self.trusted_peer(ip)

    def closing_now(self, protocol: HttpProtocol) -> None:
        """A connection past its last response, lingering until the client closes: it no longer counts.

        The client has its answer and is already opening its next connection
        (a keep-alive client at keepalive_requests does that at once); counting
        the old one until its close is read refused the new one with a 503.
        """
        if protocol in self.connections and protocol not in self.closing:
            self.closing.add(protocol)
            self._uncount(protocol.client_ip)

    def release(self, protocol: HttpProtocol | WebSocketConnection) -> None:
        if protocol in self.connections:
            self.connections.discard(protocol)
            if protocol in self.closing:
                self.closing.discard(protocol)  # uncounted already
            else:
                self._uncount(protocol.client_ip)

    def _uncount(self, ip: str) -> None:
        count = self.per_client.get(ip, 1) - 1
        if count:
            self.per_client[ip] = count
        else:
            self.per_client.pop(ip, None)

    def tick(self) -> None:
        """Once a second: refresh the Date header, fire due timers, flush the access log."""
        self.common.refresh()
        now = self.loop.time()
        for protocol in list(self.connections):
            protocol.check_timers(now)
        flush_access_logs()
