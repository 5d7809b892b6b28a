"""The WebSocket opening handshake (RFC 6455 §4.2), sans-IO: check the request, build the answers.

Rules:
- A request is a WebSocket handshake when httptools saw an upgrade
  (Connection: upgrade with an Upgrade field) and Upgrade names "websocket".
  Other upgrades (h2c, say) are served as plain HTTP, as before.
- A handshake that breaks §4.2.1 (not GET, not HTTP/1.1, a body, no valid
  Sec-WebSocket-Key) is a 400 before any app runs; a version other than 13
  is a 426 naming the one we speak (§4.4).
- The 101 carries what we negotiated (permessage-deflate when the client
  offered it and the server allows it, the app's subprotocol) and the app's
  own headers, except the ones that are ours to write.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import generate_accept_token

from gateway.errors import HttpError
from gateway.http.responses import field_problem
from gateway.types import CONNECTION_KEY, Headers, Scope

VERSION = b"13"
EXTENSION = "websocket.http.response"  # the ASGI denial extension the core speaks
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
# Fields of the 101 that the server writes: an app's copy would contradict them.
_OURS = frozenset(
    {
        b"upgrade",
        b"connection",
        b"sec-websocket-accept",
        b"sec-websocket-extensions",
        b"content-length",
        b"transfer-encoding",
        b"date",
        b"server",
    }
)


class VersionMismatch(HttpError):
    """The client speaks a WebSocket version other than 13: 426 with Sec-WebSocket-Version (RFC 6455 §4.4)."""


@dataclass(slots=True)
class Handshake:
    """What the client asked for: its key, subprotocols and extension offers."""

    key: bytes
    subprotocols: list[str]
    extension_offers: list[str]


def websocket_requested(headers: Headers) -> bool:
    """True when the request's Upgrade field names websocket (case-insensitive, §4.2.1 item 3)."""
    for name, value in headers:
        if name == b"upgrade" and b"websocket" in (token.strip().lower() for token in value.split(b",")):
            return True
    return False


def read_handshake(scope: Scope, has_body: bool) -> Handshake:
    """The client's handshake; HttpError (400, or VersionMismatch) for one RFC 6455 refuses."""
    if scope["method"] != "GET" or scope["http_version"] != "1.1":
        raise HttpError(400, "A WebSocket handshake must be an HTTP/1.1 GET request.")
    if has_body:
        raise HttpError(400, "A WebSocket handshake must not carry a body.")
    key = version = b""
    subprotocols: list[str] = []
    offers: list[str] = []
    for name, value in scope["headers"]:
        if name == b"sec-websocket-key":
            key = value.strip()
        elif name == b"sec-websocket-version":
            version = value.strip()
        elif name == b"sec-websocket-protocol":
            subprotocols += _tokens(value)
        elif name == b"sec-websocket-extensions":
            offers += _tokens(value)
    if not _valid_key(key):
        raise HttpError(400, "The Sec-WebSocket-Key header is missing or is not 16 bytes in base64.")
    if not version:
        raise HttpError(400, "The Sec-WebSocket-Version header is missing (this server speaks version 13).")
    if version != VERSION:
        raise VersionMismatch(426, "This server speaks WebSocket version 13 (Sec-WebSocket-Version: 13).")
    return Handshake(key, subprotocols, offers)


def _tokens(value: bytes) -> list[str]:
    return [token.strip() for token in value.decode("latin-1").split(",") if token.strip()]


def _valid_key(key: bytes) -> bool:
    try:
        return len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        return False


def negotiate_deflate(offers: list[str]) -> tuple[PerMessageDeflate | None, bytes | None]:
    """The permessage-deflate extension and its response field value, when the client offered it."""
    if not any(offer.split(";", 1)[0].strip() == PerMessageDeflate.name for offer in offers):
        return None, None
    extension = PerMessageDeflate()
    value = server_extensions_handshake(offers, [extension])
    return (extension, value) if value is not None else (None, None)


def accept_response(
    handshake: Handshake, subprotocol: str | None, headers: Headers, extensions: bytes | None, common: bytes
) -> bytes:
    """The 101 Switching Protocols response; ValueError for app headers that cannot be sent."""
    if subprotocol is not None and subprotocol not in handshake.subprotocols:
        raise ValueError(f"the app chose the subprotocol {subprotocol!r}, which the client did not offer")
    parts = [SWITCHING, common, b"sec-websocket-accept: ", generate_accept_token(handshake.key), b"\r\n"]
    if subprotocol is not None:
        parts += (b"sec-websocket-protocol: ", subprotocol.encode("latin-1"), b"\r\n")
    if extensions is not None:
        parts += (b"sec-websocket-extensions: ", extensions, b"\r\n")
    for name, value in headers:
        lowered = bytes(name).lower()
        if lowered == b"sec-websocket-protocol":
            raise ValueError("websocket.accept headers must not hold sec-websocket-protocol; use 'subprotocol'")
        if lowered in _OURS:
            continue
        problem = field_problem(name, value)
        if problem is not None:
            raise ValueError(f"websocket.accept headers: {problem}")
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def websocket_scope(scope: Scope, handshake: Handshake, state: dict[str, Any]) -> Scope:
    """The ASGI websocket scope from the parser's http scope (everything else it holds carries over)."""
    ws = dict(scope)
    del ws["method"]
    ws["type"] = "websocket"
    ws["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
    ws["subprotocols"] = handshake.subprotocols
    ws["state"] = state.copy()
    extensions = {name: value for name, value in scope["extensions"].items() if not name.startswith("http.")}
    ws["extensions"] = {**extensions, EXTENSION: {}}
    ws.pop(CONNECTION_KEY, None)  # the limits stage's hook into HTTP bodies: not for this scope
    return ws
