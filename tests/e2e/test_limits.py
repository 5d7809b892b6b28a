"""Limits the core enforces while it parses, before any app runs.

What a client sees for each refused request: a small plain-text response with
the right status, then the connection closing. What the app sees: nothing
(the recorder app writes a line for every request that reaches it), or, when
the head was fine and only the body went wrong, a request whose body never
completed. Refused requests are logged as '"-" <status>' in the access log.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.lifecycle_apps import RECORD_ENV
from tests.support.server import Gateway, read_one_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

RECORDER = "tests.e2e.lifecycle_apps:recorder"
SMALL_LIMITS = """
[server]
access_log = "-"

[limits]
max_request_line = 256
max_header_size = 256
max_header_count = 10
max_body_size = 1000
header_timeout = 1
body_timeout = 1
"""
MAX_LINE = MAX_FIELD = 256
MAX_FIELDS = 10
MAX_BODY = 1000
ERROR_BODY_LIMIT = 512


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def parse_reply(raw: bytes) -> Reply:
    """One response and whatever followed it, as a client reads it up to the close."""
    assert b"\r\n\r\n" in raw, f"no complete response head in {raw!r}"
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return Reply(int(lines[0].split()[1]), headers, body)


def read_to_close(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """What the server sends until it closes (True) or stays silent for `timeout` seconds (False)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks), True
            chunks.append(data)
    except ConnectionResetError:
        return b"".join(chunks), True
    except TimeoutError:
        return b"".join(chunks), False


def assert_refused(received: tuple[bytes, bool], status: int) -> Reply:
    """A small plain-text error response, alone on a connection that then closed."""
    raw, closed = received
    reply = parse_reply(raw)
    assert reply.status == status, raw
    assert closed, f"the connection stayed open after the {status} response"
    assert raw.startswith(b"HTTP/1.1 %d " % status), raw
    phrases = {413: b"Content Too Large", 414: b"URI Too Long", 431: b"Request Header Fields Too Large"}
    assert raw.split(b"\r\n", 1)[0].endswith(phrases.get(status, b"")), raw  # RFC 9110's names
    assert reply.headers[b"content-type"].startswith(b"text/plain"), raw
    assert reply.headers.get(b"connection") == b"close", raw
    # Content-Length matches what came before the close: no second response, no app output.
    assert int(reply.headers[b"content-length"]) == len(reply.body), raw
    assert len(reply.body) < ERROR_BODY_LIMIT, raw
    assert reply.body.startswith(b"%d " % status), raw
    return reply


