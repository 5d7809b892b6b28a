"""The `health` handler: is this gateway ready to serve? For container HEALTHCHECKs and Kubernetes probes.

Mount it on any route (`path = "=/_gateway/health"`, handler = "health").
GET or HEAD answers 200 `{"status": "ready"}` when:
- startup has completed: the core accepts connections only once the router's
  lifespan has run every handler's startup() (php-cgi pools spawned and their
  sockets accepting, apps imported, lifespan startups done), so a request that
  reaches this handler at all means that is so; and
- every php-cgi pool is up now: its master process is running and its socket
  is there. A php-cgi that died is restarted with backoff by its PhpCgi; until
  the new one has bound its socket the answer is 503
  `{"status": "starting", "waiting_for": [...]}`, naming the routes' pools.
  With several `workers` their pool host runs php-cgi (gateway/pools/host.py)
  and a worker checks that its socket is there; workers start only once the
  pool host serves, so their pools have started by then too; and
- every app pool (isolation = "process") with `min` ≥ 1 has a process
  serving: one whose processes all died is waiting for a replacement. A
  worker of a supervisor checks that its pool host's socket is there.

It checks no more than that, on purpose: external backends (a `fastcgi`
address, a `proxy` upstream) are each route's 502 when they fail, and taking
every replica out of the load balancer because a backend they all share is
down would help nobody. It opens no connection to php-cgi either: a probe
must not queue behind requests on php-cgi's socket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from adapters._php_pool import PhpCgi
from adapters.php import PhpHandler
from gateway.pools.handler import IsolatedHandler, RemotePoolHandler
from gateway.routing.router import Router
from gateway.types import ASGIApp, HandlerContext, Receive, Scope, Send

READY = json.dumps({"status": "ready"}).encode()
HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store")]
ALLOWED = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class HealthOptions:
    """No keys: what it checks follows from the rest of the config."""


class HealthHandler:
    """Answers probes from the state of the php-cgi pools the router's handlers run."""

    Options = HealthOptions

    def __init__(self, options: HealthOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context
        self.php_handlers: list[PhpHandler] = []
        self.app_pools: list[IsolatedHandler | RemotePoolHandler] = []

    def problems(self) -> list[tuple[str, str]]:
        return []

    def app(self) -> ASGIApp:
        async def health(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["method"] not in ALLOWED:
                await _answer(send, 405, b'{"status": "method not allowed"}', [(b"allow", b"GET, HEAD")])
                return
            waiting = self.waiting_for()
            body = READY if not waiting else json.dumps({"status": "starting", "waiting_for": waiting}).encode()
            await _answer(send, 503 if waiting else 200, body)  # the core sends no body for HEAD

        return health

    def waiting_for(self) -> list[str]:
        """The php-cgi pools not up now, by the label of the route that started them (each pool once)."""
        waiting: list[str] = []
        seen: set[int] = set()
        for handler in self.php_handlers:
            php = handler.php
            if php is None:
                waiting.append(f"php-cgi of {handler.context.where} (not started)")
            elif id(php) not in seen:
                seen.add(id(php))
                if not (_running(php) if handler.runs_php else php.socket_path.exists()):
                    waiting.append(f"php-cgi of {php.label} (restarting)")
        for pooled in self.app_pools:
            if not pooled.serving():
                waiting.append(f"app pool of {pooled.route.where} (no process serving)")
        return waiting

    async def startup(self) -> None:
        """Find the php routes of the whole config (the router is known by now; their pools may start later)."""
        router = self.context.dispatch
        if isinstance(router, Router):
            handlers = [handler for _, handler in router.handlers()]
            self.php_handlers = [handler for handler in handlers if isinstance(handler, PhpHandler)]
            self.app_pools = [h for h in handlers if isinstance(h, (IsolatedHandler, RemotePoolHandler))]

    async def aclose(self) -> None:
        pass


def _running(php: PhpCgi) -> bool:
    """The master runs and has bound its socket (a restart removes the old socket before spawning)."""
    process = php.process
    return process is not None and process.returncode is None and php.socket_path.exists()


async def _answer(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*HEADERS, length, *(headers or [])]})
    await send({"type": "http.response.body", "body": body})
