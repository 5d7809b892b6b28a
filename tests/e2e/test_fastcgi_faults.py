"""A FastCGI server that misbehaves on purpose: every fault is a 502/503/504 or a cut response, never a crash.

The fake server (a thread on a loopback port) reads one request and answers
according to the script's name.
"""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters._fastcgi_records import (
    BEGIN_REQUEST,
    END_REQUEST,
    OVERLOADED,
    PARAMS,
    STDIN,
    STDOUT,
    RecordReader,
    decode_pairs,
)
from tests.support.server import Gateway, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
SCRIPTS = (
    "garbage",
    "close",
    "cut",
    "overloaded",
    "badhead",
    "silent",
    "good",
    "wrongid",
    "recycled",
    "late",
    "trailing",
)


def record(record_type: int, content: bytes, request_id: int = 1) -> bytes:
    return (
        bytes([1, record_type, request_id >> 8, request_id & 255, len(content) >> 8, len(content) & 255, 0, 0])
        + content
    )


def end(protocol_status: int = 0) -> bytes:
    return record(END_REQUEST, bytes([0, 0, 0, 0, protocol_status, 0, 0, 0]))


ANSWERS: dict[str, bytes | None] = {
    "garbage": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    "close": b"",
    "cut": record(STDOUT, b"Content-Type: text/plain\r\n\r\n" + b"x" * 1000),
    "overloaded": end(OVERLOADED),
    "badhead": record(STDOUT, b"this is not a header\r\n\r\nbody") + end(),
    "silent": None,
    "good": record(STDOUT, b"Status: 201 Created\r\nContent-Type: text/plain\r\n\r\nfine") + end(),
    "wrongid": record(STDOUT, b"Content-Type: text/plain\r\n\r\nother", request_id=7) + end(),
    "recycled": record(STDOUT, b"Content-Type: text/plain\r\n\r\nfresh") + end(),
    "late": record(STDOUT, b"Content-Type: text/plain\r\n\r\nfirst") + end(),
    # Whole and partial records after END_REQUEST, in the same write.
    "trailing": record(STDOUT, b"Content-Type: text/plain\r\n\r\nfirst") + end() + record(STDOUT, b"x")[:5],
}
# After answering "late", records no request asked for, sent on the kept connection once it is idle.
STALE = record(STDOUT, b"Status: 302 Found\r\nLocation: http://evil.example/\r\n\r\nSTALE") + end()
RECYCLED_AFTER = 2  # "recycled" on a kept connection: answered twice, then closed unanswered (pm.max_requests)
ENDS_CONNECTION = {"garbage", "close", "cut"}


class FakeFastCgi(socketserver.BaseRequestHandler):
    """Answers by the script's name; with FCGI_KEEP_CONN it reads the next request, as php-cgi does."""

    def handle(self) -> None:
        reader = RecordReader()
        answered = 0
        while True:
            request = self.read_request(reader)
            if request is None:
                return
            script, keep_conn = request
            if script == "recycled" and answered >= RECYCLED_AFTER:
                return  # as php-fpm's worker at pm.max_requests: the connection closes, the request never runs
            answered += 1
            answer = ANSWERS[script]
            if answer is None:
                time.sleep(3)
                return
            self.request.sendall(answer)
            if script == "late":
                time.sleep(0.3)
                self.request.sendall(STALE)
            if not keep_conn or script in ENDS_CONNECTION:
                return

    def read_request(self, reader: RecordReader) -> tuple[str, bool] | None:
        params = b""
        keep_conn = False
        while True:
            data = self.request.recv(65536)
            if not data:
                return None
            for item in reader.feed(data):
                if item.type == BEGIN_REQUEST:
                    keep_conn = bool(item.content[2] & 1)
                elif item.type == PARAMS:
                    params += item.content
                elif item.type == STDIN and not item.content:
                    name = dict(decode_pairs(params))[b"SCRIPT_NAME"].decode().strip("/").removesuffix(".php")
                    return name, keep_conn


