"""Upstream addresses, the balancer's choices and passive health (no sockets)."""

from __future__ import annotations

import pytest

from adapters._proxy_pool import ConnectionPool
from adapters._proxy_upstreams import Balancer, Upstream, parse_address


def upstream(label: str) -> Upstream:
    address = parse_address(label)
    pool = ConnectionPool(label, address.host, address.port, address.path, 4, 4.0, 1.0)
    return Upstream(address, pool)


@pytest.mark.parametrize(
    ("text", "host", "port", "path", "host_header"),
    [
        ("http://127.0.0.1:9000", "127.0.0.1", 9000, "", b"127.0.0.1:9000"),
        ("http://127.0.0.1:9000/", "127.0.0.1", 9000, "", b"127.0.0.1:9000"),
        ("http://backend.internal", "backend.internal", 80, "", b"backend.internal"),
        ("http://[::1]:8080", "::1", 8080, "", b"[::1]:8080"),
        ("unix:/run/app.sock", "", 0, "/run/app.sock", b"localhost"),
    ],
)
def test_addresses(text: str, host: str, port: int, path: str, host_header: bytes) -> None:
    address = parse_address(text)
    assert (address.host, address.port, address.path, address.host_header) == (host, port, path, host_header)
    assert address.label == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("127.0.0.1:9000", 'expected "http://host:port"'),
        ("https://example.com", "https upstreams are not supported"),
        ("http://127.0.0.1:9000/v2", "strip_prefix"),
        ("http://127.0.0.1:99999", "port"),
        ("http://:80", "host is missing"),
        ("unix:", "needs a path"),
        ("http://bücher.example", "punycode"),
    ],
)
def test_bad_addresses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_address(text)


def test_round_robin_takes_turns_and_skips_what_was_tried() -> None:
    a, b, c = upstream("http://a:1"), upstream("http://b:1"), upstream("http://c:1")
    balancer = Balancer([a, b, c], least_connections=False)
    assert [balancer.choose() for _ in range(4)] == [a, b, c, a]
    assert balancer.choose([b]) is c
    assert balancer.choose([a, b, c]) is None


def test_least_connections_prefers_the_idlest_and_rotates_ties() -> None:
    a, b = upstream("http://a:1"), upstream("http://b:1")
    balancer = Balancer([a, b], least_connections=True)
    a.active = 3
    assert [balancer.choose() for _ in range(3)] == [b, b, b]
    a.active = b.active = 1
    assert {balancer.choose(), balancer.choose()} == {a, b}


def test_passive_health_skips_a_failed_upstream_until_fail_timeout() -> None:
    a, b = upstream("http://a:1"), upstream("http://b:1")
    balancer = Balancer([a, b], least_connections=False)
    a.failed("refused", max_fails=2, fail_timeout=30)
    assert a.down_until == 0.0, "one failure of two allowed"
    a.failed("refused", max_fails=2, fail_timeout=30)
    assert a.down_until > 0
    assert [balancer.choose() for _ in range(3)] == [b, b, b]
    assert balancer.choose([b]) is a, "with nothing else left, the one due back first is tried anyway"
    a.down_until = 0.0
    assert {balancer.choose(), balancer.choose()} == {a, b}


def test_a_success_resets_the_count() -> None:
    a = upstream("http://a:1")
    a.failed("x", max_fails=2, fail_timeout=30)
    a.succeeded()
    a.failed("x", max_fails=2, fail_timeout=30)
    assert a.down_until == 0.0


def test_active_health_takes_out_and_brings_back() -> None:
    a, b = upstream("http://a:1"), upstream("http://b:1")
    balancer = Balancer([a, b], least_connections=False)
    a.checked(False, "status 503")
    assert [balancer.choose() for _ in range(2)] == [b, b]
    assert balancer.choose([b]) is None, "an upstream out by health check is never tried"
    a.checked(True, "status 200")
    assert {balancer.choose(), balancer.choose()} == {a, b}
    a.failed("x", max_fails=1, fail_timeout=30)
    a.checked(True, "status 200")
    assert a.down_until > 0, "a passing check does not excuse failing requests"
