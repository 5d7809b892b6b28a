"""The HTTP/1.1 core end to end: what a client sees on the wire.

Every test talks to a real `gateway serve` child process over loopback, most
of them through raw sockets so framing (Content-Length, chunked, close
delimited, 100 Continue, keep-alive and closes) is checked byte for byte.
The apps live in tests/e2e/protocol_apps.py behind one dispatcher, so one
module-scoped server serves most tests; servers with another config (short
keep-alive limits, the plain asyncio loop) are started once each.
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.processes import rss_kib
from tests.support.server import Gateway, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

APP = "tests.e2e.protocol_apps:app"
KEEPALIVE_CONFIG = "[limits]\nkeepalive_timeout = 1\nkeepalive_requests = 3\n"
MiB = 1024 * 1024


# Fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    """The default server (uvloop when installed) serving every protocol app.

    Bodies may be large here: the flow-control test sends more than the kernel can buffer.
    """
    with run_gateway(APP, config_text='[limits]\nmax_body_size = "1GiB"\n') as gateway:
        yield gateway


@pytest.fixture(scope="module")
def short_keepalive_gw() -> Iterator[Gateway]:
    with run_gateway(APP, config_text=KEEPALIVE_CONFIG) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def asyncio_gw() -> Iterator[Gateway]:
    with run_gateway(APP, args=("--loop", "asyncio")) as gateway:
        yield gateway


@pytest.fixture(params=["default-loop", "asyncio-loop"])
def any_loop_gw(request: pytest.FixtureRequest) -> Gateway:
    name = "gw" if request.param == "default-loop" else "asyncio_gw"
    gateway: Gateway = request.getfixturevalue(name)
    return gateway


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Files for pathsend, by path: 1 MiB of random bytes and an empty file."""
    root = tmp_path_factory.mktemp("pathsend")
    contents = {"big.bin": os.urandom(MiB), "empty.bin": b""}
    paths = {}
    for name, data in contents.items():
        (root / name).write_bytes(data)
        paths[str(root / name)] = data
    return paths


# A small HTTP/1.1 client that keeps its buffer between responses (pipelining) ---------


@dataclass
class Response:
    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    head: bytes
    chunks: list[bytes]

    def header(self, name: bytes) -> bytes | None:
        values = [v for n, v in self.headers if n == name]
        assert len(values) <= 1, f"{name!r} appears {len(values)} times in {self.head!r}"
        return values[0] if values else None

    def json(self) -> dict[str, object]:
        result: dict[str, object] = json.loads(self.body)
        return result


class Truncated(AssertionError):
    """The connection closed before the response's framing said it was complete."""

    def __init__(self, message: str, received: bytes) -> None:
        super().__init__(message)
        self.received = received


class Client:
    """A raw socket plus a buffer: reads responses one at a time, exactly as framed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    @classmethod
    def connect(cls, gateway: Gateway, timeout: float = 5.0) -> Client:
        return cls(gateway.connect(timeout=timeout))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        try:
            data = self.sock.recv(1 << 20)
        except ConnectionResetError:
            data = b""
        self.buffer += data
        return bool(data)

    def _take(self, count: int) -> bytes:
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def read_head(self) -> tuple[int, bytes, list[tuple[bytes, bytes]], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                raise Truncated(f"closed before a full response head: {self.buffer!r}", self.buffer)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        version, code, reason = [*lines[0].split(b" ", 2), b""][:3]
        assert version == b"HTTP/1.1", lines[0]
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            assert sep and name == name.strip() and name == name.lower(), f"bad header line {line!r}"
            headers.append((name, value.strip()))
        return int(code), reason, headers, head

    def read_response(self, method: str = "GET", skip_informational: bool = True) -> Response:
        """The next response; 1xx responses before it are skipped unless skip_informational is False."""
        status, reason, headers, head = self.read_head()
        while skip_informational and 100 <= status < 200:
            status, reason, headers, head = self.read_head()
        names = [n for n, _ in headers]
        lengths = [v for n, v in headers if n == b"content-length"]
        chunked = (b"transfer-encoding", b"chunked") in headers
        assert len(lengths) <= 1, head
        assert not (lengths and chunked), f"both content-length and chunked: {head!r}"
        assert names.count(b"connection") <= 1, head
        chunks: list[bytes] = []
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif chunked:
            body = self._read_chunked(chunks)
        elif lengths:
            length = int(lengths[0])
            while len(self.buffer) < length:
                if not self._fill():
                    raise Truncated(f"closed after {len(self.buffer)} of {length} body bytes", self.buffer)
            body = self._take(length)
        else:
            while self._fill():
                pass
            body = self._take(len(self.buffer))
        return Response(status, reason, headers, body, head, chunks)

    def _read_chunked(self, chunks: list[bytes]) -> bytes:
        received = b""
        while True:
            while b"\r\n" not in self.buffer:
                if not self._fill():
                    raise Truncated(f"closed inside a chunk size line after {received!r}", received + self.buffer)
            size_line, _, self.buffer = self.buffer.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(self.buffer) < size + 2:
                if not self._fill():
                    raise Truncated(f"closed inside a chunk after {received!r}", received + self.buffer)
            chunk = self._take(size + 2)
            assert chunk.endswith(b"\r\n"), chunk[-10:]
            if size == 0:
                return received
            chunks.append(chunk[:-2])
            received += chunk[:-2]

    def request(self, method: str, target: str, headers: str = "", body: bytes = b"", version: str = "1.1") -> Response:
        self.send(request_bytes(method, target, headers, body, version))
        return self.read_response(method)

    def closed_within(self, seconds: float) -> bool:
        """True if the server closes the connection (EOF or reset) within seconds, sending nothing."""
        deadline = time.monotonic() + seconds
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    return False
                if not data:
                    return True
                raise AssertionError(f"unexpected bytes after the response: {self.buffer + data!r}")
        except ConnectionResetError:
            return True
        finally:
            self.sock.settimeout(5.0)

    def still_open(self) -> bool:
        """The connection answers another request."""
        return self.request("GET", "/fixed").body == b"hello world"


def request_bytes(method: str, target: str, headers: str = "", body: bytes = b"", version: str = "1.1") -> bytes:
    head = f"{method} {target} HTTP/{version}\r\nHost: test.local\r\n{headers}"
    if body and "content-length" not in headers.lower() and "transfer-encoding" not in headers.lower():
        head += f"Content-Length: {len(body)}\r\n"
    return head.encode("latin-1") + b"\r\n" + body


def wait_for_file(path: Path, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
    """Poll a log file an app writes until predicate(text) holds."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if predicate(text):
            return text
        time.sleep(0.02)
    raise AssertionError(f"{path.name} never satisfied the condition; it holds {text!r}")


