"""The proxy handler end to end: a gateway forwarding to real upstreams over loopback and a Unix socket.

Upstreams "a" and "b" are two more gateways serving tests/e2e/proxy_upstream.py
("b" also on a Unix socket); FaultServer is a raw HTTP/1.1 server that
misbehaves on purpose. Each vhost of the proxy's config is one situation.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.proxy_upstream import pattern
from tests.support.server import Gateway, read_one_response, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
UPSTREAM_APP = "tests.e2e.proxy_upstream:app"
MiB = 1024 * 1024


# The raw fault server -----------------------------------------------------------------


@dataclass
class FaultLog:
    connections: int = 0
    events: list[str] = field(default_factory=list)


FAULTS = FaultLog()


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%b\r\n%b" % (len(body), extra, body)


class FaultHandler(socketserver.StreamRequestHandler):
    """Reads requests one after another on a connection and answers by path."""

    def handle(self) -> None:
        FAULTS.connections += 1
        doomed = False
        idle_since = 0.0
        while True:
            line = self.rfile.readline()
            if not line:
                if idle_since:
                    idle = time.monotonic() - idle_since
                    FAULTS.events.append(f"idle connection closed by the proxy after {idle:.2f}s")
                return
            method, target, _ = line.split(b" ", 2)
            headers = self.read_headers()
            path = target.partition(b"?")[0].decode()
            if doomed:
                FAULTS.events.append(f"closed unanswered {method.decode()} {path}")
                return  # as an upstream whose keep-alive timeout just ran out
            if path == "/sink":
                time.sleep(1.0)  # the proxy must hold the upload back meanwhile, not buffer it
            body = self.read_body(headers)
            if not self.answer(path, method, body):
                return
            doomed = path == "/stale-first"
            idle_since = time.monotonic() if path == "/idle" else 0.0

    def read_headers(self) -> dict[bytes, bytes]:
        headers = {}
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return headers

    def read_body(self, headers: dict[bytes, bytes]) -> bytes:
        if b"content-length" in headers:
            return self.rfile.read(int(headers[b"content-length"]))
        if headers.get(b"transfer-encoding") != b"chunked":
            return b""
        digest, length = hashlib.sha256(), 0
        while (size := int(self.rfile.readline().split(b";")[0], 16)) > 0:
            digest.update(self.rfile.read(size))
            length += size
            self.rfile.readline()
        self.rfile.readline()
        return b"%d %s" % (length, digest.hexdigest().encode())

    def answer(self, path: str, method: bytes, body: bytes) -> bool:
        """Send the answer for path; False when the connection is to close."""
        send = self.wfile.write
        if path == "/garbage":
            send(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
            return False
        if path == "/eof":
            send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"until close;" * 5000)
            return False
        if path == "/continue":
            send(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + _ok(b"done"))
        elif path == "/hop":
            hop = b"Connection: keep-alive, X-Internal\r\nX-Internal: 1\r\nKeep-Alive: timeout=5\r\nServer: raw\r\n"
            send(_ok(b"hop", hop + b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nX-Kept: yes\r\n"))
        elif path == "/smuggle":  # a miscounted Content-Length: the echoed rest reads as a second response
            evil = b"HTTP/1.1 302 Found\r\nLocation: http://evil.example/\r\nSet-Cookie: s=attacker\r\n"
            send(_ok(b"hello") + evil + b"Content-Length: 3\r\n\r\nabc")
        elif path == "/trailers":
            head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            send(head + b"2\r\nok\r\n0\r\nX-Trailer: 1\r\nSet-Cookie: evil=1\r\n\r\n")
        elif path == "/gzip-coding":
            send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b coded bytes")
            return False
        elif path == "/closeafter":
            send(_ok(b"bye"))
            time.sleep(0.05)
            return False  # closes a connection the proxy may keep: it must notice
        elif path == "/hold":
            FAULTS.events.append("hold: request arrived")
            self.request.settimeout(5)
            FAULTS.events.append("hold: closed by the proxy" if not self.request.recv(1) else "hold: data")
            return False
        else:
            send(_ok(b"%s %s" % (method, body[:200])))
        return True


@pytest.fixture(scope="module")
def fault_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), FaultHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe closes


@pytest.fixture(scope="module")
def blackhole() -> Iterator[int]:
    """A port whose accept queue is full: a connect to it hangs (SYNs are dropped)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    listener.close()