class LimitedServer:
    """The gateway under SMALL_LIMITS serving the recorder, and what the recorder wrote."""

    def __init__(self, gw: Gateway, record: Path) -> None:
        self.gw = gw
        self.record = record
        self.probes = 0

    def app_lines(self) -> list[str]:
        if not self.record.exists():
            return []
        return self.record.read_text().splitlines()

    def exchange(self, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
        """Send data at once, read everything until the server closes (or goes quiet)."""
        with self.gw.connect(timeout) as sock:
            sock.sendall(data)
            return read_to_close(sock, timeout)

    def probe(self) -> str:
        """A valid request right after: the server still serves, and the app logs it."""
        self.probes += 1
        path = f"/probe-{self.probes}"
        with self.gw.connect() as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n".encode())
            status, _, body = read_one_response(sock)
        assert (status, body) == (200, b"recorded\n")
        return path

    def assert_app_saw_nothing(self, before: list[str]) -> None:
        """Nothing reached the app since `before` except a probe sent now."""
        path = self.probe()
        assert self.app_lines()[len(before) :] == [f"start GET {path}", f"done GET {path} 0"]

    def assert_app_never_got_a_whole_body(self, before: list[str]) -> None:
        """The head may have reached the app (bodies stream), but never a complete body."""
        path = self.probe()
        new = self.app_lines()[len(before) :]
        assert new[-2:] == [f"start GET {path}", f"done GET {path} 0"]
        assert not [line for line in new[:-2] if line.startswith("done ")], new

    def refused_in_log(self, status: int) -> int:
        """Refusals logged: "-" for a head refused whole, else the request line; and the page's size."""
        return len(re.findall(rf'"(?:-|[A-Z]+ \S+ HTTP/1\.[01])" {status} [1-9][0-9]* ', self.gw.stdout()))

    def assert_logged_refusal(self, status: int, before: int) -> None:
        deadline = time.monotonic() + 3.0
        while self.refused_in_log(status) <= before:
            if time.monotonic() > deadline:
                raise AssertionError(f"no new '\"-\" {status}' line in the access log:\n{self.gw.stdout()[-2000:]}")
            time.sleep(0.05)


@pytest.fixture(scope="module")
def server() -> Iterator[LimitedServer]:
    record = Path(tempfile.mkdtemp(prefix="gateway-record-")) / "requests.log"
    with run_gateway(RECORDER, config_text=SMALL_LIMITS, env={RECORD_ENV: str(record)}) as gw:
        yield LimitedServer(gw, record)


def send_slowly(sock: socket.socket, pieces: Iterable[bytes], interval: float) -> int:
    """Send pieces `interval` apart, stopping once the server answers; returns how many were sent."""
    sent = 0
    for piece in pieces:
        try:
            sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            break
        sent += 1
        readable, _, _ = select.select([sock], [], [], interval)
        if readable:
            break
    return sent


# Request line: 414 ----------------------------------------------------------------


def test_request_line_of_exactly_the_limit_is_served(server: LimitedServer) -> None:
    path = "/" + "a" * (MAX_LINE - len("GET  HTTP/1.1") - 1)
    line = f"GET {path} HTTP/1.1"
    assert len(line) == MAX_LINE
    raw = server.exchange(f"{line}\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert parse_reply(raw[0]).status == 200


@pytest.mark.parametrize("method", ["GET", "OPTIONS"])
def test_request_line_one_byte_over_the_limit_is_414(server: LimitedServer, method: str) -> None:
    before, logged = server.app_lines(), server.refused_in_log(414)
    path = "/" + "a" * (MAX_LINE - len(f"{method}  HTTP/1.1"))
    line = f"{method} {path} HTTP/1.1"
    assert len(line) == MAX_LINE + 1
    raw = server.exchange(f"{line}\r\nHost: x\r\n\r\n".encode())
    assert_refused(raw, 414)
    server.assert_app_saw_nothing(before)
    server.assert_logged_refusal(414, logged)


def test_request_line_still_arriving_is_414_before_it_ends(server: LimitedServer) -> None:
    before = server.app_lines()
    with server.gw.connect() as sock:
        pieces = [b"GET /"] + [b"a" * 64] * 40  # 2.5 KB if the server let it run; never a CRLF
        sent = send_slowly(sock, pieces, 0.05)
        raw = read_to_close(sock)
    assert_refused(raw, 414)
    assert sent < len(pieces), "the server waited for the line to end"
    server.assert_app_saw_nothing(before)


# Header fields: 431 --------------------------------------------------------------


def test_field_line_of_exactly_the_limit_is_served(server: LimitedServer) -> None:
    field = "X-Big: " + "b" * (MAX_FIELD - len("X-Big: "))
    assert len(field) == MAX_FIELD
    raw = server.exchange(f"GET /f HTTP/1.1\r\nHost: x\r\n{field}\r\nConnection: close\r\n\r\n".encode())
    assert parse_reply(raw[0]).status == 200


def test_field_line_of_exactly_the_limit_arriving_in_two_reads_is_served(server: LimitedServer) -> None:
    """Where the packets split (here between CR and LF) must not change what is accepted."""
    field = "X-Big: " + "b" * (MAX_FIELD - len("X-Big: "))
    with server.gw.connect() as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(f"GET /split HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{field}\r".encode())
        time.sleep(0.2)
        sock.sendall(b"\n\r\n")
        raw, _ = read_to_close(sock)
    assert parse_reply(raw).status == 200, raw


def test_too_large_field_line_is_431(server: LimitedServer) -> None:
    before, logged = server.app_lines(), server.refused_in_log(431)
    field = "X-Big: " + "b" * (MAX_FIELD - len("X-Big: ") + 1)
    raw = server.exchange(f"GET /f HTTP/1.1\r\nHost: x\r\n{field}\r\n\r\n".encode())
    assert_refused(raw, 431)
    server.assert_app_saw_nothing(before)
    server.assert_logged_refusal(431, logged)


def test_field_line_still_arriving_is_431_before_it_ends(server: LimitedServer) -> None:
    """A client trickling one endless header value is cut off at the limit, not at the timeout."""
    before = server.app_lines()
    with server.gw.connect() as sock:
        started = time.monotonic()
        pieces = [b"GET /trickle HTTP/1.1\r\nHost: x\r\nX-Endless: "] + [b"c" * 64] * 40
        sent = send_slowly(sock, pieces, 0.05)
        raw = read_to_close(sock)
        elapsed = time.monotonic() - started
    assert_refused(raw, 431)
    assert sent < len(pieces), "the server waited for the field line to end"
    assert elapsed < 1.0, f"431 took {elapsed:.2f}s: that is the header timeout's work, not the size limit's"
    server.assert_app_saw_nothing(before)


def test_exactly_max_header_count_fields_are_served(server: LimitedServer) -> None:
    fields = "".join(f"X-F{i}: v\r\n" for i in range(MAX_FIELDS - 2))
    raw = server.exchange(f"GET / HTTP/1.1\r\nHost: x\r\n{fields}Connection: close\r\n\r\n".encode())
    assert parse_reply(raw[0]).status == 200


def test_too_many_fields_is_431(server: LimitedServer) -> None:
    before = server.app_lines()
    fields = "".join(f"X-F{i}: v\r\n" for i in range(MAX_FIELDS))  # plus Host: one too many
    raw = server.exchange(f"GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
    assert_refused(raw, 431)
    server.assert_app_saw_nothing(before)


# Body size: 413 -------------------------------------------------------------------


def test_body_of_exactly_max_body_size_is_served(server: LimitedServer) -> None:
    before = server.app_lines()
    head = f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY}\r\nConnection: close\r\n\r\n"
    raw = server.exchange(head.encode() + b"d" * MAX_BODY)
    assert parse_reply(raw[0]).status == 200
    assert server.app_lines()[len(before) :] == ["start POST /upload", f"done POST /upload {MAX_BODY}"]


def test_content_length_over_the_limit_is_413_before_the_body_is_sent(server: LimitedServer) -> None:
    before, logged = server.app_lines(), server.refused_in_log(413)
    with server.gw.connect() as sock:
        started = time.monotonic()
        sock.sendall(f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode())
        raw = read_to_close(sock, timeout=5.0)  # the body is never sent
        elapsed = time.monotonic() - started
    assert_refused(raw, 413)
    assert elapsed < 0.9, f"the 413 took {elapsed:.2f}s: the server waited for the body"
    server.assert_app_saw_nothing(before)
    server.assert_logged_refusal(413, logged)


def test_chunked_body_growing_past_the_limit_is_413_while_streaming(server: LimitedServer) -> None:
    before = server.app_lines()
    chunk = b"12c\r\n" + b"e" * 300 + b"\r\n"  # 300 bytes each: the 4th passes 1000
    with server.gw.connect() as sock:
        sock.sendall(b"POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sent = send_slowly(sock, [chunk] * 12, 0.1)  # never the last chunk
        raw = read_to_close(sock)
    assert_refused(raw, 413)
    assert sent <= 5, f"the server let {sent} chunks of 300 bytes in under a 1000-byte limit"
    server.assert_app_never_got_a_whole_body(before)


# Timeouts: 408 ---------------------------------------------------------------------


def test_slowloris_head_is_408_after_header_timeout(server: LimitedServer) -> None:
    """A byte every 0.3 s keeps every read busy, but the head must be whole within 1 s."""
    before, logged = server.app_lines(), server.refused_in_log(408)
    with server.gw.connect() as sock:
        started = time.monotonic()
        head = b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 30
        sent = send_slowly(sock, [bytes([byte]) for byte in head], 0.3)
        raw = read_to_close(sock)
        elapsed = time.monotonic() - started
    assert_refused(raw, 408)
    assert sent < len(head)
    assert elapsed < 3.5, f"408 after {elapsed:.2f}s with header_timeout = 1 (a sweep a second, and a busy machine)"
    server.assert_app_saw_nothing(before)
    server.assert_logged_refusal(408, logged)


def test_body_stalling_past_body_timeout_is_408(server: LimitedServer) -> None:
    before = server.app_lines()
    with server.gw.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"POST /stall HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"f" * 10)
        raw = read_to_close(sock, timeout=5.0)
        elapsed = time.monotonic() - started
    assert_refused(raw, 408)
    assert 0.9 < elapsed < 3.5, f"408 after {elapsed:.2f}s with body_timeout = 1 (a sweep a second, and a busy machine)"
    server.assert_app_never_got_a_whole_body(before)


def test_an_expect_100_body_never_sent_to_an_app_that_answered_first_is_bounded_by_body_timeout() -> None:
    """No 100 goes out once the answer began (RFC 9110 §10.1.1), so the client may never send the body:
    the body timer must still run, or the connection and the app wait for good."""
    config = '[limits]\nbody_timeout = 1\n[[vhost]]\nnames = ["x"]\n  [[vhost.route]]\n  handler = "asgi"\n'
    config += '  app = "tests.e2e.lifecycle_apps:answers_first"\n'
    with run_gateway(config_text=config) as gw, gw.connect() as sock:
        started = time.monotonic()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        raw, closed = read_to_close(sock, timeout=8.0)
        elapsed = time.monotonic() - started
    assert raw.startswith(b"HTTP/1.1 200 ") and b"started" in raw and b"100 Continue" not in raw, raw
    assert closed and elapsed < 4.5, f"closed: {closed}, after {elapsed:.2f}s with body_timeout = 1"


def test_slowloris_on_a_keepalive_connection_is_408_too(server: LimitedServer) -> None:
    """After a first request is served, the next head gets the same header timeout."""
    with server.gw.connect() as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = read_one_response(sock)
        assert status == 200
        started = time.monotonic()
        head = b"GET /second HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 30
        send_slowly(sock, [bytes([byte]) for byte in head], 0.3)
        raw = read_to_close(sock)
        elapsed = time.monotonic() - started
    assert_refused(raw, 408)
    assert elapsed < 3.5, f"408 after {elapsed:.2f}s with header_timeout = 1 (a sweep a second, and a busy machine)"


def test_body_trickling_in_is_not_a_stall(server: LimitedServer) -> None:
    """body_timeout bounds silence, not the whole body: a byte every 0.3 s for 3 s is served."""
    before = server.app_lines()
    with server.gw.connect() as sock:
        sock.sendall(b"POST /trickle HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n")
        for _ in range(10):
            time.sleep(0.3)
            sock.sendall(b"t")
        status, _, body = read_one_response(sock)
    assert (status, body) == (200, b"recorded\n")
    assert server.app_lines()[len(before) :] == ["start POST /trickle", "done POST /trickle 10"]


# Malformed framing and refused protocol features ------------------------------------------

BAD_REQUESTS = [
    # (id, request, status, whether the head itself was acceptable so the app may have seen it)
    (
        "content-length-with-transfer-encoding",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        False,
    ),
    (
        "transfer-encoding-with-content-length",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
        400,
        False,
    ),
    (
        "differing-content-lengths",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
        False,
    ),
    (
        "content-length-not-a-number",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello",
        400,
        False,
    ),
    (
        "chunk-size-not-hex",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
        True,
    ),
    (
        "chunk-size-negative",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        400,
        True,
    ),
    (
        "chunk-size-overflow",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nhello\r\n",
        400,
        True,
    ),
    ("bare-cr-between-fields", b"GET / HTTP/1.1\r\nHost: x\rX-A: b\r\n\r\n", 400, False),
    ("bare-cr-in-a-value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\rc\r\n\r\n", 400, False),
    ("bare-cr-after-request-line", b"GET / HTTP/1.1\rHost: x\r\n\r\n", 400, False),
    ("missing-host-on-http-1.1", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400, False),
    ("duplicate-host", b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n", 400, False),
    ("duplicate-identical-host", b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n\r\n", 400, False),
    ("unknown-transfer-coding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501, False),
    (
        "coding-before-chunked",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
        False,
    ),
    ("http-2.0-request-line", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, False),
]


@pytest.mark.parametrize(
    ("request_bytes", "status", "head_ok"),
    [pytest.param(data, status, head_ok, id=name) for name, data, status, head_ok in BAD_REQUESTS],
)
def test_malformed_request_is_refused_and_closed(
    server: LimitedServer, request_bytes: bytes, status: int, head_ok: bool
) -> None:
    before, logged = server.app_lines(), server.refused_in_log(status)
    raw = server.exchange(request_bytes)
    assert_refused(raw, status)
    if head_ok:
        server.assert_app_never_got_a_whole_body(before)
    else:
        server.assert_app_saw_nothing(before)
    server.assert_logged_refusal(status, logged)


def test_refusal_after_a_good_keepalive_request_answers_both_in_order(server: LimitedServer) -> None:
    """The good request is served; the bad one behind it gets its error; then the close."""
    with server.gw.connect() as sock:
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/2.0\r\nHost: x\r\n\r\n")
        raw, closed = read_to_close(sock)
    first = parse_reply(raw)
    length = int(first.headers[b"content-length"])
    assert (first.status, first.body[:length]) == (200, b"recorded\n")
    assert_refused((first.body[length:], closed), 505)


# Connection limits: 503 -----------------------------------------------------------------


def _get(sock: socket.socket, path: str = "/") -> tuple[int, dict[bytes, bytes], bytes]:
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return read_one_response(sock)


@contextlib.contextmanager
def _connections(gw: Gateway, sources: Iterable[str]) -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    try:
        for source in sources:
            socks.append(socket.create_connection(gw.address, timeout=5.0, source_address=(source, 0)))
        yield socks
    finally:
        for sock in socks:
            sock.close()


def _wait_until_served(gw: Gateway, source: str = "127.0.0.1", timeout: float = 3.0) -> None:
    """A new connection is served once a slot frees (the server sees the close a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        with _connections(gw, [source]) as (sock,):
            status, _, _ = _get(sock)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 200


def test_third_connection_gets_503_while_the_first_two_keep_working(tmp_path: Path) -> None:
    config = SMALL_LIMITS.replace("[limits]", "[limits]\nmax_connections = 2\nmax_connections_per_client = 2")
    config = config.replace("header_timeout = 1", "header_timeout = 10")
    with run_gateway(RECORDER, config_text=config, env={RECORD_ENV: str(tmp_path / "record")}) as gw:
        with _connections(gw, ["127.0.0.1"] * 3) as (first, second, third):
            assert _get(first, "/one")[0] == 200
            assert _get(second, "/two")[0] == 200
            third.sendall(b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
            reply = assert_refused(read_to_close(third), 503)
            assert reply.headers.get(b"retry-after") == b"1"
            assert _get(first, "/one-again")[0] == 200
            assert _get(second, "/two-again")[0] == 200
        _wait_until_served(gw)
        lines = (tmp_path / "record").read_text().splitlines()
    assert not [line for line in lines if "/three" in line], "the refused connection's request reached the app"


def test_per_client_limit_counts_each_client_address_apart(tmp_path: Path) -> None:
    config = "[limits]\nmax_connections = 100\nmax_connections_per_client = 2\n"
    sources = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"]
    with (
        run_gateway(RECORDER, config_text=config, env={RECORD_ENV: str(tmp_path / "record")}) as gw,
        _connections(gw, sources) as (first, second, third, other_client),
    ):
        assert _get(first)[0] == 200
        assert _get(second)[0] == 200
        assert_refused(_get_and_read_to_close(third), 503)
        assert _get(other_client)[0] == 200  # another client address has its own two
        assert _get(first)[0] == 200


def test_a_trusted_proxy_is_not_held_to_the_per_client_limit(tmp_path: Path) -> None:
    """An ingress or load balancer carries many clients' connections from one address; max_connections still holds."""
    config = (
        '[server]\ntrusted_proxies = ["127.0.0.9"]\n[limits]\nmax_connections = 4\nmax_connections_per_client = 2\n'
    )
    sources = ["127.0.0.9", "127.0.0.9", "127.0.0.9", "127.0.0.1", "127.0.0.1"]
    with (
        run_gateway(RECORDER, config_text=config, env={RECORD_ENV: str(tmp_path / "record")}) as gw,
        _connections(gw, sources) as (first, second, third, own, own_too),
    ):
        assert [_get(sock)[0] for sock in (first, second, third, own)] == [200] * 4
        assert_refused(_get_and_read_to_close(own_too), 503)  # max_connections = 4


def test_max_connections_counts_every_client(tmp_path: Path) -> None:
    config = "[limits]\nmax_connections = 2\nmax_connections_per_client = 100\n"
    with (
        run_gateway(RECORDER, config_text=config, env={RECORD_ENV: str(tmp_path / "record")}) as gw,
        _connections(gw, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]) as (first, second, third),
    ):
        assert _get(first)[0] == 200
        assert _get(second)[0] == 200
        assert_refused(_get_and_read_to_close(third), 503)
        assert _get(first)[0] == 200


def test_a_connection_closing_after_its_last_response_leaves_its_client_room(tmp_path: Path) -> None:
    """At keepalive_requests the answer says Connection: close and the server waits for the client's close;
    the client's next connection, opened at once (as wrk's are), is not refused for the one it is leaving."""
    config = "[limits]\nmax_connections_per_client = 2\nkeepalive_requests = 1\n"
    with (
        run_gateway(RECORDER, config_text=config, env={RECORD_ENV: str(tmp_path / "record")}) as gw,
        _connections(gw, ["127.0.0.1"] * 2) as (first, second),
    ):
        for sock in (first, second):
            status, headers, _ = _get(sock)
            assert (status, headers.get(b"connection")) == (200, b"close")
        with _connections(gw, ["127.0.0.1"]) as (third,):  # the first two still open on our side
            assert _get(third)[0] == 200


def _get_and_read_to_close(sock: socket.socket) -> tuple[bytes, bool]:
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return read_to_close(sock)


# Handler time: 504 ----------------------------------------------------------------------


def test_app_slower_than_request_timeout_gets_504() -> None:
    with run_gateway("tests.support.apps:slow", config_text="[limits]\nrequest_timeout = 1\n") as gw:
        with gw.connect() as sock:
            started = time.monotonic()
            sock.sendall(b"GET /?s=5 HTTP/1.1\r\nHost: x\r\n\r\n")
            raw = read_to_close(sock, timeout=6.0)
            elapsed = time.monotonic() - started
        assert_refused(raw, 504)
        assert elapsed < 3.5, (
            f"504 after {elapsed:.2f}s with request_timeout = 1 (a sweep a second, and a busy machine)"
        )
        # The server is not stuck: a quick request is still answered.
        with gw.connect() as sock:
            status, _, body = _get(sock, "/?s=0.1")
        assert (status, body) == (200, b"slept")
