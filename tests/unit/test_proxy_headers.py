"""The request head the proxy sends upstream and the response headers it sends back (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters._proxy_headers import RequestHeads, response_headers, upgrade_requested


def scope(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "http_version": "1.1",
        "path": "/api/users",
        "raw_path": b"/api/users",
        "query_string": b"",
        "headers": [(b"host", b"example.test:8080"), (b"accept", b"*/*")],
        "client": ("10.0.0.7", 51234),
    }
    base.update(changes)
    return base


def parse(head: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    assert head.endswith(b"\r\n\r\n")
    line, *lines = head[:-4].split(b"\r\n")
    fields = []
    for text in lines:
        name, _, value = text.partition(b": ")
        fields.append((name, value))
    return line, fields


def values(fields: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for field, value in fields if field == name]


def test_request_line_and_upstream_host() -> None:
    head, framing = RequestHeads(preserve_host=False).build(scope(query_string=b"a=1"), b"127.0.0.1:9000", True)
    line, fields = parse(head)
    assert line == b"GET /api/users?a=1 HTTP/1.1"
    assert values(fields, b"host") == [b"127.0.0.1:9000"]
    assert values(fields, b"accept") == [b"*/*"]
    assert values(fields, b"x-forwarded-host") == [b"example.test:8080"]
    assert values(fields, b"x-forwarded-proto") == [b"http"]
    assert values(fields, b"x-forwarded-for") == [b"10.0.0.7"]
    assert values(fields, b"forwarded") == [b'for=10.0.0.7;proto=http;host="example.test:8080"']
    assert values(fields, b"via") == [b"1.1 gateway"]
    assert values(fields, b"connection") == []
    assert not framing.has_body


def test_preserve_host_sends_the_clients_host() -> None:
    head, _ = RequestHeads(preserve_host=True).build(scope(), b"127.0.0.1:9000", True)
    assert values(parse(head)[1], b"host") == [b"example.test:8080"]


def test_preserve_host_without_a_client_host_falls_back_to_the_upstreams() -> None:
    head, _ = RequestHeads(preserve_host=True).build(scope(headers=[], http_version="1.0"), b"up", True)
    fields = parse(head)[1]
    assert values(fields, b"host") == [b"up"]
    assert values(fields, b"x-forwarded-host") == []
    assert values(fields, b"via") == [b"1.0 gateway"]


def test_forwarding_fields_are_appended_to_and_replaced() -> None:
    headers = [
        (b"host", b"example.test"),
        (b"x-forwarded-for", b"192.0.2.1"),
        (b"x-forwarded-for", b"192.0.2.2, 192.0.2.3"),
        (b"forwarded", b"for=192.0.2.1"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"evil.test"),
        (b"via", b"1.1 edge"),
    ]
    client = ("2001:db8::7", 1)
    head, _ = RequestHeads(False).build(scope(headers=headers, client=client, scheme="https"), b"up", True)
    fields = parse(head)[1]
    assert values(fields, b"x-forwarded-for") == [b"192.0.2.1, 192.0.2.2, 192.0.2.3, 2001:db8::7"]
    assert values(fields, b"forwarded") == [b'for=192.0.2.1, for="[2001:db8::7]";proto=https;host=example.test']
    assert values(fields, b"x-forwarded-proto") == [b"https"]
    assert values(fields, b"x-forwarded-host") == [b"example.test"]
    assert values(fields, b"via") == [b"1.1 edge, 1.1 gateway"]


def test_a_unix_socket_client_is_unknown() -> None:
    head, _ = RequestHeads(False).build(scope(client=None), b"up", True)
    fields = parse(head)[1]
    assert values(fields, b"x-forwarded-for") == [b"unknown"]
    assert values(fields, b"forwarded")[0].startswith(b"for=unknown;")


def test_hop_by_hop_and_proxy_fields_are_removed() -> None:
    headers = [
        (b"host", b"example.test"),
        (b"connection", b"keep-alive, X-Secret"),
        (b"x-secret", b"hop"),
        (b"keep-alive", b"timeout=5"),
        (b"proxy-connection", b"keep-alive"),
        (b"te", b"trailers"),
        (b"trailer", b"x-checksum"),
        (b"upgrade", b"h2c"),
        (b"expect", b"100-continue"),
        (b"proxy-authorization", b"Basic eDp5"),
        (b"proxy", b"http://evil.test/"),
        (b"cookie", b"a=1"),
        (b"authorization", b"Bearer kept"),
    ]
    head, _ = RequestHeads(False).build(scope(headers=headers), b"up", True)
    names = [name for name, _ in parse(head)[1]]
    for gone in (b"connection", b"x-secret", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"):
        assert gone not in names
    for gone in (b"expect", b"proxy-authorization", b"proxy"):
        assert gone not in names
    assert b"cookie" in names and b"authorization" in names


def test_names_with_underscores_are_not_sent_on() -> None:
    """nginx's underscores_in_headers off: X_Forwarded_For would read as our X-Forwarded-For upstream."""
    headers = [(b"host", b"example.test"), (b"x_forwarded_for", b"6.6.6.6"), (b"x-kept", b"1")]
    head, _ = RequestHeads(False).build(scope(headers=headers), b"up", True)
    _, fields = parse(head)
    assert b"x_forwarded_for" not in [name for name, _ in fields] and b"6.6.6.6" not in head
    assert values(fields, b"x-kept") == [b"1"] and values(fields, b"x-forwarded-for") == [b"10.0.0.7"]
    websocket = RequestHeads(False).build_websocket(scope(headers=headers), b"up", b"key")
    assert b"6.6.6.6" not in websocket and b"x-kept: 1" in websocket


