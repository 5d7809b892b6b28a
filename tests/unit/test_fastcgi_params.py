"""The FastCGI params builder says exactly what cgi_variables() says (less PATH_TRANSLATED, plus REDIRECT_STATUS)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters._fastcgi_params import ParamsBuilder, script_pairs
from adapters._fastcgi_records import PARAMS, RecordReader, decode_pairs
from adapters._meta_variables import cgi_variables, encode_variables


def scope(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "http_version": "1.1",
        "path": "/app/index.php/extra",
        "raw_path": b"/app/index.php/extra",
        "query_string": b"a=1&b=%20",
        "headers": [(b"host", b"example.test:8080"), (b"accept", b"*/*")],
        "client": ("10.0.0.7", 51234),
        "server": ("127.0.0.1", 8080),
    }
    base.update(changes)
    return base


def decoded(params: bytes) -> dict[bytes, bytes]:
    records = RecordReader().feed(params)
    assert all(record.type == PARAMS for record in records)
    assert records[-1].content == b"", "the stream ends with the empty PARAMS record"
    pairs = decode_pairs(b"".join(record.content for record in records))
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names)), f"a variable sent twice: {names}"
    return dict(pairs)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"headers": [(b"accept", b"*/*")], "server": ("127.0.0.1", 9000)},
        {"headers": [], "server": None, "client": None},
        {"scheme": "https", "headers": [(b"host", b"[::1]:8443")]},
        {"user": "alice", "auth_type": "Basic"},
        {"user": "Łukasz", "auth_type": "Digest"},
        {
            "method": "POST",
            "headers": [
                (b"host", b"example.test"),
                (b"content-type", b"application/json"),
                (b"content-length", b"12"),
                (b"cookie", b"a=1"),
                (b"cookie", b"b=2"),
                (b"x-many", b"1"),
                (b"x-many", b"2"),
                (b"proxy", b"http://evil"),
                (b"x_under", b"dropped"),
            ],
        },
        {"query_string": b"", "raw_path": b"/caf%C3%A9.php", "http_version": "1.0"},
    ],
)
def test_params_match_cgi_variables(changes: dict[str, Any]) -> None:
    request = scope(**changes)
    length = 12 if request["method"] == "POST" else 0
    builder = ParamsBuilder("/srv/site", {"APP_ENV": "test"})
    script = script_pairs("/app/index.php", "/srv/site/app/index.php", "/extra")
    sent = decoded(builder.build(1, request, script, length))
    again = {**request, "headers": [(bytes(name), bytes(value)) for name, value in request["headers"]]}
    assert decoded(builder.build(1, again, script, length)) == sent, "the same headers again, from the builder's cache"
    expected = encode_variables(
        cgi_variables(request, "/app/index.php", "/extra", "/srv/site/app/index.php", "/srv/site")
    )
    expected.pop(b"PATH_TRANSLATED", None)
    expected[b"REDIRECT_STATUS"] = b"200"
    expected[b"APP_ENV"] = b"test"
    assert sent == expected
    assert b"HTTP_PROXY" not in sent


def test_no_path_info_sends_no_path_info() -> None:
    """php-cgi would make PHP_SELF of an empty PATH_INFO."""
    sent = decoded(ParamsBuilder("/srv", {}).build(1, scope(), script_pairs("/a.php", "/srv/a.php", ""), 0))
    assert b"PATH_INFO" not in sent
    assert sent[b"SCRIPT_NAME"] == b"/a.php"


def test_chunked_body_length_is_sent_as_counted() -> None:
    request = scope(method="POST", headers=[(b"host", b"x"), (b"transfer-encoding", b"chunked")])
    sent = decoded(ParamsBuilder("/srv", {}).build(1, request, script_pairs("/a.php", "/srv/a.php", ""), 4096))
    assert sent[b"CONTENT_LENGTH"] == b"4096"


def test_long_values_use_four_byte_lengths() -> None:
    request = scope(headers=[(b"host", b"x"), (b"x-long", b"v" * 70_000)])
    sent = decoded(ParamsBuilder("/srv", {}).build(1, request, script_pairs("/a.php", "/srv/a.php", ""), 0))
    assert sent[b"HTTP_X_LONG"] == b"v" * 70_000


def test_the_same_headers_under_another_scheme_or_length_are_not_mixed_up() -> None:
    builder = ParamsBuilder("/srv", {})
    script = script_pairs("/a.php", "/srv/a.php", "")
    headers = [(b"host", b"example.test")]
    plain = decoded(builder.build(1, scope(headers=headers), script, 0))
    secure = decoded(builder.build(1, scope(headers=headers, scheme="https"), script, 0))
    posted = decoded(builder.build(1, scope(headers=[*headers, (b"content-length", b"5")]), script, 5))
    assert (plain[b"SERVER_PORT"], secure[b"SERVER_PORT"]) == (b"80", b"443")
    assert b"HTTPS" not in plain and secure[b"HTTPS"] == b"on"
    assert b"CONTENT_LENGTH" not in plain and posted[b"CONTENT_LENGTH"] == b"5"


def test_the_same_path_with_another_query_is_not_mixed_up() -> None:
    builder = ParamsBuilder("/srv", {})
    script = script_pairs("/a.php", "/srv/a.php", "")
    for query in (b"page=1", b"page=2", b"", b"page=1"):
        sent = decoded(builder.build(1, scope(raw_path=b"/a.php", query_string=query), script, 0))
        assert sent[b"QUERY_STRING"] == query
        assert sent[b"REQUEST_URI"] == (b"/a.php?" + query if query else b"/a.php")
