"""Per-vhost and per-route limits: body size and request timeout, concurrency with a queue, rates per client."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import Gateway, read_response, run_gateway

pytestmark = [pytest.mark.e2e]
ECHO = "tests.support.apps:echo"
SLOW = "tests.support.apps:slow"
MiB = 1024 * 1024

CONFIG = f"""
[limits]
max_body_size = "1MiB"
request_timeout = 30

[[vhost]]
names = ["limits.test"]
  [[vhost.route]]
  path = "/upload/"
  handler = "asgi"
  app = "{ECHO}"
  limits = {{ max_body_size = "20MiB" }}
  [[vhost.route]]
  path = "/tiny/"
  handler = "asgi"
  app = "{ECHO}"
  limits = {{ max_body_size = "1KiB" }}
  [[vhost.route]]
  path = "/hurry/"
  handler = "asgi"
  app = "{SLOW}"
  limits = {{ request_timeout = 1 }}
  [[vhost.route]]
  path = "/busy/"
  handler = "asgi"
  app = "{SLOW}"
  limits = {{ max_concurrent = 2, queue = 1, queue_timeout = 10 }}
  [[vhost.route]]
  path = "/rated/"
  handler = "asgi"
  app = "{ECHO}"
  rate = {{ requests = 3, per = "1m" }}
  [[vhost.route]]
  path = "/slow/"
  handler = "asgi"
  app = "{SLOW}"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "{ECHO}"
"""


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with run_gateway(config_text=CONFIG) as server:
        yield server


def client(gateway: Gateway, source: str = "127.0.0.1") -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=gateway.url, headers={"host": "limits.test"}, transport=transport, timeout=20)


def post_raw(gateway: Gateway, path: str, head_extra: bytes, body: bytes) -> int:
    with socket.create_connection(gateway.address) as sock:
        head = b"POST " + path.encode() + b" HTTP/1.1\r\nHost: limits.test\r\nConnection: close\r\n"
        sock.sendall(head + head_extra + b"\r\n")
        with contextlib.suppress(OSError):  # the server refused and closed while the body was still going out
            sock.sendall(body)
        return int(read_response(sock).split(b" ", 2)[1])


def chunked(body: bytes, size: int = 64 * 1024) -> bytes:
    pieces = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size]) for i in range(0, len(body), size)]
    return b"".join(pieces) + b"0\r\n\r\n"


def test_an_upload_route_accepts_more_than_the_server(gateway: Gateway) -> None:
    body = os.urandom(5 * MiB)
    with client(gateway) as http:
        assert http.post("/upload/", content=body).json()["body_length"] == len(body)
        assert http.post("/", content=body).status_code == 413, "other routes keep the server's 1 MiB"


def test_chunked_bodies_are_held_to_each_route(gateway: Gateway) -> None:
    body = os.urandom(2 * MiB)
    assert post_raw(gateway, "/upload/", b"Transfer-Encoding: chunked\r\n", chunked(body)) == 200
    assert post_raw(gateway, "/", b"Transfer-Encoding: chunked\r\n", chunked(body)) == 413


def test_content_length_beyond_the_route_is_413_before_the_body(gateway: Gateway) -> None:
    assert post_raw(gateway, "/upload/", b"Content-Length: %d\r\n" % (30 * MiB), b"x" * 1000) == 413
    assert post_raw(gateway, "/tiny/", b"Content-Length: 2048\r\n", b"x" * 2048) == 413
    assert post_raw(gateway, "/tiny/", b"Content-Length: 1000\r\n", b"x" * 1000) == 200


def test_the_route_refuses_a_content_length_before_any_body_byte(gateway: Gateway) -> None:
    """The head alone is enough to refuse: the client need not send (nor the server read) 2 KiB for a 413."""
    with socket.create_connection(gateway.address, timeout=3) as sock:
        sock.sendall(b"POST /tiny/ HTTP/1.1\r\nHost: limits.test\r\nContent-Length: 2048\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 413 ")


def test_a_route_request_timeout(gateway: Gateway) -> None:
    with client(gateway) as http:
        started = time.monotonic()
        assert http.get("/hurry/", params={"s": "5"}).status_code == 504
        assert time.monotonic() - started < 3.5
        assert http.get("/slow/", params={"s": "1.5"}).status_code == 200, "other routes keep the server's 30 s"


def test_max_concurrent_with_a_bounded_queue(gateway: Gateway) -> None:
    def fetch(_: int) -> tuple[int, str | None]:
        with client(gateway) as http:
            response = http.get("/busy/", params={"s": "1.5"})
            return response.status_code, response.headers.get("retry-after")

    with concurrent.futures.ThreadPoolExecutor(5) as pool:
        results = list(pool.map(fetch, range(5)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 200, 200, 503, 503], "2 run, 1 waits its turn, 2 are turned away"
    assert all(retry == "1" for status, retry in results if status == 503)


def test_rate_per_client_address(gateway: Gateway) -> None:
    with client(gateway, "127.0.0.5") as http:
        statuses = [http.get("/rated/").status_code for _ in range(4)]
        refused = http.get("/rated/")
    assert statuses == [200, 200, 200, 429]
    assert 1 <= int(refused.headers["retry-after"]) <= 20
    with client(gateway, "127.0.0.6") as other:
        assert other.get("/rated/").status_code == 200, "another client has its own allowance"