def test_framing_length_chunked_and_keepalive_off() -> None:
    heads = RequestHeads(False)
    with_length = scope(method="POST", headers=[(b"host", b"h"), (b"content-length", b"12")])
    head, framing = heads.build(with_length, b"up", True)
    assert values(parse(head)[1], b"content-length") == [b"12"] and framing.length == 12 and not framing.chunked
    chunked = scope(method="POST", headers=[(b"host", b"h"), (b"transfer-encoding", b"chunked")])
    head, framing = heads.build(chunked, b"up", False)
    fields = parse(head)[1]
    assert values(fields, b"transfer-encoding") == [b"chunked"] and framing.chunked and framing.has_body
    assert values(fields, b"content-length") == []
    assert values(fields, b"connection") == [b"close"]


@pytest.mark.parametrize(
    ("raw_path", "query", "target"),
    [
        (b"/api/users", b"", b"/users"),
        (b"/api/users/7", b"x=1", b"/users/7?x=1"),
        (b"/api", b"", b"/"),
        (b"/api/", b"", b"/"),
        (b"/%61pi/a%2Fb", b"", b"/a%2Fb"),
    ],
)
def test_strip_prefix(raw_path: bytes, query: bytes, target: bytes) -> None:
    heads = RequestHeads(False, strip="/api")
    head, _ = heads.build(scope(raw_path=raw_path, query_string=query), b"up", True)
    line, fields = parse(head)
    assert line == b"GET " + target + b" HTTP/1.1"
    assert values(fields, b"x-forwarded-prefix") == [b"/api"]


@pytest.mark.parametrize("raw_path", [b"//api/x", b"/foo/../api/x", b"/api/./x", b"/api/%2e/x", b"/api//x"])
def test_strip_prefix_of_a_path_spelt_otherwise(raw_path: bytes) -> None:
    """The route matched the cleaned /api/x: what follows /api goes up, not the raw path's first segments cut."""
    heads = RequestHeads(False, strip="/api")
    head, _ = heads.build(scope(raw_path=raw_path, path="/api/x"), b"up", True)
    assert parse(head)[0] == b"GET /x HTTP/1.1"


@pytest.mark.parametrize(
    ("raw_path", "query", "target"),
    [
        (b"/a b", b"", b"/a%20b"),
        (b"/x", b"q=a\r\nX-Injected: 1", b"/x?q=a%0D%0AX-Injected:%201"),
        (b"/caf\xc3\xa9", b"q=%41&r=\xc3\xa9", b"/caf%C3%A9?q=%41&r=%C3%A9"),
    ],
)
def test_a_target_with_bytes_a_request_line_cannot_hold_goes_up_encoded(
    raw_path: bytes, query: bytes, target: bytes
) -> None:
    """An app's (or a CGI local redirect's) unencoded path or query never splits the upstream's request line."""
    head, _ = RequestHeads(False).build(scope(raw_path=raw_path, query_string=query), b"up", True)
    line, fields = parse(head)
    assert line == b"GET " + target + b" HTTP/1.1"
    assert values(fields, b"x-injected") == []


def test_deeper_prefix_and_no_prefix() -> None:
    head, _ = RequestHeads(False, strip="/a/b").build(scope(raw_path=b"/a/b/c"), b"up", True)
    assert parse(head)[0] == b"GET /c HTTP/1.1"
    head, _ = RequestHeads(False).build(scope(raw_path=b"/a/b/c"), b"up", True)
    assert parse(head)[0] == b"GET /a/b/c HTTP/1.1"
    assert values(parse(head)[1], b"x-forwarded-prefix") == []


def test_response_headers_lose_hop_by_hop_date_and_server() -> None:
    fields = [
        (b"content-type", b"text/plain"),
        (b"connection", b"keep-alive, x-internal"),
        (b"x-internal", b"1"),
        (b"keep-alive", b"timeout=5"),
        (b"transfer-encoding", b"chunked"),
        (b"trailer", b"x-sum"),
        (b"upgrade", b"h2c"),
        (b"date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
        (b"server", b"upstream"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]
    assert response_headers(fields) == [
        (b"content-type", b"text/plain"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
    ]


@pytest.mark.parametrize(
    ("headers", "refused"),
    [
        ([(b"connection", b"Upgrade"), (b"upgrade", b"websocket")], True),
        ([(b"connection", b"keep-alive, upgrade"), (b"upgrade", b"WebSocket")], True),
        ([(b"upgrade", b"websocket")], False),  # without Connection: upgrade it is no request to switch
        ([(b"connection", b"Upgrade, HTTP2-Settings"), (b"upgrade", b"h2c")], False),  # may be ignored
        ([(b"connection", b"upgrade"), (b"upgrade", b"h2c, foo/2")], True),
        ([(b"accept", b"*/*")], False),
    ],
)
def test_upgrade_requests(headers: list[tuple[bytes, bytes]], refused: bool) -> None:
    assert upgrade_requested(headers) is refused
