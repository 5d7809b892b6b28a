"""Static files the core writes at once (gateway_respond_now) answer exactly as the ASGI path does.

One server, one tree, two vhosts: "fast" has a plain static route, so a
cached small file is written by the core without a task
(gateway/http/whole.py); "asgi" has the same route inside a limits stage,
which hides the fast path, so every request goes through the handler's
__call__. Each request is sent twice on a keep-alive connection (the first
fills the cache, the second is the fast one) and the two vhosts' answers must
match byte for byte, Date aside.
"""

from __future__ import annotations

import gzip
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

CONFIG = """
[[vhost]]
names = ["fast"]
  [[vhost.route]]
  path = "/"
  handler = "static"
  root = "{root}"
  max_age = 60

[[vhost]]
names = ["asgi"]
  [[vhost.route]]
  path = "/"
  handler = "static"
  root = "{root}"
  max_age = 60
  limits = {{ request_timeout = "60s" }}
"""
APP_JS = b"console.log('identity');\n" * 40
REQUESTS = [
    ("GET", "/hello.txt", {}),
    ("HEAD", "/hello.txt", {}),
    ("GET", "/", {}),
    ("GET", "/app.js", {"Accept-Encoding": "gzip, br"}),
    ("GET", "/app.js", {"Accept-Encoding": "gzip"}),
    ("HEAD", "/app.js", {"Accept-Encoding": "br;q=0, gzip"}),
    ("GET", "/app.js", {}),
    ("GET", "/hello.txt", {"Range": "bytes=0-3"}),
    ("GET", "/hello.txt", {"Range": "bytes=0-1,4-5"}),
    ("HEAD", "/hello.txt", {"Range": "bytes=0-3"}),
    ("GET", "/hello.txt", {"Range": "bytes=99-"}),
    ("GET", "/big.bin", {}),
    ("HEAD", "/big.bin", {}),
    ("GET", "/missing.txt", {}),
    ("POST", "/hello.txt", {"Content-Length": "0"}),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("whole")
    (folder / "hello.txt").write_bytes(b"hello, whole\n")
    (folder / "index.html").write_bytes(b"<h1>index</h1>\n")
    (folder / "app.js").write_bytes(APP_JS)
    (folder / "app.js.br").write_bytes(b"pretend-brotli")
    (folder / "app.js.gz").write_bytes(gzip.compress(APP_JS, mtime=0))
    (folder / "big.bin").write_bytes(os.urandom(200 * 1024))  # past SMALL_FILE: pathsend
    return folder


@pytest.fixture(scope="module", params=["default-loop", "asyncio-loop"])
def gw(root: Path, request: pytest.FixtureRequest) -> Iterator[Gateway]:
    """On uvloop the core sends files with os.sendfile itself; on plain asyncio through loop.sendfile."""
    loop = ("--loop", "asyncio") if request.param == "asyncio-loop" else ()
    with run_gateway(config_text=CONFIG.format(root=root), args=("--access-log", "-", *loop)) as gateway:
        yield gateway


def request(method: str, target: str, host: str, headers: dict[str, str], version: str = "1.1") -> bytes:
    lines = [f"{method} {target} HTTP/{version}", f"Host: {host}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class Reader:
    """Responses off one keep-alive connection, one at a time (pipelined ones included)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def more(self) -> None:
        data = self.sock.recv(65536)
        assert data, f"the server closed the connection; unread: {self.buffer[:200]!r}"
        self.buffer += data

    def answer(self, method: str) -> bytes:
        """The next response as bytes, its Date line blanked (and a multipart boundary, which is random)."""
        while b"\r\n\r\n" not in self.buffer:
            self.more()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = 0
        if method != "HEAD" and lines[0].split(b" ", 2)[1] != b"304":
            length = next((int(line[16:]) for line in lines if line.startswith(b"content-length: ")), 0)
        while len(self.buffer) < length:
            self.more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        lines = [b"date: -" if line.startswith(b"date: ") else line for line in lines]
        if b"content-type: multipart/byteranges" in head:
            return b"\r\n".join(line for line in lines if b"boundary" not in line)
        return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange_twice(gw: Gateway, host: str, method: str, target: str, headers: dict[str, str]) -> list[bytes]:
    with gw.connect() as sock:
        reader = Reader(sock)
        answers = []
        for _ in range(2):
            sock.sendall(request(method, target, host, headers))
            answers.append(reader.answer(method))
        return answers


@pytest.mark.parametrize(("method", "target", "headers"), REQUESTS)
def test_the_fast_answer_is_the_asgi_answer(gw: Gateway, method: str, target: str, headers: dict[str, str]) -> None:
    fast = exchange_twice(gw, "fast", method, target, headers)
    asgi = exchange_twice(gw, "asgi", method, target, headers)
    assert fast == asgi
    assert fast[0] == fast[1]


def test_validators_give_304_on_the_fast_path_too(gw: Gateway) -> None:
    first = exchange_twice(gw, "fast", "GET", "/hello.txt", {})[1]
    fields = dict(line.split(b": ", 1) for line in first.split(b"\r\n\r\n")[0].split(b"\r\n")[1:])
    for conditional in (
        {"If-None-Match": fields[b"etag"].decode()},
        {"If-Modified-Since": fields[b"last-modified"].decode()},
    ):
        fast = exchange_twice(gw, "fast", "GET", "/hello.txt", conditional)
        asgi = exchange_twice(gw, "asgi", "GET", "/hello.txt", conditional)
        assert fast[1].startswith(b"HTTP/1.1 304 Not Modified\r\n")
        assert b"content-length" not in fast[1]
        assert fast == asgi


def test_connection_close_and_http_1_0_on_the_fast_path(gw: Gateway) -> None:
    exchange_twice(gw, "fast", "GET", "/hello.txt", {})  # cached
    for version, headers, expected in (
        ("1.1", {"Connection": "close"}, b"connection: close\r\n"),
        ("1.0", {}, b"connection: close\r\n"),
        ("1.0", {"Connection": "keep-alive"}, b"connection: keep-alive\r\n"),
    ):
        with gw.connect() as sock:
            sock.sendall(request("GET", "/hello.txt", "fast", headers, version))
            answer = Reader(sock).answer("GET")
            assert expected in answer and answer.endswith(b"hello, whole\n")
            if expected == b"connection: close\r\n":
                sock.settimeout(5)
                assert sock.recv(100) == b"", "the server keeps a connection it said it would close"


def test_pipelined_requests_are_answered_in_order(gw: Gateway) -> None:
    exchange_twice(gw, "fast", "GET", "/hello.txt", {})
    targets = ["/hello.txt", "/big.bin", "/hello.txt", "/missing.txt", "/app.js"]
    with gw.connect() as sock:
        sock.sendall(b"".join(request("GET", target, "fast", {}) for target in targets))
        reader = Reader(sock)
        statuses = [reader.answer("GET").split(b" ", 2)[1] for _ in targets]
    assert statuses == [b"200", b"200", b"200", b"404", b"200"]


def test_a_changed_file_is_seen_within_a_second_or_so(gw: Gateway, root: Path) -> None:
    target = root / "changing.txt"
    target.write_bytes(b"version one\n")
    assert exchange_twice(gw, "fast", "GET", "/changing.txt", {})[1].endswith(b"version one\n")
    target.write_bytes(b"version two, longer\n")
    time.sleep(1.2)
    with gw.connect() as sock:
        sock.sendall(request("GET", "/changing.txt", "fast", {}))
        assert Reader(sock).answer("GET").endswith(b"version two, longer\n")
    target.unlink()
    time.sleep(1.2)
    with gw.connect() as sock:
        sock.sendall(request("GET", "/changing.txt", "fast", {}))
        assert Reader(sock).answer("GET").startswith(b"HTTP/1.1 404 ")


def test_a_large_file_deleted_before_its_recheck_is_a_404(gw: Gateway, root: Path) -> None:
    """Its headers are cached for up to a second; the open that fails turns them into nginx's 404."""
    target = root / "deleted.bin"
    for host in ("fast", "asgi"):
        target.write_bytes(os.urandom(200 * 1024))
        with gw.connect() as sock:
            reader = Reader(sock)
            sock.sendall(request("HEAD", "/deleted.bin", host, {}))  # cached now
            assert reader.answer("HEAD").startswith(b"HTTP/1.1 200 OK\r\n")
            target.unlink()
            sock.sendall(request("GET", "/deleted.bin", host, {}) + request("GET", "/hello.txt", host, {}))
            assert reader.answer("GET").startswith(b"HTTP/1.1 404 Not Found\r\n"), host
            assert reader.answer("GET").endswith(b"hello, whole\n")  # on the same connection


def test_fast_answers_are_in_the_access_log(gw: Gateway) -> None:
    exchange_twice(gw, "fast", "GET", "/index.html?logged=1", {})  # the second one answered at once
    line = '"GET /index.html?logged=1 HTTP/1.1" 200 15'
    deadline = time.monotonic() + 5  # the access log is flushed once a second
    while gw.stdout().count(line) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gw.stdout().count(line) == 2, gw.stdout()[-2000:]


def test_a_vhosts_own_access_log_is_written_when_the_servers_is_off(root: Path, tmp_path: Path) -> None:
    """With nothing to log server-wide the core skips the log call; a vhost's own log must still get its lines."""
    log = tmp_path / "fast.log"
    config = CONFIG.format(root=root).replace('names = ["fast"]', f'names = ["fast"]\naccess_log = "{log}"')
    with run_gateway(config_text=config, args=("--access-log", "off")) as gateway:
        exchange_twice(gateway, "fast", "GET", "/index.html?own=1", {})  # the second one answered at once
        exchange_twice(gateway, "asgi", "GET", "/index.html?own=2", {})  # a vhost without a log of its own
        exchange_twice(gateway, "fast", "POST", "/index.html?own=3", {"Content-Length": "0"})  # through a task
    text = log.read_text()  # flushed at shutdown
    assert text.count('"GET /index.html?own=1 HTTP/1.1" 200 15') == 2, text
    assert text.count('"POST /index.html?own=3 HTTP/1.1" 405') == 2, text
    assert "own=2" not in text and "own=2" not in gateway.stdout()


def test_a_large_file_to_a_slow_reader_arrives_whole_then_the_next_answer(gw: Gateway, root: Path) -> None:
    """Past what the socket takes at once, the cycle's task sends the rest as the client reads."""
    data = os.urandom(4 << 20)
    (root / "huge.bin").write_bytes(data)
    exchange_twice(gw, "fast", "HEAD", "/huge.bin", {})  # cached (its headers; the bytes stay on disk)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    sock.connect(gw.address)
    with sock:
        sock.sendall(request("GET", "/huge.bin", "fast", {}) + request("GET", "/hello.txt", "fast", {}))
        time.sleep(0.3)  # the socket fills: sendfile meets a full buffer
        reader = Reader(sock)
        assert reader.answer("GET").endswith(b"\r\n\r\n" + data)
        assert reader.answer("GET").endswith(b"hello, whole\n")


@pytest.mark.parametrize("host", ["fast", "asgi"])
def test_clients_leaving_mid_file_leave_no_descriptor_behind(gw: Gateway, root: Path, host: str) -> None:
    (root / "leave.bin").write_bytes(os.urandom(8 << 20))
    exchange_twice(gw, host, "HEAD", "/leave.bin", {})
    fds = Path(f"/proc/{gw.proc.pid}/fd")
    before = len(list(fds.iterdir()))
    for _ in range(10):
        with gw.connect() as sock:
            sock.sendall(request("GET", "/leave.bin", host, {}))
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 OK\r\n")
    time.sleep(0.5)
    assert len(list(fds.iterdir())) <= before + 1
    assert exchange_twice(gw, "fast", "GET", "/hello.txt", {})[1].endswith(b"hello, whole\n")
