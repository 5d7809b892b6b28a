"""RequestParser without sockets: feed bytes, read the events a sink records, or the HttpError raised.

The same bytes must give the same events and the same refusals however they
are cut into reads: whole, byte by byte, or split at a few odd sizes.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.config.schema import Limits
from gateway.errors import HttpError
from gateway.http import parser as parser_module
from gateway.http.parser import RequestParser

TEMPLATE: dict[str, Any] = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "scheme": "http",
    "server": ("127.0.0.1", 8080),
    "client": ("127.0.0.1", 50000),
    "root_path": "",
}
Event = tuple[Any, ...]


class Recorder:
    """A RequestSink that writes down what it is told."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.scopes: list[dict[str, Any]] = []
        self.parsers: list[tuple[bool, bool]] = []

    def on_request(self, scope: dict[str, Any], parser: RequestParser) -> None:
        self.scopes.append(scope)
        self.parsers.append((parser.keep_alive, parser.expect_continue))
        self.events.append(
            (
                "request",
                scope["method"],
                scope["path"],
                scope["raw_path"],
                scope["query_string"],
                scope["http_version"],
                tuple(scope["headers"]),
            )
        )

    def on_body(self, chunk: bytes) -> None:
        self.events.append(("body", bytes(chunk)))

    def on_request_end(self) -> None:
        self.events.append(("end",))


def pieces(data: bytes, size: int | None) -> list[bytes]:
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def feed(data: bytes, limits: Limits | None = None, size: int | None = None) -> Recorder:
    """Feed data in reads of `size` bytes (all at once for None); HttpError propagates."""
    recorder = Recorder()
    parser = RequestParser(recorder, limits or Limits(), dict(TEMPLATE))
    for piece in pieces(data, size):
        parser.feed(piece)
    return recorder


def merged(events: list[Event]) -> list[Event]:
    """Adjacent body events joined: how a body is cut into reads is not an event of its own."""
    out: list[Event] = []
    for event in events:
        if event[0] == "body" and out and out[-1][0] == "body":
            out[-1] = ("body", out[-1][1] + event[1])
        else:
            out.append(event)
    return out


def refusal(data: bytes, limits: Limits | None = None, size: int | None = None) -> tuple[int, list[Event]]:
    """The status the parser refuses data with, and the events it reported before."""
    recorder = Recorder()
    parser = RequestParser(recorder, limits or Limits(), dict(TEMPLATE))
    with pytest.raises(HttpError) as info:
        for piece in pieces(data, size):
            parser.feed(piece)
    assert info.value.detail, "a refusal says why"
    return info.value.status, recorder.events


SPLITS = [None, 1, 2, 3, 7, 64]
SPLIT_IDS = ["whole", "bytewise", "by2", "by3", "by7", "by64"]


# Well-formed requests --------------------------------------------------------------------


def test_get_becomes_one_request_and_its_end() -> None:
    recorder = feed(b"GET /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: T/1\r\n\r\n")
    assert recorder.events == [
        (
            "request",
            "GET",
            "/a b/c",
            b"/a%20b/c",
            b"x=1&y=%20",
            "1.1",
            ((b"host", b"example.com"), (b"user-agent", b"T/1")),
        ),
        ("end",),
    ]
    scope = recorder.scopes[0]
    assert scope["type"] == "http" and scope["client"] == ("127.0.0.1", 50000)
    assert recorder.parsers == [(True, False)]


def test_template_is_copied_not_changed() -> None:
    template = dict(TEMPLATE)
    recorder = Recorder()
    RequestParser(recorder, Limits(), template).feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert template == TEMPLATE
    assert recorder.scopes[0] is not template


REPEATED = [
    # A request line seen before is answered from the parser's cache: every case is fed twice.
    b"GET /same/line?q=%20 HTTP/1.1\r\nHost: a\r\n\r\nGET /same/line?q=%20 HTTP/1.0\r\n\r\n",
    b"GET /v HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /v HTTP/1.1\r\nHost: b\r\n\r\n"
    b"GET /v HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"\r\nGET /after-crlf HTTP/1.1\r\nHost: c\r\n\r\n",
    b"GET http://d.example/abs?x HTTP/1.1\r\nHost: ignored\r\n\r\n",
    b"GET /x/%2e%2e/y/./z HTTP/1.1\r\nHost: e\r\n\r\n",
]