# The gateways ---------------------------------------------------------------------------


@dataclass
class Site:
    proxy: Gateway
    a: Gateway
    b: Gateway
    b_socket: str
    fault_port: int
    down_port: int


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, fault_port: int, blackhole: int) -> Iterator[Site]:
    b_socket = str(tmp_path_factory.mktemp("proxy") / "b.sock")
    quiet = ("--access-log", "off")
    with (
        run_gateway(UPSTREAM_APP, env={"UPSTREAM_NAME": "a"}, args=quiet) as a,
        run_gateway(UPSTREAM_APP, env={"UPSTREAM_NAME": "b"}, args=("--listen", f"unix:{b_socket}", *quiet)) as b,
    ):
        down_port = closed_port()
        with run_gateway(config_text=proxy_config(a, b, b_socket, fault_port, down_port, blackhole)) as proxy:
            yield Site(proxy, a, b, b_socket, fault_port, down_port)


def proxy_config(a: Gateway, b: Gateway, b_socket: str, fault_port: int, down_port: int, blackhole: int) -> str:
    both = f'["{a.url}", "{b.url}"]'
    return f"""
[limits]
max_body_size = "512MiB"
request_timeout = 20

[[vhost]]
names = ["rr.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = {both}

[[vhost]]
names = ["lc.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = {both}
  balance = "least_connections"

[[vhost]]
names = ["one.test"]
  [[vhost.route]]
  path = "/api/"
  handler = "proxy"
  upstreams = ["{a.url}"]
  strip_prefix = true
  [[vhost.route]]
  path = "/kept/"
  handler = "proxy"
  upstreams = ["{a.url}"]
  preserve_host = true
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["{a.url}"]
  max_fails = 0

[[vhost]]
names = ["unix.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["unix:{b_socket}"]

[[vhost]]
names = ["down.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["http://127.0.0.1:{down_port}", "{a.url}"]
  fail_timeout = "30s"

[[vhost]]
names = ["refused.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["http://127.0.0.1:{closed_port()}"]

[[vhost]]
names = ["blackhole.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["http://127.0.0.1:{blackhole}"]
  connect_timeout = "300ms"

[[vhost]]
names = ["slow.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["{a.url}"]
  read_timeout = "500ms"
  max_fails = 0

[[vhost]]
names = ["busy.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["{a.url}"]
  max_connections = 1
  connect_timeout = "300ms"

[[vhost]]
names = ["idle.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["http://127.0.0.1:{fault_port}"]
  keepalive_timeout = "300ms"

[[vhost]]
names = ["health.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = {both}
  health = {{ path = "/health", interval = "100ms", timeout = "1s" }}

[[vhost]]
names = ["fault.test"]
  [[vhost.route]]
  path = "/"
  handler = "proxy"
  upstreams = ["http://127.0.0.1:{fault_port}"]
  read_timeout = "2s"
  max_fails = 0
"""


def client(site: Site, host: str) -> httpx.Client:
    return httpx.Client(base_url=site.proxy.url, headers={"host": host}, timeout=10)


def echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def seen(described: dict[str, Any], name: str) -> list[str]:
    return [value for field_name, value in described["headers"] if field_name == name]


