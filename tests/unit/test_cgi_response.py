"""The CGI response head reader: what programs print, including what they get wrong."""

from __future__ import annotations

import pytest

from adapters._cgi_response import CgiHeadReader, CgiResponseError, parse_head


def read(output: bytes, nph: bool = False, pieces: int = 1) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    reader = CgiHeadReader(nph=nph)
    step = max(1, len(output) // pieces)
    for start in range(0, len(output), step):
        head = reader.feed(output[start : start + step])
        if head is not None:
            rest = reader.body + output[start + step :]
            return head.status, head.headers, rest
    reader.eof()
    raise AssertionError("unreachable")


@pytest.mark.parametrize("pieces", [1, 3, 1000])
@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_document_response_in_any_chunking(pieces: int, newline: bytes) -> None:
    output = newline.join([b"Content-Type: text/html", b"Set-Cookie: a=1", b"Set-Cookie: b=2", b"", b"<p>hi\n"])
    status, headers, body = read(output, pieces=pieces)
    assert status == 200
    assert headers == [(b"content-type", b"text/html"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    assert body == b"<p>hi\n"


def test_status_field_sets_the_code_and_is_not_passed_on() -> None:
    head = parse_head(b"Status: 404 Not Found\r\nContent-Type: text/plain")
    assert (head.status, head.headers, head.explicit_status) == (404, [(b"content-type", b"text/plain")], True)


def test_location_alone_is_a_local_redirect_and_a_url_a_client_redirect() -> None:
    local = parse_head(b"Location: /other?x=1")
    assert local.local_redirect and local.status == 302
    client = parse_head(b"Location: https://example.com/")
    assert not client.local_redirect and client.status == 302
    with_status = parse_head(b"Status: 301 Moved\nLocation: /new")
    assert not with_status.local_redirect and with_status.status == 301


def test_hop_by_hop_headers_are_dropped() -> None:
    head = parse_head(b"Content-Type: text/plain\nTransfer-Encoding: chunked\nConnection: close")
    assert head.headers == [(b"content-type", b"text/plain")]


def test_a_repeated_content_type_keeps_its_last_value_in_its_first_place() -> None:
    """Content-Type takes one value (RFC 9110 §8.3); two fields would leave the client to guess."""
    head = parse_head(b"Content-Type: text/plain\nX-A: 1\nContent-Type: text/html\nSet-Cookie: a\nSet-Cookie: b")
    assert head.headers == [
        (b"content-type", b"text/html"),
        (b"x-a", b"1"),
        (b"set-cookie", b"a"),
        (b"set-cookie", b"b"),
    ]


def test_nph_status_line() -> None:
    status, headers, body = read(b"HTTP/1.1 201 Created\r\nX-A: 1\r\n\r\nbody", nph=True)
    assert (status, headers, body) == (201, [(b"x-a", b"1")], b"body")


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (b"hello world\n\n", "not a header line"),
        (b"\nbody", "no headers"),
        (b"Status: abc\n\n", "Status must be"),
        (b"Status: 99 Low\n\n", "Status must be"),
        (b"Status: 600 High\n\n", "Status must be"),
        (b"Content-Type: text/plain\nStatus: 200\nStatus: 404\n\n", "more than one Status"),
        (b"Content-Length: ten\n\n", "not a number"),
        (b"Content-Length: 3\nContent-Length: 5\n\nhello", "two different Content-Lengths"),
        (b"X-Bad: a\x01b\n\n", "control characters"),
        (b" folded: line\n\n", "not a header line"),
    ],
)
def test_malformed_output_is_an_error_that_says_why(output: bytes, reason: str) -> None:
    with pytest.raises(CgiResponseError, match=reason):
        read(output)


def test_a_repeated_equal_content_length_is_kept_once() -> None:
    status, headers, body = read(b"Content-Length: 5\nContent-Length: 05\n\nhello")
    assert (status, headers, body) == (200, [(b"content-length", b"5")], b"hello")


def test_output_ending_inside_the_headers() -> None:
    reader = CgiHeadReader()
    assert reader.feed(b"Content-Type: text/plain\n") is None
    with pytest.raises(CgiResponseError, match="ended inside the headers"):
        reader.eof()
    with pytest.raises(CgiResponseError, match="wrote nothing"):
        CgiHeadReader().eof()


def test_endless_headers_are_refused_at_the_limit() -> None:
    reader = CgiHeadReader(max_size=1024)
    with pytest.raises(CgiResponseError, match="within 1024 bytes"):
        for _ in range(100):
            reader.feed(b"X-Flood: " + b"a" * 50 + b"\n")


def test_nph_without_status_line() -> None:
    with pytest.raises(CgiResponseError, match="status line"):
        read(b"Content-Type: text/plain\n\n", nph=True)


def test_a_head_seen_before_parses_the_same_and_bad_lines_still_fail() -> None:
    block = b"X-Powered-By: PHP/8.2\r\nContent-type: text/html\r\nSet-Cookie: id=1\r\nSet-Cookie: id=2"
    first, second = parse_head(block), parse_head(block)
    assert first == second and first.headers is not second.headers
    assert second.headers == [
        (b"x-powered-by", b"PHP/8.2"),
        (b"content-type", b"text/html"),
        (b"set-cookie", b"id=1"),
        (b"set-cookie", b"id=2"),
    ]
    for _ in range(2):
        with pytest.raises(CgiResponseError, match="control characters"):
            parse_head(b"Content-type: text/html\r\nX-Bad: a\x01b")