@pytest.mark.parametrize("data", REPEATED)
@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
def test_a_request_line_seen_before_parses_as_the_first_time(data: bytes, size: int | None) -> None:
    first = feed(data, size=size).events
    assert feed(data, size=size).events == first == feed(data, size=1).events
    versions = [event[5] for event in first if event[0] == "request"]
    assert versions == [line.rsplit(b"/", 1)[1][:3].decode() for line in _request_lines(data)]


def test_an_absolute_target_seen_before_still_replaces_the_host() -> None:
    for _ in range(2):
        (event, _end) = feed(b"GET http://h.example:81/p HTTP/1.1\r\nHost: other\r\n\r\n").events
        assert event[2] == "/p" and dict(event[6])[b"host"] == b"h.example:81"


HEADS = [
    # (one read, whether the head cache keeps it): the second parser to read it may answer from the cache.
    (b"GET /head?q=%20 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n", True),
    (b"GET /v HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", True),
    (b"\r\nGET /after-crlf HTTP/1.1\r\nHost: c\r\n\r\n", True),
    (b"GET http://d.example/abs?x HTTP/1.1\r\nHost: ignored\r\n\r\n", True),
    (b"GET /closing HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", False),
    (b"GET /old HTTP/1.0\r\n\r\n", False),
    (b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", False),
    (b"GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n", False),
]


@pytest.mark.parametrize(("data", "kept"), HEADS)
def test_a_head_read_before_gives_the_same_request_and_keep_alive(data: bytes, kept: bool) -> None:
    first, *again = [feed(data) for _ in range(3)]
    assert all(r.events == first.events and r.parsers == first.parsers for r in again)
    assert (data in parser_module._heads[Limits()]) == kept
    if kept:  # and on one connection, one request after another
        recorder = Recorder()
        parser = RequestParser(recorder, Limits(), dict(TEMPLATE))
        for _ in range(3):
            parser.feed(data)
        assert recorder.events == first.events * 3 and recorder.parsers == first.parsers * 3


def test_each_request_from_a_head_read_before_gets_its_own_header_list() -> None:
    recorder = Recorder()
    parser = RequestParser(recorder, Limits(), dict(TEMPLATE))
    data = b"GET /own HTTP/1.1\r\nHost: h\r\n\r\n"
    parser.feed(data)
    recorder.scopes[0]["headers"].append((b"x-added", b"by an app"))
    parser.feed(data)
    assert recorder.scopes[1]["headers"] == [(b"host", b"h")]
    assert recorder.scopes[1] is not recorder.scopes[0]


def test_a_head_read_before_under_wider_limits_is_still_refused_under_narrow_ones() -> None:
    data = b"GET /limits HTTP/1.1\r\nHost: h\r\nX-One: 1\r\nX-Two: 2\r\n\r\n"
    for _ in range(2):
        feed(data)
    assert refusal(data, Limits(max_header_count=2))[0] == 431


def test_a_partial_head_after_one_read_before_is_still_completed() -> None:
    recorder = Recorder()
    parser = RequestParser(recorder, Limits(), dict(TEMPLATE))
    data = b"GET /part HTTP/1.1\r\nHost: h\r\n\r\n"
    parser.feed(data)
    parser.feed(data[:10])
    parser.feed(data[10:])
    parser.feed(data)
    assert [e[2] for e in recorder.events if e[0] == "request"] == ["/part"] * 3


def _request_lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\r\n") if line.endswith((b" HTTP/1.1", b" HTTP/1.0"))]


def test_content_length_body_is_delivered_then_the_end() -> None:
    recorder = feed(b"POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello world")
    assert merged(recorder.events)[1:] == [("body", b"hello world"), ("end",)]


def test_chunked_body_drops_extensions_and_trailers() -> None:
    data = (
        b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"
    )
    recorder = feed(data)
    request, *rest = merged(recorder.events)
    assert request[6] == ((b"host", b"x"), (b"transfer-encoding", b"chunked"))
    assert rest == [("body", b"hello world"), ("end",)]


def test_pipelined_requests_come_out_in_order() -> None:
    data = (
        b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    events = merged(feed(data).events)
    assert [(e[0], e[2]) if e[0] == "request" else e for e in events] == [
        ("request", "/one"),
        ("end",),
        ("request", "/two"),
        ("body", b"abc"),
        ("end",),
        ("request", "/three"),
        ("end",),
    ]


def test_http_1_0_needs_no_host_and_does_not_keep_alive() -> None:
    recorder = feed(b"GET /old HTTP/1.0\r\n\r\n")
    assert recorder.events[0][5] == "1.0"
    assert recorder.parsers == [(False, False)]


def test_connection_close_turns_keep_alive_off() -> None:
    recorder = feed(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert recorder.parsers == [(False, False)]


def test_expect_100_continue_is_reported() -> None:
    recorder = feed(b"PUT /f HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert recorder.parsers == [(True, True)]
    assert recorder.events[-1][0] == "request"  # the body has not come yet


def test_absolute_form_target_replaces_the_host_header() -> None:
    recorder = feed(b"GET http://example.com:8080/p/q?z=9 HTTP/1.1\r\nHost: other\r\n\r\n")
    _, method, path, raw_path, query, _, headers = recorder.events[0]
    assert (method, path, raw_path, query) == ("GET", "/p/q", b"/p/q", b"z=9")
    assert [value for name, value in headers if name == b"host"] == [b"example.com:8080"]


@pytest.mark.parametrize(
    ("target", "host", "path", "query"),
    [
        (b"http://a.test?x=1", b"a.test", "/", b"x=1"),  # RFC 3986 §3.2: a "?" ends the authority too
        (b"http://a.test:80?x=1", b"a.test:80", "/", b"x=1"),
        (b"HTTP://A.TEST/index.html", b"A.TEST", "/index.html", b""),  # schemes are case-insensitive
        (b"Https://b.test", b"b.test", "/", b""),
    ],
)
def test_absolute_form_targets_as_nginx_reads_them(target: bytes, host: bytes, path: str, query: bytes) -> None:
    recorder = feed(b"GET " + target + b" HTTP/1.1\r\nHost: other\r\n\r\n")
    _, _, seen_path, _, seen_query, _, headers = recorder.events[0]
    assert (seen_path, seen_query) == (path, query)
    assert [value for name, value in headers if name == b"host"] == [host]


@pytest.mark.parametrize(
    "head",
    [
        b"GET http://a.test/x HTTP/1.1\r\n\r\n",  # no Host: RFC 9112 §3.2 asks for one beside any target
        b"GET http://a.test/x HTTP/1.1\r\nHost: u@bad b\r\n\r\n",
    ],
)
def test_an_absolute_target_does_not_excuse_a_missing_or_invalid_host(head: bytes) -> None:
    assert refusal(head)[0] == 400


def test_an_absolute_target_without_host_on_http_1_0_is_served() -> None:
    recorder = feed(b"GET http://a.test/x HTTP/1.0\r\n\r\n")
    assert [value for name, value in recorder.events[0][-1] if name == b"host"] == [b"a.test"]


@pytest.mark.parametrize(
    ("target", "path"),
    [
        (b"//admin/x", "/admin/x"),
        (b"/admin//x///y", "/admin/x/y"),
        (b"/%2Fadmin/x", "/admin/x"),  # an encoded slash merges as well: the route sees /admin
        (b"/a/..//admin/", "/admin/"),
        (b"http://h.test//admin", "/admin"),
    ],
)
def test_repeated_slashes_merge_in_the_routing_path_not_in_raw_path(target: bytes, path: str) -> None:
    """As nginx's merge_slashes: "//admin" must meet the /admin route (and its auth), not fall through."""
    for _ in range(2):  # the second time from the request line cache
        recorder = feed(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        _, _, seen_path, raw_path, _, _, _ = recorder.events[0]
        assert seen_path == path
        assert raw_path == target.removeprefix(b"http://h.test")


def test_whitespace_around_a_field_value_is_not_part_of_it() -> None:
    """RFC 9112 §5 (llhttp drops the leading whitespace, not the trailing): a Cookie's last value stays whole."""
    recorder = feed(b"GET / HTTP/1.1\r\nHost: x \r\nX-Sp:   v  \r\nCookie: sid=abc\t\r\nX-Empty: \t\r\n\r\n")
    headers = recorder.events[0][6]
    assert headers == ((b"host", b"x"), (b"x-sp", b"v"), (b"cookie", b"sid=abc"), (b"x-empty", b""))


def test_asterisk_form_is_for_options() -> None:
    recorder = feed(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
    assert recorder.events[0][1:3] == ("OPTIONS", "*")


def test_fragment_is_not_part_of_the_path_or_query() -> None:
    recorder = feed(b"GET /page?a=1#section HTTP/1.1\r\nHost: x\r\n\r\n")
    assert recorder.events[0][2:5] == ("/page", b"/page", b"a=1")


GOOD_REQUESTS = {
    "get": b"GET /a%2Fb?q=%41 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nX-Empty:\r\n\r\n",
    "post-content-length": (
        b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\n0123456789"
    ),
    "chunked": (
        b"PUT /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\nA;ext=1\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
    ),
    "pipelined": (
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
        b"GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"
    ),
    "http-1.0": b"GET / HTTP/1.0\r\nUser-Agent: old\r\n\r\n",
    "absolute-form": b"GET http://h.example/x?y HTTP/1.1\r\nHost: h.example\r\n\r\n",
    "options-asterisk": b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    "folded-case-names": b"GET / HTTP/1.1\r\nHOST: x\r\nX-MiXeD: Value\r\n\r\n",
}


@pytest.mark.parametrize("size", SPLITS[1:], ids=SPLIT_IDS[1:])
@pytest.mark.parametrize("data", list(GOOD_REQUESTS.values()), ids=list(GOOD_REQUESTS))
def test_same_bytes_in_any_reads_give_the_same_events(data: bytes, size: int) -> None:
    whole = feed(data)
    split = feed(data, size=size)
    assert merged(split.events) == merged(whole.events)
    assert split.parsers == whole.parsers
    assert whole.events[-1] == ("end",)


# Request line: 414 ---------------------------------------------------------------------------

LINE_LIMIT = Limits(max_request_line=64)


def _request_line(method: str, length: int) -> bytes:
    """A request line of exactly `length` bytes (CRLF not counted)."""
    fixed = len(method) + len("  /") + len("HTTP/1.1")
    return f"{method} /{'a' * (length - fixed)} HTTP/1.1".encode()


@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_request_line_of_exactly_the_limit_is_accepted(method: str, size: int | None) -> None:
    line = _request_line(method, 64)
    assert len(line) == 64
    recorder = feed(line + b"\r\nHost: x\r\n\r\n", LINE_LIMIT, size)
    assert recorder.events[-1] == ("end",)


@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
@pytest.mark.parametrize("method", ["GET", "OPTIONS", "DELETE"])
def test_request_line_one_byte_over_the_limit_is_414(method: str, size: int | None) -> None:
    line = _request_line(method, 65)
    status, events = refusal(line + b"\r\nHost: x\r\n\r\n", LINE_LIMIT, size)
    assert (status, events) == (414, [])


def test_request_line_exactly_at_the_limit_split_between_cr_and_lf_is_accepted() -> None:
    line = _request_line("GET", 64)
    recorder = Recorder()
    parser = RequestParser(recorder, LINE_LIMIT, dict(TEMPLATE))
    parser.feed(line + b"\r")
    parser.feed(b"\nHost: x\r\n\r\n")
    assert recorder.events[-1] == ("end",)


def test_request_line_still_arriving_is_414_once_past_the_limit() -> None:
    recorder = Recorder()
    parser = RequestParser(recorder, LINE_LIMIT, dict(TEMPLATE))
    parser.feed(b"GET /" + b"a" * 50)
    with pytest.raises(HttpError) as info:
        for _ in range(10):
            parser.feed(b"a" * 10)
    assert info.value.status == 414
    assert recorder.events == []


# Header fields: 431 ------------------------------------------------------------------------

FIELD_LIMIT = Limits(max_header_size=64, max_header_count=5)


def _field(length: int) -> bytes:
    """A field line of exactly `length` bytes (CRLF not counted)."""
    return b"X-Pad: " + b"p" * (length - len(b"X-Pad: "))


@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
def test_field_line_of_exactly_the_limit_is_accepted(size: int | None) -> None:
    recorder = feed(b"GET / HTTP/1.1\r\nHost: x\r\n" + _field(64) + b"\r\n\r\n", FIELD_LIMIT, size)
    assert recorder.events[-1] == ("end",)


@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
def test_field_line_one_byte_over_the_limit_is_431(size: int | None) -> None:
    status, events = refusal(b"GET / HTTP/1.1\r\nHost: x\r\n" + _field(65) + b"\r\n\r\n", FIELD_LIMIT, size)
    assert (status, events) == (431, [])


def test_field_line_still_arriving_is_431_once_past_the_limit() -> None:
    recorder = Recorder()
    parser = RequestParser(recorder, FIELD_LIMIT, dict(TEMPLATE))
    parser.feed(b"GET / HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    with pytest.raises(HttpError) as info:
        for _ in range(20):
            parser.feed(b"v" * 8)
    assert info.value.status == 431
    assert recorder.events == []


def test_field_line_on_a_second_keepalive_request_is_bounded_too() -> None:
    recorder = Recorder()
    parser = RequestParser(recorder, FIELD_LIMIT, dict(TEMPLATE))
    parser.feed(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
    parser.feed(b"GET /2 HTTP/1.1\r\nHost: x\r\nX-Endless: ")
    with pytest.raises(HttpError) as info:
        for _ in range(20):
            parser.feed(b"v" * 8)
    assert info.value.status == 431
    assert recorder.events[-1] == ("end",) and len(recorder.events) == 2


def test_field_line_arriving_in_the_same_read_as_the_request_before_is_bounded_too() -> None:
    """A pipelining client cannot grow a field line past the limit by starting it behind a request."""
    recorder = Recorder()
    parser = RequestParser(recorder, FIELD_LIMIT, dict(TEMPLATE))
    with pytest.raises(HttpError) as info:
        parser.feed(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\nX-Endless: " + b"v" * 40)
        for _ in range(100):
            parser.feed(b"v" * 8)
    assert info.value.status == 431
    assert [event[:3] for event in recorder.events] == [("request", "GET", "/1"), ("end",)]


@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
def test_exactly_max_header_count_fields_are_accepted(size: int | None) -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(4))
    recorder = feed(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", FIELD_LIMIT, size)
    assert len(recorder.events[0][6]) == 5


@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
def test_one_field_too_many_is_431(size: int | None) -> None:
    fields = b"".join(b"X-%d: v\r\n" % i for i in range(5))
    status, events = refusal(b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n", FIELD_LIMIT, size)
    assert (status, events) == (431, [])


# Body size: 413 ------------------------------------------------------------------------------

BODY_LIMIT = Limits(max_body_size=10)


def test_content_length_at_the_limit_is_accepted() -> None:
    recorder = feed(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789", BODY_LIMIT)
    assert merged(recorder.events)[1:] == [("body", b"0123456789"), ("end",)]


def test_content_length_over_the_limit_is_413_from_the_head_alone() -> None:
    status, events = refusal(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n", BODY_LIMIT)
    assert (status, events) == (413, [])


def test_huge_content_length_is_413() -> None:
    status, events = refusal(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n", BODY_LIMIT)
    assert (status, events) == (413, [])


@pytest.mark.parametrize("size", SPLITS, ids=SPLIT_IDS)
def test_chunked_body_past_the_limit_is_413_and_no_byte_beyond_it_is_delivered(size: int | None) -> None:
    data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"4\r\nabcd\r\n" * 5
    status, events = refusal(data, BODY_LIMIT, size)
    assert status == 413
    assert events[0][0] == "request"
    delivered = b"".join(event[1] for event in events if event[0] == "body")
    assert len(delivered) <= 10
    assert ("end",) not in events


def test_chunked_body_at_the_limit_is_accepted() -> None:
    data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n"
    assert merged(feed(data, BODY_LIMIT).events)[1:] == [("body", b"abcdefghij"), ("end",)]


def test_body_limit_counts_each_request_apart() -> None:
    one = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n0\r\n\r\n"
    events = merged(feed(one * 3, BODY_LIMIT).events)
    assert events.count(("end",)) == 3


# Refusals ----------------------------------------------------------------------------------

REFUSED = {
    # name: (request, status, the head itself was acceptable so on_request may have come first)
    "content-length-and-transfer-encoding": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        False,
    ),
    "transfer-encoding-and-content-length": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        400,
        False,
    ),
    "differing-content-lengths": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        False,
    ),
    "content-length-list": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 6\r\n\r\nhello!", 400, False),
    "content-length-sign": (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello", 400, False),
    "chunk-size-not-hex": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
        True,
    ),
    "chunk-size-negative": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        400,
        True,
    ),
    "chunk-size-overflow": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n",
        400,
        True,
    ),
    "chunk-data-too-long": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n",
        400,
        True,
    ),
    "bare-cr-ends-a-field": (b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400, False),
    "bare-cr-in-a-value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n", 400, False),
    "bare-cr-ends-the-request-line": (b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400, False),
    "missing-host": (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, False),
    "duplicate-host": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, False),
    "duplicate-identical-host": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, False),
    "host-with-a-space": (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400, False),
    "host-with-a-slash": (b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400, False),
    "duplicate-content-type": (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\nContent-Type: c/d\r\nContent-Length: 0\r\n\r\n",
        400,
        False,
    ),
    "transfer-encoding-on-http-1.0": (
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        False,
    ),
    "underscore-content-length": (b"POST / HTTP/1.1\r\nHost: x\r\nContent_Length: 5\r\n\r\nhello", 400, False),
    "underscore-transfer-encoding": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer_Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        False,
    ),
    "asterisk-for-get": (b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, False),
    "userinfo-in-target": (b"GET http://user:pw@example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, False),
    "other-scheme-target": (b"GET ftp://example.com/f HTTP/1.1\r\nHost: example.com\r\n\r\n", 400, False),
    "host-in-a-trailer": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nHost: evil\r\n\r\n",
        400,
        True,
    ),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, False),
    "obsolete-line-folding": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400, False),
    "unknown-transfer-coding": (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, False),
    "coding-before-chunked": (
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        False,
    ),
    "connect": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501, False),
    "http-2.0": (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, False),
    "http-0.9-line": (b"GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505, False),
    "http-1.2": (b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505, False),  # llhttp calls it an invalid version
    "expect-something-else": (
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 1\r\n\r\na",
        417,
        False,
    ),
}


@pytest.mark.parametrize("size", [None, 1, 5], ids=["whole", "bytewise", "by5"])
@pytest.mark.parametrize(("data", "status", "head_ok"), list(REFUSED.values()), ids=list(REFUSED))
def test_refused_request(data: bytes, status: int, head_ok: bool, size: int | None) -> None:
    got, events = refusal(data, size=size)
    assert got == status
    assert ("end",) not in events
    if not head_ok:
        assert events == [], "a refused head must never reach the sink"


def test_refusal_after_a_good_request_keeps_the_good_one() -> None:
    recorder = Recorder()
    parser = RequestParser(recorder, Limits(), dict(TEMPLATE))
    with pytest.raises(HttpError) as info:
        parser.feed(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/2.0\r\nHost: x\r\n\r\n")
    assert info.value.status == 505
    assert [event[:3] for event in recorder.events] == [("request", "GET", "/ok"), ("end",)]


def test_error_detail_is_for_people_not_a_parser_internal() -> None:
    for data, _, _ in REFUSED.values():
        with pytest.raises(HttpError) as info:
            feed(data)
        assert "callback" not in info.value.detail.lower(), (data, info.value.detail)