def rss_mib(gateway: Gateway) -> float:
    for line in Path(f"/proc/{gateway.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


# Bodies and streaming ----------------------------------------------------------------------


def test_bodies_of_several_megabytes_round_trip_both_ways(site: Site) -> None:
    upload = os.urandom(6 * MiB)
    with client(site, "one.test") as http:
        sized = echo(http.post("/upload", content=upload))
        assert (sized["body_length"], sized["body_sha256"]) == (len(upload), hashlib.sha256(upload).hexdigest())
        assert seen(sized, "content-length") == [str(len(upload))]
        pieces = (upload[i : i + 100_000] for i in range(0, len(upload), 100_000))
        chunked = echo(http.post("/upload", content=pieces))
        assert (chunked["body_length"], chunked["body_sha256"]) == (len(upload), hashlib.sha256(upload).hexdigest())
        assert seen(chunked, "transfer-encoding") == ["chunked"], "a body without length goes up chunked"
        for query in ("size=7340033&chunk=65536", "size=7340033&chunk=1048576&length=1"):
            response = http.get(f"/download?{query}")
            assert response.status_code == 200
            assert hashlib.sha256(response.content).digest() == hashlib.sha256(pattern(7340033)).digest()
        head = http.head("/download?size=5000&length=1")
        assert head.headers["content-length"] == "5000" and head.content == b""


def test_the_client_sees_the_first_piece_before_the_upstream_finishes(site: Site) -> None:
    with socket.create_connection(site.proxy.address, timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /stream?n=3&delay=0.6 HTTP/1.1\r\nHost: one.test\r\n\r\n")
        first = sock.recv(65536)
        first_at = time.monotonic() - started
        rest = b""
        while not (first + rest).endswith(b"0\r\n\r\n"):
            rest += sock.recv(65536)
        total = time.monotonic() - started
    assert first.startswith(b"HTTP/1.1 200") and b"AAAA" in first
    assert first_at < 0.5 <= 1.1 < total, (first_at, total)
    assert b"CCCC" in rest


def test_a_slow_client_downloading_a_large_body_keeps_memory_bounded(site: Site) -> None:
    size = 256 * MiB
    before = rss_mib(site.proxy)
    peak = before
    received = 0
    with socket.create_connection(site.proxy.address, timeout=10) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /download?size=%d&chunk=1048576&length=1 HTTP/1.1\r\nHost: one.test\r\n\r\n" % size)
        time.sleep(1.0)  # not reading: the upstream is far faster than this client
        peak = max(peak, rss_mib(site.proxy))
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        received = len(head.partition(b"\r\n\r\n")[2])
        for step in range(1_000_000):
            data = sock.recv(1 << 20)
            if not data:
                break
            received += len(data)
            if received >= size:
                break
            if step % 64 == 0:
                peak = max(peak, rss_mib(site.proxy))
    assert received == size
    assert peak - before < 48, f"the proxy's RSS grew by {peak - before:.0f} MiB relaying {size // MiB} MiB"


def test_a_large_upload_to_a_slow_reader_keeps_memory_bounded(site: Site) -> None:
    size = 128 * MiB
    block = os.urandom(MiB)
    digest = hashlib.sha256()
    for _ in range(size // MiB):
        digest.update(block)
    before = rss_mib(site.proxy)
    peak = [before]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], rss_mib(site.proxy))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with client(site, "fault.test") as http:
            response = http.post("/sink", content=(block for _ in range(size // MiB)), timeout=30)
    finally:
        done.set()
        watcher.join()
    assert response.status_code == 200
    assert response.content == b"POST %d %s" % (size, digest.hexdigest().encode())
    assert peak[0] - before < 48, f"the proxy's RSS grew by {peak[0] - before:.0f} MiB for a {size // MiB} MiB upload"


# Headers ------------------------------------------------------------------------------------


def test_forwarding_headers_are_set_and_hop_by_hop_ones_removed(site: Site) -> None:
    sent = {
        "connection": "keep-alive, X-Secret",
        "x-secret": "hop",
        "keep-alive": "timeout=5",
        "te": "trailers",
        "proxy-authorization": "Basic dXNlcjpwYXNz",
        "proxy": "http://evil.test/",
        "x-forwarded-for": "192.0.2.1",
        "x-forwarded-host": "spoofed.test",
        "authorization": "Bearer kept",
    }
    with client(site, "one.test") as http:
        described = echo(http.get("/page", headers=sent))
    names = {name for name, _ in described["headers"]}
    assert not names & {"x-secret", "keep-alive", "te", "proxy-authorization", "proxy", "connection"}
    assert seen(described, "host") == [f"127.0.0.1:{site.a.port}"], "Host becomes the upstream's by default"
    assert seen(described, "x-forwarded-for") == ["192.0.2.1, 127.0.0.1"]
    assert seen(described, "x-forwarded-proto") == ["http"]
    assert seen(described, "x-forwarded-host") == ["one.test"]
    assert seen(described, "forwarded") == ["for=127.0.0.1;proto=http;host=one.test"]
    assert seen(described, "via") == ["1.1 gateway"]
    assert seen(described, "authorization") == ["Bearer kept"]


def test_an_upstreams_redirect_to_itself_names_the_client_side_address(site: Site) -> None:
    """nginx's proxy_redirect default: the upstream built it from its own Host, which the client cannot reach."""
    with client(site, "one.test") as http:
        stripped = http.get("/api/redirect")
        whole = http.get("/redirect")
        kept = http.get("/kept/redirect")  # preserve_host: the upstream built it from the client's Host already
    assert (stripped.status_code, stripped.headers.get("location")) == (302, "http://one.test/api/target?x=1"), (
        stripped.headers
    )
    assert whole.headers.get("location") == "http://one.test/target?x=1", (whole.status_code, whole.headers)
    assert kept.headers.get("location") == "http://one.test/target?x=1", (kept.status_code, kept.headers)


def test_preserve_host_and_strip_prefix(site: Site) -> None:
    with client(site, "one.test") as http:
        kept = echo(http.get("/kept/x%20y?q=1"))
        stripped = echo(http.get("/api/users/7?q=1"))
        bare = echo(http.get("/api"))
    assert seen(kept, "host") == ["one.test"]
    assert (kept["raw_path"], kept["query_string"]) == ("/kept/x%20y", "q=1"), "without strip_prefix the path is whole"
    assert (stripped["raw_path"], stripped["query_string"]) == ("/users/7", "q=1")
    assert seen(stripped, "x-forwarded-prefix") == ["/api"]
    assert bare["raw_path"] == "/"


def test_response_headers_keep_repeated_set_cookie_and_lose_hop_by_hop(site: Site) -> None:
    with socket.create_connection(site.proxy.address, timeout=5) as sock:
        sock.sendall(b"GET /cookies HTTP/1.1\r\nHost: one.test\r\n\r\n")
        head = read_one_response(sock)
        sock.sendall(b"GET /hop HTTP/1.1\r\nHost: fault.test\r\nConnection: close\r\n\r\n")
        hop = read_response(sock)
    assert head[0] == 200
    with client(site, "one.test") as http:
        cookies = http.get("/cookies").headers.get_list("set-cookie")
    assert cookies == ["a=1; Path=/", "b=2; Path=/", "c=3"]
    hop_head = hop.partition(b"\r\n\r\n")[0].lower()
    assert hop.endswith(b"hop") and b"x-kept: yes" in hop_head
    for gone in (b"x-internal", b"keep-alive", b"server: raw", b"1970"):
        assert gone not in hop_head
    assert hop_head.count(b"\r\ndate:") == 1 and hop_head.count(b"\r\nserver:") == 1


def test_a_unix_socket_upstream(site: Site) -> None:
    with client(site, "unix.test") as http:
        described = echo(http.post("/over/unix", content=b"hello"))
    assert described["upstream"] == "b" and described["body_length"] == 5
    assert seen(described, "host") == ["localhost"]


def test_informational_responses_read_to_close_and_no_content(site: Site) -> None:
    with client(site, "fault.test") as http:
        continued = http.get("/continue")
        until_close = http.get("/eof")
    assert (continued.status_code, continued.text) == (200, "done")
    assert until_close.status_code == 200 and until_close.content == b"until close;" * 5000


def test_expect_continue_is_answered_by_the_gateway_not_forwarded(site: Site) -> None:
    with socket.create_connection(site.proxy.address, timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: one.test\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        status, _, body = read_one_response(sock)
    assert status == 200
    assert b'"body_length": 5' in body and b"expect" not in body.lower()


def test_an_upgrade_to_another_protocol_is_refused_with_501(site: Site) -> None:
    with client(site, "one.test") as http:
        response = http.get("/ws", headers={"connection": "Upgrade", "upgrade": "irc/6.9"})
    assert response.status_code == 501 and "websocket" in response.text.lower()
    with client(site, "one.test") as http:  # a WebSocket upgrade without its handshake fields: the core's 400
        response = http.get("/ws", headers={"connection": "Upgrade", "upgrade": "websocket"})
    assert response.status_code == 400 and "Sec-WebSocket-Key" in response.text


# Balancing and health -----------------------------------------------------------------------


def test_round_robin_alternates_between_two_upstreams(site: Site) -> None:
    with client(site, "rr.test") as http:
        names = [echo(http.get("/who"))["upstream"] for _ in range(6)]
    assert set(names) == {"a", "b"}
    assert all(first != second for first, second in itertools.pairwise(names)), names


def test_least_connections_avoids_the_busy_upstream(site: Site) -> None:
    slow: list[httpx.Response] = []

    def slow_request() -> None:
        with client(site, "lc.test") as http:
            slow.append(http.get("/slow?s=1.2"))

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.3)
    with client(site, "lc.test") as http:
        quick = [http.get("/who").headers["x-upstream"] for _ in range(5)]
    thread.join()
    busy = slow[0].headers["x-upstream"]
    assert quick == [("b" if busy == "a" else "a")] * 5, (busy, quick)


def test_one_upstream_down_requests_succeed_and_it_is_skipped(site: Site) -> None:
    with client(site, "down.test") as http:
        names = [echo(http.get(f"/n{index}"))["upstream"] for index in range(6)]
    assert names == ["a"] * 6
    log = site.proxy.wait_for_log(f"upstream http://127.0.0.1:{site.down_port} is skipped for 30s")
    tries = [line for line in log.splitlines() if f"127.0.0.1:{site.down_port}: cannot connect" in line]
    assert len(tries) == 1, "within fail_timeout the failed upstream is not tried again"


def test_active_health_checks_take_an_upstream_out_and_bring_it_back(site: Site) -> None:
    label = f"proxy upstream {site.a.url}"
    try:
        assert httpx.get(f"{site.a.url}/health/fail").status_code == 503
        site.proxy.wait_for_log(f"{label} failed its health check (status 503)")
        with client(site, "health.test") as http:
            assert [echo(http.get("/h"))["upstream"] for _ in range(4)] == ["b"] * 4
    finally:
        httpx.get(f"{site.a.url}/health/ok")
    site.proxy.wait_for_log(f"{label} passed its health check")
    with client(site, "health.test") as http:
        assert "a" in [echo(http.get("/h"))["upstream"] for _ in range(4)]


# Failures -----------------------------------------------------------------------------------


def test_connect_refused_is_a_502(site: Site) -> None:
    with client(site, "refused.test") as http:
        response = http.get("/")
    assert response.status_code == 502 and response.text.startswith("Bad Gateway")
    site.proxy.wait_for_log("proxy GET /: upstream http://127.0.0.1:")


def test_a_connect_timeout_is_a_504(site: Site) -> None:
    started = time.monotonic()
    with client(site, "blackhole.test") as http:
        response = http.get("/")
    assert response.status_code == 504 and time.monotonic() - started < 3
    site.proxy.wait_for_log("no connection within connect_timeout (0.3s)")


def test_a_slow_upstream_is_a_504(site: Site) -> None:
    started = time.monotonic()
    with client(site, "slow.test") as http:
        response = http.get("/slow?s=2.5")
    assert response.status_code == 504 and time.monotonic() - started < 2
    site.proxy.wait_for_log("no response: read_timeout (0.5s) passed")


def test_beyond_max_connections_a_request_waits_then_gets_a_503(site: Site) -> None:
    slow: list[httpx.Response] = []

    def slow_request() -> None:
        with client(site, "busy.test") as http:
            slow.append(http.get("/slow?s=1"))

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.2)
    with client(site, "busy.test") as http:
        started = time.monotonic()
        refused = http.get("/who")
        waited = time.monotonic() - started
    thread.join()
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert 0.25 < waited < 0.9, waited
    assert slow[0].status_code == 200
    with client(site, "busy.test") as http:
        assert http.get("/who").status_code == 200, "the connection is free again"


def test_a_malformed_response_is_a_logged_502(site: Site) -> None:
    with client(site, "fault.test") as http:
        assert http.get("/garbage").status_code == 502
        assert http.get("/fine").text == "GET "
    site.proxy.wait_for_log("malformed response")


def test_bytes_after_a_complete_response_are_dropped_not_served_as_its_head(site: Site) -> None:
    """nginx: "upstream sent more data than specified"; parsed, they would replace the client's head."""
    with client(site, "fault.test") as http:
        response = http.get("/smuggle")
        assert (response.status_code, response.content) == (200, b"hello")
        assert "set-cookie" not in response.headers and "location" not in response.headers
        assert http.get("/fine").text == "GET ", "the next request is answered on a connection of its own"


def test_upstream_trailers_are_not_merged_into_the_head(site: Site) -> None:
    with client(site, "fault.test") as http:
        response = http.get("/trailers")
    assert (response.status_code, response.content) == (200, b"ok")
    assert "set-cookie" not in response.headers and "x-trailer" not in response.headers


def test_a_transfer_coding_the_proxy_cannot_decode_is_a_502(site: Site) -> None:
    with client(site, "fault.test") as http:
        response = http.get("/gzip-coding")
    assert response.status_code == 502 and b"coded bytes" not in response.content
    site.proxy.wait_for_log("a transfer coding this proxy cannot decode")


def test_an_upstream_closing_mid_body_cuts_the_client_connection(site: Site) -> None:
    with socket.create_connection(site.proxy.address, timeout=5) as sock:
        sock.sendall(b"GET /cut HTTP/1.1\r\nHost: one.test\r\n\r\n")
        response = read_response(sock)
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 1000000" in head.lower()
    assert len(body) < 1_000_000, "the client must see the response cut, not complete"
    site.proxy.wait_for_log("the response was cut short")


def test_a_client_that_leaves_closes_its_upstream_connection(site: Site) -> None:
    with socket.create_connection(site.proxy.address, timeout=5) as sock:
        sock.sendall(b"GET /hold HTTP/1.1\r\nHost: fault.test\r\n\r\n")
        deadline = time.monotonic() + 5
        while "hold: request arrived" not in FAULTS.events and time.monotonic() < deadline:
            time.sleep(0.02)
    deadline = time.monotonic() + 5
    while "hold: closed by the proxy" not in FAULTS.events and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "hold: closed by the proxy" in FAULTS.events


# Keep-alive -----------------------------------------------------------------------------------


def test_connections_to_the_upstream_are_reused(site: Site) -> None:
    with client(site, "one.test") as http:
        ports = {tuple(echo(http.get(f"/r{index}"))["client"]) for index in range(20)}
    assert len(ports) <= 2, f"20 requests used {len(ports)} upstream connections"


def test_idle_connections_are_closed_after_keepalive_timeout(site: Site) -> None:
    with client(site, "idle.test") as http:
        assert http.get("/idle").status_code == 200
    deadline = time.monotonic() + 3
    while not any(event.startswith("idle connection closed") for event in FAULTS.events):
        assert time.monotonic() < deadline, "the idle connection was never closed"
        time.sleep(0.02)
    event = next(event for event in FAULTS.events if event.startswith("idle connection closed"))
    assert 0.25 <= float(event.rpartition(" ")[2].rstrip("s")) < 1.5, event


def test_a_kept_connection_the_upstream_closed_is_detected(site: Site) -> None:
    with client(site, "fault.test") as http:
        assert http.get("/closeafter").text == "bye"
        time.sleep(0.3)  # the upstream has closed the kept connection by now
        assert http.post("/closeafter", content=b"data").text == "bye", "not sent on the closed connection"


def test_a_kept_connection_closed_under_a_request_is_retried_when_that_is_safe(site: Site) -> None:
    with client(site, "fault.test") as http:
        assert http.get("/stale-first").status_code == 200
        before = FAULTS.connections
        assert http.get("/after").text == "GET ", "an idempotent request is sent again on a new connection"
        assert FAULTS.connections == before + 1
        assert http.get("/stale-first").status_code == 200
        assert http.put("/after", content=b"small").text == "PUT small", "so is a PUT whose body was kept"
        assert http.get("/stale-first").status_code == 200
        refused = http.post("/after", content=b"once")
    assert refused.status_code == 502, "a POST that may have reached the upstream is never sent twice"
    assert FAULTS.events.count("closed unanswered GET /after") == 1
    assert FAULTS.events.count("closed unanswered POST /after") == 1
