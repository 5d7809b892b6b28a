"""What a front worker tells an app process about a request, beyond the HTTP request itself.

An isolated app must see the request as an inline one would: the client's
address and port, the scheme, the route's prefix as root_path, the user an
auth stage let in, the client's own headers. The front sends the request
over the app process's Unix socket with its headers as the client sent
them (hop-by-hop fields and framing aside: the connection is ours) and one
more field, `gateway-scope`, carrying the rest as compact JSON. The app
process takes the last such field (ours comes after the client's, so a
client cannot forge one), drops every copy, and sets the scope from it. Only
the gateway reaches that socket (runtime_dir is private): nothing else can
claim a client address.
"""

from __future__ import annotations

import json
from typing import Any

from adapters._proxy_headers import HOP_BY_HOP, RequestFraming, RequestHeads, finish_head
from gateway.types import Scope

SCOPE_HEADER = b"gateway-scope"


def scope_blob(scope: Scope, client_sent_host: bool, pool: str = "") -> bytes:
    """The request's facts the HTTP head cannot carry, as one header value (ASCII JSON); pool: for a pool host."""
    info: dict[str, Any] = {
        "client": scope.get("client"),
        "server": scope.get("server"),
        "scheme": scope.get("scheme", "http"),
        "root_path": scope.get("root_path", ""),
        "http_version": scope.get("http_version", "1.1"),
    }
    if not client_sent_host:
        info["no_host"] = True
    if pool:
        info["pool"] = pool
    user = scope.get("user")
    if user is not None:
        info["user"] = user
        info["auth_type"] = scope.get("auth_type")
    return json.dumps(info, separators=(",", ":")).encode("ascii")


def apply_scope_header(scope: Scope) -> bool:
    """Set the scope from the front's field and remove it; False when there is none (not from a front)."""
    blob = None
    kept = []
    for item in scope["headers"]:
        if item[0] == SCOPE_HEADER:
            blob = item[1]
        else:
            kept.append(item)
    if blob is None:
        return False
    info = json.loads(blob)
    if info.pop("no_host", False):
        kept = [item for item in kept if item[0] != b"host"]
    scope["headers"] = kept
    client, server = info.pop("client"), info.pop("server")
    scope["client"] = tuple(client) if client else None
    scope["server"] = tuple(server) if server else None
    scope.update(info)
    return True


class PoolRequestHeads(RequestHeads):
    """Request heads for an app process: the client's fields as sent, plus gateway-scope; no forwarding fields."""

    def __init__(self, pool: str = "") -> None:
        super().__init__(preserve_host=True)
        self.pool = pool  # the route a pool host is to serve it with ("" straight to an app process)

    def build(self, scope: Scope, upstream_host: bytes, keep_alive: bool) -> tuple[bytes, RequestFraming]:
        parts = [scope["method"].encode("ascii"), b" ", self.target(scope), b" HTTP/1.1\r\n"]
        length: int | None = None
        chunked = False
        host = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name not in HOP_BY_HOP:
                host = host or name == b"host"
                parts += (name, b": ", value, b"\r\n")
        if not host:
            parts.append(b"host: localhost\r\n")  # HTTP/1.1 needs one; the app process removes it again
        parts += (SCOPE_HEADER, b": ", scope_blob(scope, host, self.pool), b"\r\n")
        return finish_head(parts, length, chunked, keep_alive)

    def build_websocket(self, scope: Scope, upstream_host: bytes, key: bytes) -> bytes:
        """A WebSocket handshake for an app process: the client's fields, gateway-scope, the relay's own key."""
        parts = [b"GET ", self.target(scope), b" HTTP/1.1\r\n"]
        host = False
        for name, value in scope["headers"]:
            if (name not in HOP_BY_HOP and not name.startswith(b"sec-websocket-")) or name == b"sec-websocket-protocol":
                host = host or name == b"host"
                parts += (name, b": ", value, b"\r\n")
        if not host:
            parts.append(b"host: localhost\r\n")
        parts += (SCOPE_HEADER, b": ", scope_blob(scope, host, self.pool), b"\r\n")
        parts += (b"connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n", b"sec-websocket-key: ")
        parts += (key, b"\r\n\r\n")
        return b"".join(parts)
