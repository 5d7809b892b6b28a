"""The WebSocket opening handshake without sockets: what is refused, what the 101 says, what goes upstream."""

from __future__ import annotations

from typing import Any

import pytest

from adapters._proxy_headers import RequestHeads, accept_headers
from gateway.errors import HttpError
from gateway.http.ws_handshake import (
    VersionMismatch,
    accept_response,
    negotiate_deflate,
    read_handshake,
    websocket_requested,
)

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3's example


def scope(*extra: tuple[bytes, bytes], method: str = "GET", version: str = "1.1") -> dict[str, Any]:
    headers = [(b"host", b"example.test"), (b"upgrade", b"websocket"), (b"connection", b"Upgrade"), *extra]
    return {
        "method": method,
        "http_version": version,
        "headers": headers,
        "path": "/chat",
        "raw_path": b"/chat",
        "query_string": b"room=1",
        "client": ("10.0.0.7", 5000),
        "scheme": "ws",
    }


GOOD = ((b"sec-websocket-key", KEY), (b"sec-websocket-version", b"13"))


def test_a_valid_handshake_gives_its_subprotocols_and_offers() -> None:
    handshake = read_handshake(
        scope(
            *GOOD,
            (b"sec-websocket-protocol", b"chat, superchat"),
            (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
        ),
        has_body=False,
    )
    assert handshake.subprotocols == ["chat", "superchat"]
    assert handshake.extension_offers == ["permessage-deflate; client_max_window_bits"]


@pytest.mark.parametrize(
    ("request_scope", "has_body", "status", "words"),
    [
        (scope(*GOOD, method="POST"), False, 400, "GET"),
        (scope(*GOOD, version="1.0"), False, 400, "HTTP/1.1"),
        (scope(*GOOD), True, 400, "body"),
        (scope((b"sec-websocket-version", b"13")), False, 400, "Sec-WebSocket-Key"),
        (scope((b"sec-websocket-key", b"c2hvcnQ="), (b"sec-websocket-version", b"13")), False, 400, "16 bytes"),
        (scope((b"sec-websocket-key", KEY)), False, 400, "Sec-WebSocket-Version"),
        (scope((b"sec-websocket-key", KEY), (b"sec-websocket-version", b"8")), False, 426, "version 13"),
    ],
)
def test_handshakes_rfc_6455_refuses(request_scope: dict[str, Any], has_body: bool, status: int, words: str) -> None:
    with pytest.raises(HttpError) as refused:
        read_handshake(request_scope, has_body)
    assert refused.value.status == status and words in refused.value.detail
    assert isinstance(refused.value, VersionMismatch) == (status == 426)


def test_websocket_requested_reads_the_upgrade_tokens() -> None:
    assert websocket_requested([(b"upgrade", b"WebSocket")])
    assert websocket_requested([(b"upgrade", b"foo, websocket")])
    assert not websocket_requested([(b"upgrade", b"h2c")])


def test_the_101_carries_accept_subprotocol_extensions_and_app_headers() -> None:
    handshake = read_handshake(scope(*GOOD, (b"sec-websocket-protocol", b"chat")), False)
    response = accept_response(
        handshake, "chat", [(b"x-app", b"1"), (b"connection", b"close")], b"permessage-deflate", b"date: now\r\n"
    )
    assert response.startswith(b"HTTP/1.1 101 Switching Protocols\r\n") and response.endswith(b"\r\n\r\n")
    lines = response.split(b"\r\n")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in lines
    assert b"sec-websocket-protocol: chat" in lines and b"sec-websocket-extensions: permessage-deflate" in lines
    assert b"x-app: 1" in lines and b"connection: close" not in lines and b"date: now" in lines


@pytest.mark.parametrize(
    ("subprotocol", "headers", "words"),
    [
        ("other", [], "did not offer"),
        (None, [(b"sec-websocket-protocol", b"chat")], "use 'subprotocol'"),
        (None, [(b"x-bad", b"a\r\nb")], "CR, LF or NUL"),
        (None, [(b"x-bad", b"a\x00b")], "CR, LF or NUL"),
        (None, [(b"x bad", b"1")], "not a token"),
    ],
)
def test_app_answers_that_cannot_be_sent(
    subprotocol: str | None, headers: list[tuple[bytes, bytes]], words: str
) -> None:
    handshake = read_handshake(scope(*GOOD, (b"sec-websocket-protocol", b"chat")), False)
    with pytest.raises(ValueError, match=words):
        accept_response(handshake, subprotocol, headers, None, b"")


def test_permessage_deflate_is_negotiated_only_when_offered() -> None:
    extension, value = negotiate_deflate(["permessage-deflate; client_max_window_bits"])
    assert extension is not None and value is not None and value.startswith(b"permessage-deflate")
    assert negotiate_deflate(["x-webkit-deflate-frame"]) == (None, None)
    assert negotiate_deflate([]) == (None, None)


def test_the_upstream_handshake_has_our_key_and_the_clients_subprotocols() -> None:
    ws_scope = scope(*GOOD, (b"sec-websocket-protocol", b"chat"), (b"sec-websocket-extensions", b"permessage-deflate"))
    head = RequestHeads(preserve_host=False).build_websocket(ws_scope, b"127.0.0.1:9000", b"b3Vycw==")
    lines = head.split(b"\r\n")
    assert lines[0] == b"GET /chat?room=1 HTTP/1.1" and head.endswith(b"\r\n\r\n")
    assert b"sec-websocket-key: b3Vycw==" in lines and KEY not in head
    assert b"sec-websocket-protocol: chat" in lines and b"permessage-deflate" not in head
    assert b"connection: Upgrade" in lines and b"upgrade: websocket" in lines and b"host: 127.0.0.1:9000" in lines
    assert b"x-forwarded-proto: http" in lines and b"x-forwarded-for: 10.0.0.7" in lines


def test_an_upstreams_101_fields_that_the_core_writes_are_dropped() -> None:
    fields = [
        (b"upgrade", b"websocket"),
        (b"sec-websocket-accept", b"x"),
        (b"sec-websocket-protocol", b"chat"),
        (b"set-cookie", b"a=1"),
        (b"server", b"up"),
    ]
    assert accept_headers(fields) == [(b"set-cookie", b"a=1")]