def echo_of(response: Response) -> dict[str, object]:
    assert response.status == 200, response.head
    return response.json()


# 1. Versions, keep-alive and Connection: close ---------------------------------------


def test_http11_keeps_the_connection_alive_by_default(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        for index in range(3):
            response = client.request("GET", f"/echo/{index}")
            assert echo_of(response)["path"] == f"/echo/{index}"
            assert echo_of(response)["http_version"] == "1.1"
            assert response.header(b"connection") is None
        assert not client.closed_within(0.2)


def test_http10_closes_after_the_response_by_default(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/echo/old", version="1.0")
        assert echo_of(response)["http_version"] == "1.0"
        assert response.header(b"connection") == b"close"
        assert client.closed_within(2.0)


def test_http10_keeps_alive_only_when_asked(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        for index in range(2):
            response = client.request("GET", f"/echo/{index}", "Connection: keep-alive\r\n", version="1.0")
            assert echo_of(response)["http_version"] == "1.0"
            assert response.header(b"connection") == b"keep-alive"
            assert response.header(b"content-length") == str(len(response.body)).encode()
        # The next request without the header is the last one.
        response = client.request("GET", "/echo/last", version="1.0")
        assert response.header(b"connection") == b"close"
        assert client.closed_within(2.0)


def test_client_connection_close_closes_after_the_response(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/echo/bye", "Connection: close\r\n")
        assert echo_of(response)["path"] == "/echo/bye"
        assert response.header(b"connection") == b"close"
        assert client.closed_within(2.0)


def test_app_connection_close_header_closes_the_connection(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/close")
        assert response.status == 200
        assert response.body == b"bye"
        assert response.header(b"connection") == b"close"  # once: the app's copy is not repeated
        assert client.closed_within(2.0)


# 2. keepalive_timeout and keepalive_requests ------------------------------------------


def test_idle_keepalive_connection_is_closed_after_keepalive_timeout(short_keepalive_gw: Gateway) -> None:
    with Client.connect(short_keepalive_gw) as client:
        assert client.request("GET", "/fixed").status == 200
        started = time.monotonic()
        assert client.closed_within(4.0), "idle connection still open 4 s after a 1 s keepalive_timeout"
        elapsed = time.monotonic() - started
    # Deadline 1 s after the response, checked by a once-a-second sweep: between 1 and ~2 s (more when busy).
    assert 0.9 <= elapsed <= 3.5, elapsed


def test_keepalive_requests_limits_requests_per_connection(short_keepalive_gw: Gateway) -> None:
    with Client.connect(short_keepalive_gw) as client:
        first = client.request("GET", "/echo/1")
        second = client.request("GET", "/echo/2")
        third = client.request("GET", "/echo/3")
        assert [echo_of(r)["path"] for r in (first, second, third)] == ["/echo/1", "/echo/2", "/echo/3"]
        assert first.header(b"connection") is None
        assert second.header(b"connection") is None
        assert third.header(b"connection") == b"close"
        assert client.closed_within(2.0)


def test_keepalive_requests_with_pipelined_requests_answers_only_the_allowed_ones(
    short_keepalive_gw: Gateway,
) -> None:
    with Client.connect(short_keepalive_gw) as client:
        client.send(b"".join(request_bytes("GET", f"/echo/{i}") for i in range(5)))
        paths = [echo_of(client.read_response())["path"] for _ in range(3)]
        assert paths == ["/echo/0", "/echo/1", "/echo/2"]
        assert client.closed_within(2.0)


# 3. Pipelining ----------------------------------------------------------------------


def test_pipelined_requests_are_answered_in_order(gw: Gateway) -> None:
    posted = b'{"n": 2, "text": "in between"}'
    requests = [
        request_bytes("GET", "/echo/1?a=1"),
        request_bytes("POST", "/echo/2", "Content-Type: application/json\r\n", posted),
        request_bytes("GET", "/slow?s=0.2"),
        request_bytes("GET", "/echo/3"),
        request_bytes("POST", "/echo/4", "Transfer-Encoding: chunked\r\n", b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"),
        request_bytes("GET", "/echo/5"),
    ]
    with Client.connect(gw) as client:
        client.send(b"".join(requests))
        first, second, slow, third, fourth, fifth = (client.read_response() for _ in requests)
        assert echo_of(first)["path"] == "/echo/1"
        assert echo_of(first)["query_string"] == "a=1"
        assert echo_of(second)["method"] == "POST"
        assert echo_of(second)["body"] == posted.decode()
        assert slow.body == b"slept"
        assert echo_of(third)["path"] == "/echo/3"
        assert echo_of(third)["body_length"] == 0
        assert echo_of(fourth)["body"] == "abcde"
        assert echo_of(fifth)["path"] == "/echo/5"
        assert client.still_open()


def test_a_pipelined_request_after_a_long_body_without_newlines_is_not_a_414(gw: Gateway) -> None:
    """The partial head after a body: its request line is measured from its method, not from the body's tail."""
    body = b"x" * 9000  # longer than max_request_line, and no LF in it (minified JSON, base64)
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", "/echo/long", "", body) + b"GET /echo/next")
        time.sleep(0.3)
        client.send(b" HTTP/1.1\r\nHost: test.local\r\n\r\n")
        assert echo_of(client.read_response())["body_length"] == 9000
        assert client.read_response().status == 200


def test_half_closed_client_gets_every_complete_request_answered(gw: Gateway) -> None:
    """Requests, then shutdown(SHUT_WR) (as `nc -N` does): the answers still come back."""
    with Client.connect(gw) as client:
        client.send(request_bytes("GET", "/echo/1") + request_bytes("POST", "/echo/2", body=b"two"))
        client.sock.shutdown(socket.SHUT_WR)
        first, second = client.read_response(), client.read_response()
        assert echo_of(first)["path"] == "/echo/1"
        assert echo_of(second)["body"] == "two"
        assert client.closed_within(3.0)


# 4. Request bodies and flow control --------------------------------------------------


def test_content_length_body_arrives_whole(gw: Gateway) -> None:
    body = bytes(range(256)) * 40
    with Client.connect(gw) as client:
        seen = echo_of(client.request("POST", "/echo/cl", body=body))
    assert seen["body_length"] == len(body)
    assert seen["body"] == body.decode("latin-1")


def test_chunked_body_arrives_whole(gw: Gateway) -> None:
    chunked = b"5;name=value\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: dropped\r\n\r\n"
    with Client.connect(gw) as client:
        seen = echo_of(client.request("PUT", "/echo/chunked", "Transfer-Encoding: chunked\r\n", chunked))
        assert seen["body"] == "hello world!"
        assert seen["body_length"] == 12
        assert client.still_open()


H2C = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("split", [False, True], ids=["one-read", "body-later"])
def test_the_body_of_a_request_whose_upgrade_is_not_taken_arrives_whole(
    gw: Gateway, chunked: bool, split: bool
) -> None:
    """curl --http2 -d (and Java's HttpClient) offer h2c on a POST: served as HTTP/1.1, its body is the app's."""
    body = b"name=value&" * 500
    headers, payload = H2C, body
    if chunked:
        headers += "Transfer-Encoding: chunked\r\n"
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    data = request_bytes("POST", "/echo/h2c", headers, payload)
    cut = data.index(b"\r\n\r\n") + 4 + (20 if split else len(payload))
    with Client.connect(gw) as client:
        client.send(data[:cut])
        time.sleep(0.1)
        client.send(data[cut:])
        seen = echo_of(client.read_response())
    assert (seen["body_length"], seen["body"]) == (len(body), body.decode())


def test_chunked_body_sent_in_small_pieces_arrives_whole(gw: Gateway) -> None:
    pieces = [os.urandom(1000) for _ in range(50)]
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", "/digest", "Transfer-Encoding: chunked\r\n"))
        for piece in pieces:
            client.send(b"%x\r\n%b\r\n" % (len(piece), piece))
        client.send(b"0\r\n\r\n")
        seen = client.read_response().json()
    whole = b"".join(pieces)
    assert seen["length"] == len(whole)
    assert seen["sha256"] == hashlib.sha256(whole).hexdigest()


def test_large_body_arrives_intact(gw: Gateway) -> None:
    body = os.urandom(8 * MiB)
    response = httpx.post(gw.url + "/digest", content=body, timeout=10)
    seen = response.json()
    assert seen["length"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()
    # Flow control hands the body over in bounded pieces, never all at once.
    assert seen["messages"] > 1
    assert seen["largest"] <= 2 * MiB


def test_large_chunked_body_arrives_intact(gw: Gateway) -> None:
    body = os.urandom(8 * MiB)

    def pieces() -> Iterator[bytes]:
        for offset in range(0, len(body), 300_000):
            yield body[offset : offset + 300_000]

    response = httpx.post(gw.url + "/digest", content=pieces(), timeout=10)
    seen = response.json()
    assert seen["length"] == len(body)
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()


def kernel_receive_buffer_max() -> int:
    """The most a socket's receive buffer may autotune to (bytes the kernel holds, not us)."""
    return int(Path("/proc/sys/net/ipv4/tcp_rmem").read_text().split()[2])


def test_server_does_not_read_ahead_of_a_slow_reader(gw: Gateway, tmp_path: Path) -> None:
    """The app takes ~0.5 MiB every 0.5 s; the server must not buffer the rest of the body.

    The body is larger than what the kernel may buffer for the server's socket, so
    a server reading ahead without bound would let the client send all of it.
    """
    log = tmp_path / "slowread.log"
    kernel = kernel_receive_buffer_max()
    total = kernel + 16 * MiB
    body = b"b" * total
    rss_before = rss_kib(gw.proc.pid)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    sock.settimeout(5)
    sock.connect(gw.address)
    with Client(sock) as client:
        client.send(request_bytes("POST", f"/slowread?delay=0.5&log={log}", f"Content-Length: {total}\r\n"))
        sock.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 1.5
        while sent < total and time.monotonic() < deadline:
            try:
                sent += sock.send(body[sent : sent + 65536])
            except BlockingIOError:
                time.sleep(0.005)
        consumed = int(log.read_text().split()[-1]) if log.exists() and log.read_text() else 0
        rss_growth = rss_kib(gw.proc.pid) - rss_before
    assert sent < total, "the whole body went out in 1.5 s although the app reads ~1 MiB/s"
    # What the client got rid of but the app has not taken sits in kernel buffers (which
    # autotune up to tcp_rmem's maximum) and the server's bounded read-ahead.
    assert sent - consumed < kernel + 4 * MiB, (sent, consumed, kernel)
    assert rss_growth < 12 * 1024, f"server RSS grew by {rss_growth} KiB ({sent=}, {consumed=})"


# 5. Expect: 100-continue ---------------------------------------------------------------


def test_100_continue_is_sent_when_the_app_first_reads(gw: Gateway, tmp_path: Path) -> None:
    log = tmp_path / "late-read.log"
    body = b"x" * 1000
    with Client.connect(gw) as client:
        started = time.monotonic()
        client.send(
            request_bytes(
                "POST", f"/late-read?delay=0.5&log={log}", f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n"
            )
        )
        _, _, _, head = client.read_head()
        waited = time.monotonic() - started
        assert head == b"HTTP/1.1 100 Continue", head
        assert waited >= 0.4, f"100 Continue came {waited:.2f}s after the head, before the app read"
        assert "receive" in log.read_text()
        client.send(body)
        response = client.read_response("POST")
        assert response.status == 200
        assert response.body == b"got 1000"
        assert response.header(b"connection") is None
        assert client.still_open()


def test_no_100_continue_for_http_1_0(gw: Gateway, tmp_path: Path) -> None:
    """RFC 9110 §10.1.1: an HTTP/1.0 request's 100-continue is ignored; a 1.0 client has no 1xx."""
    log = tmp_path / "late-read.log"
    with Client.connect(gw) as client:
        headers = "Expect: 100-continue\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
        client.send(request_bytes("POST", f"/late-read?delay=0.2&log={log}", headers, version="1.0") + b"hello")
        response = client.read_response("POST", skip_informational=False)
        assert (response.status, response.body) == (200, b"got 5"), response.head


def test_no_100_continue_when_the_app_answers_without_reading(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", "/noread", "Expect: 100-continue\r\nContent-Length: 100000\r\n"))
        response = client.read_response("POST", skip_informational=False)
        assert response.status == 200, response.head  # no "100 Continue" came first
        assert response.body == b"not reading your body"
        # The body was never asked for: the connection cannot be reused unless the
        # server says so, and what it says must match what it does.
        if response.header(b"connection") == b"close":
            assert client.closed_within(2.0)
        else:
            assert not client.closed_within(0.3), (
                "server closed the connection after a response that did not say 'connection: close'"
            )
            assert client.still_open()


def test_app_answering_without_reading_a_sent_body_is_consistent(gw: Gateway) -> None:
    """A body the app never reads: the client still gets the whole response, framed honestly."""
    body = b"z" * (2 * MiB)
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", "/noread", f"Content-Length: {len(body)}\r\n"))
        client.sock.settimeout(5)
        with contextlib.suppress(OSError):
            client.send(body)
        response = client.read_response("POST")
        assert response.status == 200
        assert response.body == b"not reading your body"
        if response.header(b"connection") == b"close":
            assert client.closed_within(3.0)
        else:
            assert client.still_open()


def test_app_answering_after_reading_part_of_a_body_is_consistent(gw: Gateway) -> None:
    """The app takes the first piece of an 8 MiB body, then answers: framing stays honest."""
    body = b"p" * (8 * MiB)
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", "/read-once", f"Content-Length: {len(body)}\r\n"))
        client.sock.settimeout(3)
        with contextlib.suppress(OSError):
            client.send(body)
        client.sock.settimeout(5)
        response = client.read_response("POST")
        assert response.status == 200
        assert response.body.startswith(b"read ")
        if response.header(b"connection") == b"close":
            assert client.closed_within(3.0)
        else:
            assert not client.closed_within(0.5), (
                "server closed the connection after a response that did not say 'connection: close'"
            )
            assert client.still_open()


# 6. Response framing -------------------------------------------------------------------


def test_single_body_message_gets_content_length(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/fixed")
    assert response.header(b"content-length") == b"11"
    assert response.header(b"transfer-encoding") is None
    assert response.body == b"hello world"


def test_several_body_messages_are_chunked_on_http11(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/parts?n=3")
        assert response.header(b"transfer-encoding") == b"chunked"
        assert response.header(b"content-length") is None
        assert response.chunks == [b"part0", b"part1", b"part2"]
        assert client.still_open()


def test_several_body_messages_are_close_delimited_on_http10(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/parts?n=3", "Connection: keep-alive\r\n", version="1.0")
        assert response.header(b"transfer-encoding") is None
        assert response.header(b"content-length") is None
        assert response.header(b"connection") == b"close"
        assert response.body == b"part0part1part2"  # read until the server closed


def test_app_content_length_is_respected(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/sized")
        assert response.header(b"content-length") == b"10"
        assert response.header(b"transfer-encoding") is None
        assert response.body == b"0123456789"
        assert client.still_open()


@pytest.mark.parametrize("length, body", [("10", "hello"), ("3", "hello")], ids=["shorter", "longer"])
def test_a_whole_body_that_belies_its_content_length_gets_a_500(gw: Gateway, length: str, body: str) -> None:
    """Nothing is written yet when the one body message comes: a clear 500 beats a cut or a hanging client."""
    with Client.connect(gw) as client:
        response = client.request("GET", f"/declared?length={length}&body={body}")
        assert response.status == 500
        assert response.header(b"connection") == b"close"
    longer = "longer" if int(length) < len(body) else "shorter"
    gw.wait_for_log(f"The response body (5 bytes) is {longer} than its Content-Length ({length})")
    with Client.connect(gw) as client:
        assert client.request("GET", "/declared?length=5&body=hello").body == b"hello"


def test_tasks_sending_at_once_to_a_slow_reader_all_finish(gw: Gateway) -> None:
    """Several tasks awaiting send() on a paused connection: each is woken, none waits for ever."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(gw.address)
    with sock:
        sock.sendall(b"GET /senders?k=4&n=40 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        time.sleep(0.5)  # the sends fill the buffers and wait
        response = read_response(sock, timeout=10)
    body = response.partition(b"\r\n\r\n")[2]
    assert response.startswith(b"HTTP/1.1 200 ") and body.endswith(b"0\r\n\r\n"), response[-200:]
    for letter in b"abcd":
        assert body.count(bytes([letter]) * 1024) >= 40 * 64, f"{chr(letter)}'s pieces are missing"


def test_date_is_the_current_second(gw: Gateway) -> None:
    """Refreshed just past each second: never a second behind, so a file's Last-Modified cannot pass it."""
    with Client.connect(gw) as client:
        for _ in range(12):  # spread over more than a second: every phase of the ticker
            asked = time.time()
            response = client.request("GET", "/fixed")
            answered = time.time()
            date = email.utils.parsedate_to_datetime(response.header(b"date").decode()).timestamp()
            # The second the request was asked in, or later; the ticker may run up to 0.25 s late on a busy machine.
            assert int(asked - 0.25) <= date <= answered, f"Date {date} for a request between {asked} and {answered}"
            time.sleep(0.11)


@pytest.mark.parametrize("kind", ["space", "colon", "empty", "nul"])
def test_a_header_field_no_server_may_send_is_a_500(gw: Gateway, kind: str) -> None:
    """RFC 9110 §5.5, §5.6.2 (h11 refuses the same): a name that is not a token, a NUL in a value."""
    with Client.connect(gw) as client:
        response = client.request("GET", f"/bad-field?kind={kind}")
        assert response.status == 500
        assert b"must not be sent" not in response.body
    gw.wait_for_log("A response header")


def test_a_content_length_that_is_not_a_number_is_a_500(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/bad-field?kind=length")
        assert response.status == 500 and b"must not be sent" not in response.body
    gw.wait_for_log("The response's Content-Length is not a number: b'abc'")


@pytest.mark.parametrize("status", [103, 42, 1000])
def test_a_status_that_is_not_final_is_a_500_and_the_next_response_keeps_its_place(gw: Gateway, status: int) -> None:
    """A 1xx written as the answer would make the client take the next response as this one's (RFC 9110 §15.2)."""
    with Client.connect(gw) as client:
        client.send(request_bytes("GET", f"/status/{status}") + request_bytes("GET", "/status/200"))
        first = client.read_response(skip_informational=False)
        assert first.status == 500 and b"must not be sent" not in first.body
        assert client.closed_within(2) or client.read_response().status == 200
    gw.wait_for_log(f"The response status {status} is not a final status code")


def test_a_204_never_carries_content_length_a_304_keeps_it(gw: Gateway) -> None:
    """RFC 9110 §8.6: no Content-Length in a 204; a 304's is the representation's, and stays."""
    with Client.connect(gw) as client:
        no_content = client.request("GET", "/declared?status=204&length=16&body=")
        assert (no_content.status, no_content.header(b"content-length")) == (204, None)
        not_modified = client.request("GET", "/declared?status=304&length=16&body=")
        assert (not_modified.status, not_modified.header(b"content-length")) == (304, b"16")
        assert client.still_open() and client.buffer == b""


def test_head_gets_the_get_headers_and_no_body(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        get = client.request("GET", "/fixed")
        head = client.request("HEAD", "/fixed")
        assert head.status == 200
        assert head.header(b"content-length") == get.header(b"content-length") == b"11"
        assert head.header(b"content-type") == get.header(b"content-type")
        streamed = client.request("HEAD", "/parts?n=3")
        assert streamed.status == 200
        # No body bytes may follow a HEAD response: the next response parses cleanly.
        assert client.still_open()
        assert client.buffer == b""


def test_204_and_304_have_no_body(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        no_content = client.request("GET", "/status/204")
        assert no_content.status == 204
        assert no_content.header(b"content-length") is None
        assert no_content.header(b"transfer-encoding") is None
        not_modified = client.request("GET", "/status/304")
        assert not_modified.status == 304
        assert not_modified.header(b"etag") == b'"v1"'
        assert not_modified.header(b"transfer-encoding") is None
        assert client.still_open()
        assert b"must not be sent" not in client.buffer


def test_httpx_sees_the_same_framing(gw: Gateway) -> None:
    with httpx.Client(base_url=gw.url, timeout=5) as http:
        streamed = http.get("/stream?n=4&size=1000")
        fixed = http.get("/fixed")
        head = http.head("/fixed")
    assert streamed.content == b"A" * 1000 + b"B" * 1000 + b"C" * 1000 + b"D" * 1000
    assert streamed.headers["transfer-encoding"] == "chunked"
    assert fixed.text == "hello world"
    assert head.headers["content-length"] == "11"
    assert head.content == b""


# 7. http.disconnect ---------------------------------------------------------------------


def test_app_waiting_after_the_body_sees_http_disconnect(gw: Gateway, tmp_path: Path) -> None:
    """A long-poll style app: body read, now waiting on receive() for the client to leave."""
    log = tmp_path / "disconnect.log"
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", f"/wait-disconnect?max=2&log={log}", body=b"payload"))
        wait_for_file(log, lambda text: "waiting" in text)
    text = wait_for_file(log, lambda text: len(text.split()) >= 2, timeout=3.0)
    assert text.split() == ["waiting", "http.disconnect"]


def test_app_that_stops_on_a_half_close_is_not_an_error(gw: Gateway, tmp_path: Path) -> None:
    """A client that shuts its sending side: the app sees http.disconnect and returns, quietly."""
    log = tmp_path / "half-close.log"
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", f"/wait-disconnect?max=2&log={log}", body=b"payload"))
        wait_for_file(log, lambda text: "waiting" in text)
        client.sock.shutdown(socket.SHUT_WR)
        assert b"500" not in read_response(client.sock, timeout=3.0), "no error page for an app that gave up"
    assert wait_for_file(log, lambda text: len(text.split()) >= 2).split() == ["waiting", "http.disconnect"]
    time.sleep(0.3)
    assert "without completing its response" not in gw.stderr()


def test_app_waiting_for_more_body_sees_http_disconnect(gw: Gateway, tmp_path: Path) -> None:
    """The client leaves halfway through a body while the app waits in receive()."""
    log = tmp_path / "mid-body.log"
    with Client.connect(gw) as client:
        client.send(request_bytes("POST", f"/wait-disconnect?log={log}", "Content-Length: 1000\r\n", b"x" * 10))
        time.sleep(0.2)
    text = wait_for_file(log, lambda text: text.strip() != "", timeout=3.0)
    assert text.split() == ["disconnect-during-body"]


def test_slow_app_sees_the_disconnect_when_it_answers(gw: Gateway, tmp_path: Path) -> None:
    """The client leaves while the app sleeps: then receive() says so and send() raises."""
    log = tmp_path / "sleep-send.log"
    with Client.connect(gw) as client:
        client.send(request_bytes("GET", f"/sleep-send?s=0.3&max=2&log={log}"))
        time.sleep(0.1)
    text = wait_for_file(log, lambda text: text.rstrip().endswith(("sent", "(OSError)")), timeout=4.0)
    lines = text.splitlines()
    assert lines[:2] == ["http.request", "http.disconnect"], lines
    # Once the server knows the client left, send() raises; a write that races the
    # client's reset may still pass, so both are accepted here.
    assert lines[2:] in (["send raised ClientDisconnect (OSError)"], ["sent"]), lines


def test_server_still_serves_after_disconnects(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        assert client.still_open()


# 8. Backpressure to a client that does not read ------------------------------------------


def test_slow_reader_bounds_server_memory_and_blocks_the_app(gw: Gateway, tmp_path: Path) -> None:
    log = tmp_path / "produce.log"
    chunk, count = 64 * 1024, 3200  # 200 MiB
    rss_before = rss_kib(gw.proc.pid)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    sock.settimeout(10)
    sock.connect(gw.address)
    with Client(sock) as client:
        client.send(request_bytes("GET", f"/produce?n={count}&size={chunk}&log={log}"))

        def sent_chunks() -> int:
            text = log.read_text() if log.exists() else ""
            return int(text.split()[0]) if text.strip() else 0

        wait_for_file(log, lambda text: text.strip() != "")
        time.sleep(1.0)
        first = sent_chunks()
        time.sleep(0.5)
        second = sent_chunks()
        rss_growth = rss_kib(gw.proc.pid) - rss_before
        assert second == first, f"send() kept returning while nobody read: {first} then {second} chunks"
        assert second * chunk < 50 * MiB, f"{second} chunks went out to a client that reads nothing"
        assert rss_growth < 50 * 1024, f"server RSS grew by {rss_growth} KiB"
        # Reading resumes the app; the whole 200 MiB arrives, correctly framed.
        status, _, headers, _ = client.read_head()
        assert status == 200
        assert (b"transfer-encoding", b"chunked") in headers
        framed = b"%x\r\n" % chunk
        expected = count * (len(framed) + chunk + 2) + len(b"0\r\n\r\n")
        received = len(client.buffer)
        tail = client.buffer[-16:]
        client.buffer = b""
        deadline = time.monotonic() + 15
        while received < expected and time.monotonic() < deadline:
            data = sock.recv(1 << 20)
            if not data:
                break
            received += len(data)
            tail = (tail + data)[-16:]
        assert received == expected
        assert tail.endswith(b"x\r\n0\r\n\r\n")
    assert wait_for_file(log, lambda text: "done" in text).startswith(f"{count:010d}")


# 9. The scope ------------------------------------------------------------------------------


def test_scope_as_the_app_sees_it(gw: Gateway) -> None:
    headers = (
        "User-Agent: protocol-test/1.0\r\n"
        "X-Mixed-Case: Keep  THIS  Value\r\n"
        "X-Repeated: first\r\n"
        "Accept: */*\r\n"
        "X-Repeated: second\r\n"
    )
    with Client.connect(gw) as client:
        seen = echo_of(client.request("GET", "/echo/a%20b%2Fc/%C3%A9?q=a%20b&x=1&x=2", headers))
        local_ip, local_port = client.sock.getsockname()[:2]
    assert seen["type"] == "http"
    assert seen["http_version"] == "1.1"
    assert seen["method"] == "GET"
    assert seen["scheme"] == "http"
    assert seen["path"] == "/echo/a b/c/é"
    assert seen["raw_path"] == "/echo/a%20b%2Fc/%C3%A9"
    assert seen["query_string"] == "q=a%20b&x=1&x=2"
    assert seen["root_path"] == ""
    assert seen["headers"] == [
        ["host", "test.local"],
        ["user-agent", "protocol-test/1.0"],
        ["x-mixed-case", "Keep  THIS  Value"],
        ["x-repeated", "first"],
        ["accept", "*/*"],
        ["x-repeated", "second"],
    ]
    assert seen["client"] == [local_ip, local_port]
    assert seen["server"] == ["127.0.0.1", gw.port]
    assert seen["state"] == ["protocol_apps_ready"]
    assert seen["asgi"]["version"] == "3.0"  # type: ignore[index]
    assert seen["extensions"] == ["http.response.pathsend"]


def test_scope_of_http10_post(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        seen = echo_of(client.request("POST", "/echo/", "Content-Type: text/plain\r\n", b"abc", version="1.0"))
    assert seen["http_version"] == "1.0"
    assert seen["method"] == "POST"
    assert seen["path"] == "/echo/"
    assert seen["query_string"] == ""
    assert seen["body"] == "abc"
    assert ["content-length", "3"] in seen["headers"]  # type: ignore[operator]


# 10. http.response.pathsend ---------------------------------------------------------------


def test_pathsend_sends_files_byte_exact(any_loop_gw: Gateway, files: dict[str, bytes]) -> None:
    with Client.connect(any_loop_gw) as client:
        for path, data in files.items():
            response = client.request("GET", f"/sendfile?path={path}")
            assert response.status == 200
            assert response.header(b"content-length") == str(len(data)).encode()
            assert response.header(b"transfer-encoding") is None
            assert response.body == data
            head = client.request("HEAD", f"/sendfile?path={path}")
            assert head.header(b"content-length") == str(len(data)).encode()
        assert client.still_open()
        assert client.buffer == b""


def test_pathsend_to_a_slow_reader_is_byte_exact(any_loop_gw: Gateway, files: dict[str, bytes]) -> None:
    path, data = next((p, d) for p, d in files.items() if d)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.settimeout(5)
    sock.connect(any_loop_gw.address)
    with Client(sock) as client:
        client.send(request_bytes("GET", f"/sendfile?path={path}") + request_bytes("GET", "/fixed"))
        time.sleep(0.3)  # let the socket fill up so sendfile meets a full buffer
        response = client.read_response()
        assert response.header(b"content-length") == str(len(data)).encode()
        assert response.body == data
        assert client.read_response().body == b"hello world"


def test_pathsend_connections_leave_no_descriptor_behind(gw: Gateway, files: dict[str, bytes]) -> None:
    """Each connection keeps a dup of its socket for sendfile; it is closed with the connection."""
    path = next(p for p, d in files.items() if d)
    fds = Path(f"/proc/{gw.proc.pid}/fd")

    def send_on_new_connections(count: int) -> None:
        for _ in range(count):
            with Client.connect(gw) as client:
                client.send(request_bytes("GET", f"/sendfile?path={path}", "Connection: close\r\n"))
                assert len(client.read_response().body) == MiB
                assert client.closed_within(3.0)  # the dup does not hold the socket open

    send_on_new_connections(3)
    before = len(list(fds.iterdir()))
    send_on_new_connections(20)
    assert len(list(fds.iterdir())) <= before + 2


def test_pathsend_of_a_fifo_or_folder_fails_without_blocking(gw: Gateway, tmp_path: Path) -> None:
    """Opening a FIFO for reading would wait for a writer, with the whole event loop.

    The app started its response before the pathsend, so the failure cuts the connection.
    """
    os.mkfifo(tmp_path / "fifo")
    for target in (tmp_path / "fifo", tmp_path):
        with Client.connect(gw) as client:
            client.send(request_bytes("GET", f"/sendfile?path={target}"))
            assert client.closed_within(3.0)
    gw.wait_for_log("pathsend needs a regular file")
    with Client.connect(gw) as client:
        assert client.request("GET", "/fixed").body == b"hello world"


def test_pathsend_of_a_file_gone_is_a_404_on_a_connection_kept(gw: Gateway, tmp_path: Path) -> None:
    """As nginx answers a file it cannot find: the app's 200 headers give way, nothing was written yet."""
    (tmp_path / "plain").write_bytes(b"x")
    with Client.connect(gw) as client:
        for target in (tmp_path / "gone", tmp_path / "plain" / "below"):
            response = client.request("GET", f"/sendfile?path={target}")
            assert response.status == 404
            assert response.header(b"content-type") == b"text/plain; charset=utf-8"
            assert response.body == b"404 Not Found\n"
        head = client.request("HEAD", f"/sendfile?path={tmp_path / 'gone'}")
        assert head.status == 404
        assert head.body == b""
        assert client.request("GET", "/fixed").body == b"hello world"


# 11. Apps that raise -----------------------------------------------------------------------


def test_app_raising_before_the_response_gets_a_500(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        response = client.request("GET", "/raises/before")
        assert response.status == 500
        assert response.header(b"connection") == b"close"
        assert b"boom" not in response.body  # the traceback stays in the log
        assert client.closed_within(3.0)
    log = gw.wait_for_log("RuntimeError: boom before start")
    assert "Traceback (most recent call last)" in log
    # The access log names the request, and counts the page's bytes as for any response (it said "-").
    gw.wait_for_log(f'"GET /raises/before HTTP/1.1" 500 {len(response.body)} ', stream="stdout")
    with Client.connect(gw) as client:
        assert client.still_open()


def test_app_raising_after_the_response_started_closes_the_connection(gw: Gateway) -> None:
    with Client.connect(gw) as client:
        client.send(request_bytes("GET", "/raises/after"))
        with pytest.raises(Truncated) as truncated:
            client.read_response()
        assert truncated.value.received == b"partial"
    gw.wait_for_log("RuntimeError: boom after start")
    with Client.connect(gw) as client:
        assert client.still_open()