@pytest.fixture(scope="module")
def backend() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), FakeFastCgi)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module", params=[False, True], ids=["new-connections", "keep-conn"])
def gateway(
    backend: int, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Gateway]:
    """Both ways to the server: a connection per request, and kept ones (answered without a task when whole)."""
    root = tmp_path_factory.mktemp("fcgi")
    (root / "down").mkdir()
    for name in SCRIPTS:
        (root / f"{name}.php").write_text("<?php // answered by the fake server")
        (root / "down" / f"{name}.php").write_text("<?php // the route's root maps the whole path")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]  # nothing listens there once the probe closes
    config = f"""
[limits]
request_timeout = 1

[[vhost]]
names = ["fake.test"]
  [[vhost.route]]
  path = "/down/"
  handler = "fastcgi"
  address = "127.0.0.1:{closed_port}"
  root = "{root}"
  connect_timeout = 0.3
  [[vhost.route]]
  path = "/"
  handler = "fastcgi"
  address = "127.0.0.1:{backend}"
  root = "{root}"
  keep_conn = {str(request.param).lower()}
"""
    with run_gateway(config_text=config) as server:
        yield server


def get(gateway: Gateway, path: str) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, headers={"host": "fake.test"}, timeout=10) as http:
        return http.get(path)


@pytest.mark.parametrize(
    ("script", "status", "logged"),
    [
        ("garbage", 502, "malformed FastCGI"),
        ("close", 502, "closed the connection without answering"),
        ("overloaded", 503, "overloaded"),
        ("badhead", 502, "not a header line"),
        ("wrongid", 502, "request id 7"),
        ("silent", 504, None),
    ],
)
def test_backend_faults_become_gateway_errors(gateway: Gateway, script: str, status: int, logged: str | None) -> None:
    response = get(gateway, f"/{script}.php")
    assert response.status_code == status
    if logged is not None:
        gateway.wait_for_log(logged)
    assert get(gateway, "/good.php").status_code == 201, "the gateway keeps serving"


def test_response_cut_by_the_backend_closes_the_client_connection(gateway: Gateway) -> None:
    with socket.create_connection(gateway.address) as sock:
        sock.sendall(b"GET /cut.php HTTP/1.1\r\nHost: fake.test\r\n\r\n")
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 200")
    assert b"0\r\n\r\n" not in response, "a cut response must not look complete"
    gateway.wait_for_log("the response was cut short")


def test_unreachable_server_is_a_502_after_connect_timeout(gateway: Gateway) -> None:
    started = time.monotonic()
    response = get(gateway, "/down/good.php")
    assert response.status_code == 502
    assert time.monotonic() - started < 2
    gateway.wait_for_log("cannot connect to the FastCGI server")


def test_bad_gateway_page_is_plain_and_says_where_to_look(gateway: Gateway) -> None:
    response = get(gateway, "/garbage.php")
    assert response.headers["content-type"].startswith("text/plain")
    assert "error log" in response.text
    assert Path(gateway.workdir / "stderr.log").exists()


def test_a_kept_connection_the_server_recycled_is_retried_on_a_new_one(gateway: Gateway) -> None:
    """php-fpm closes a worker's kept connection at pm.max_requests; the request sent on it never ran (nginx
    retries such a cached connection): every request is answered, none is a 502."""
    statuses = [get(gateway, "/recycled.php").status_code for _ in range(7)]
    assert statuses == [200] * 7


def test_records_sent_on_an_idle_connection_answer_no_later_request(gateway: Gateway) -> None:
    """Every request is id 1: records kept from an idle connection would be the next request's answer."""
    with httpx.Client(base_url=gateway.url, headers={"host": "fake.test"}, timeout=10) as http:
        assert http.get("/late.php").text == "first"
        time.sleep(0.6)  # the stale records have arrived on the idle connection
        response = http.get("/good.php")
    assert (response.status_code, response.text) == (201, "fine")


def test_bytes_after_the_end_of_a_response_answer_no_later_request(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.url, headers={"host": "fake.test"}, timeout=10) as http:
        assert http.get("/trailing.php").text == "first"
        response = http.get("/good.php")
    assert (response.status_code, response.text) == (201, "fine")
