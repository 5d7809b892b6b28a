"""The auth stage: who is asking. Basic and Digest over Apache's user files, per vhost or route.

    auth = { type = "digest", realm = "admin", users = ".htdigest", algorithm = "SHA-256",
             require = ["alice", "group:admins"], groups = ".htgroup", pass_authorization = false }
    auth = [ { type = "digest", ... }, { type = "basic", ... } ]   # both offered, either accepted
    auth = false                                                     # a route turns its vhost's off

Per request: no or unknown credentials → 401 with one WWW-Authenticate per
offered challenge; wrong ones → 401 after the client's penalty delay (see
_auth_penalty.py); a valid user `require` leaves out → 403; otherwise the app
runs with scope["user"] (the name, which CGI, PHP and WSGI see as
REMOTE_USER) and scope["auth_type"] ("Basic" | "Digest", CGI's AUTH_TYPE),
and without the Authorization header unless pass_authorization = true.
A WebSocket handshake gets the same check and the same answers (the router
sends them as the handshake's HTTP response: 401 with the challenges, 403).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from gateway.stages import Report
from gateway.stages._auth_config import parse_schemes
from gateway.stages._auth_penalty import SHARED, Penalty
from gateway.stages._auth_schemes import FAIL, STALE, Scheme
from gateway.stages.errors import plain_response
from gateway.types import ASGIApp, HandlerContext, Headers, Receive, Scope, Send

KEYS = ("auth",)
ORDER = 20
VERIFIED = "gateway.auth_verified"  # {scheme identity: user} this request's credentials passed (CGI redirects)

logger = logging.getLogger("gateway.stages.auth")

_BODIES = {
    401: b"401 Unauthorized: a valid user name and password are needed here.\n",
    403: b"403 Forbidden: this user is not allowed here.\n",
}


@dataclass(frozen=True)
class AuthOptions:
    """The schemes one route offers (in the order challenges are sent) and the penalty table it feeds."""

    schemes: tuple[Scheme, ...]
    where: str = ""
    penalty: Penalty = field(default=SHARED, compare=False)


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> AuthOptions | None:
    """Read the user (and group) files now; None when auth is off here or its config is broken."""
    schemes = parse_schemes(values.get("auth"), context, report)
    return AuthOptions(tuple(schemes), context.where) if schemes else None


def wrap(options: AuthOptions, app: ASGIApp) -> ASGIApp:
    return AuthApp(options, app)


class AuthApp:
    """The ASGI app that checks credentials in front of a route's handler."""

    def __init__(self, options: AuthOptions, app: ASGIApp) -> None:
        self.app = app
        self.options = options
        self._schemes = {scheme.name: scheme for scheme in options.schemes}
        self._penalty = options.penalty

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        vouched = scope.get(VERIFIED)
        if vouched is not None and await self._vouched_for(vouched, scope, receive, send):
            return
        header = _authorization(scope["headers"])
        token, _, credentials = (header or "").strip().partition(" ")
        scheme = self._schemes.get(token.lower())
        if scheme is None:
            await self._refuse(scope, send, 401)
            return
        outcome, user = await scheme.authenticate(credentials.strip(), scope)
        client = _client(scope)
        if outcome == FAIL:
            await self._penalize(client, scope)
            await self._refuse(scope, send, 401)
        elif outcome == STALE:
            await self._refuse(scope, send, 401, stale=scheme)
        elif scheme.allowed is not None and user not in scheme.allowed:
            self._penalty.succeeded(client)
            scope["user"] = user  # the access log names who was refused, as Apache's %u does
            await self._refuse(scope, send, 403)
        else:
            self._penalty.succeeded(client)
            await self.app(_authenticated(scope, user, scheme), receive, send)

    async def _vouched_for(
        self, vouched: dict[tuple[str, str, str], str], scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """A CGI local redirect of a request these credentials passed already: the user is known.

        Checking the header again would fail for Digest (its nonce count is used
        up, and the redirect is a GET); Apache's mod_auth_digest takes the first
        request's user for internal redirects too. `require` still applies here.
        """
        for scheme in self.options.schemes:
            user = vouched.get(scheme.identity)
            if user is None:
                continue
            if scheme.allowed is not None and user not in scheme.allowed:
                scope["user"] = user
                await self._refuse(scope, send, 403)
            else:
                await self.app(_authenticated(scope, user, scheme), receive, send)
            return True
        return False

    async def _penalize(self, client: str, scope: Scope) -> None:
        delay = self._penalty.failed(client, time.monotonic())
        if delay == self._penalty.base:
            logger.warning(
                "%s: repeated failed logins from %s (%s); delaying its further failures",
                self.options.where or "auth",
                client,
                scope.get("path", ""),
            )
        if delay:
            await asyncio.sleep(delay)

    async def _refuse(self, scope: Scope, send: Send, status: int, stale: Scheme | None = None) -> None:
        body = _BODIES[status]
        headers: Headers = [(b"content-length", str(len(body)).encode("ascii"))]
        if status == 401:
            for scheme in self.options.schemes:
                headers.extend((b"www-authenticate", value) for value in scheme.challenges(scheme is stale))
        await plain_response(send, status, body, headers)  # marked: error documents apply to 401/403 too


def _authorization(headers: Headers) -> str | None:
    for name, value in headers:
        if name == b"authorization":
            return value.decode("latin-1")
    return None


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else ""


def _authenticated(scope: Scope, user: str, scheme: Scheme) -> Scope:
    """The scope for the app: who it is, and the headers without Authorization unless passed on.

    user and auth_type go on the server's own scope too, so the access log
    names the user; the header list is replaced in a copy, never edited.
    """
    scope["user"] = user
    scope["auth_type"] = scheme.auth_type
    inner = dict(scope)
    inner[VERIFIED] = {**scope.get(VERIFIED, {}), scheme.identity: user}
    if not scheme.pass_authorization:
        inner["headers"] = [(name, value) for name, value in scope["headers"] if name != b"authorization"]
    return inner
