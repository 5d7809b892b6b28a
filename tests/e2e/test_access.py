"""The access stage and trusted proxies, over real sockets from several loopback addresses.

Linux routes all of 127.0.0.0/8 to loopback, so a client bound to 127.0.0.2
reaches the server on 127.0.0.1 as a different address.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import Gateway, gateway_command, read_response, run_gateway

pytestmark = [pytest.mark.e2e]
ECHO = "tests.support.apps:echo"

CONFIG = f"""
[server]
trusted_proxies = ["127.0.0.9"]
access_log_format = "json"

[[vhost]]
names = ["private.test"]
allow = ["127.0.0.1", "10.0.0.0/8"]
  [[vhost.route]]
  path = "/open/"
  handler = "asgi"
  app = "{ECHO}"
  allow = ["all"]
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "{ECHO}"

[[vhost]]
names = ["public.test"]
default = true
deny = ["127.0.0.3", "10.6.6.0/24"]
  [[vhost.route]]
  path = "/mixed/"
  handler = "asgi"
  app = "{ECHO}"
  allow = ["127.0.0.0/8"]
  deny = ["127.0.0.4"]
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "{ECHO}"
"""


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with run_gateway(config_text=CONFIG) as server:
        yield server


def request(
    gateway: Gateway, source: str, host: str, path: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=gateway.url, transport=transport, timeout=10) as http:
        return http.get(path, headers={"host": host, **(headers or {})})


@pytest.mark.parametrize(
    ("source", "host", "path", "status"),
    [
        ("127.0.0.1", "private.test", "/", 200),
        ("127.0.0.2", "private.test", "/", 403),
        ("127.0.0.2", "private.test", "/open/x", 200),  # a route's allow replaces its vhost's
        ("127.0.0.2", "public.test", "/", 200),
        ("127.0.0.3", "public.test", "/", 403),
        ("127.0.0.3", "public.test", "/mixed/", 200),  # the route's own lists replace the vhost's deny
        ("127.0.0.4", "public.test", "/mixed/", 403),  # deny wins over a matching allow
    ],
)
def test_allow_and_deny(gateway: Gateway, source: str, host: str, path: str, status: int) -> None:
    response = request(gateway, source, host, path)
    assert response.status_code == status
    if status == 403:
        assert "may not access" in response.text


def test_forwarded_for_from_a_trusted_proxy_sets_the_client(gateway: Gateway) -> None:
    response = request(
        gateway, "127.0.0.9", "private.test", "/", {"x-forwarded-for": "10.1.2.3", "x-forwarded-proto": "https"}
    )
    assert response.status_code == 200, "10.1.2.3 is allowed on private.test"
    seen = response.json()
    assert seen["client"][0] == "10.1.2.3"
    assert seen["scheme"] == "https"
    gateway.wait_for_log('"client": "10.1.2.3"', stream="stdout")


def test_the_json_log_shows_a_utf_8_user_agent_as_text(gateway: Gateway) -> None:
    with gateway.connect() as sock:
        sock.sendall(b"GET /ua HTTP/1.1\r\nHost: public.test\r\nUser-Agent: caf\xc3\xa9\r\nConnection: close\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
    gateway.wait_for_log('"target": "/ua", "protocol": "HTTP/1.1", "status": 200', stream="stdout")
    line = next(line for line in gateway.stdout().splitlines() if '"target": "/ua"' in line)
    assert json.loads(line)["user_agent"] == "caf\u00e9"


def test_forwarded_for_from_anyone_else_is_ignored(gateway: Gateway) -> None:
    response = request(gateway, "127.0.0.2", "private.test", "/", {"x-forwarded-for": "10.1.2.3"})
    assert response.status_code == 403, "an untrusted peer cannot claim an allowed address"
    seen = request(gateway, "127.0.0.2", "public.test", "/", {"x-forwarded-proto": "https"}).json()
    assert seen["client"][0] == "127.0.0.2" and seen["scheme"] == "http"


def test_denied_address_behind_a_trusted_proxy_is_denied(gateway: Gateway) -> None:
    response = request(gateway, "127.0.0.9", "public.test", "/", {"x-forwarded-for": "10.6.6.7"})
    assert response.status_code == 403


def test_rightmost_untrusted_hop_is_the_client(gateway: Gateway) -> None:
    """A client can prepend anything to X-Forwarded-For; only what trusted proxies appended counts."""
    headers = {"x-forwarded-for": "10.1.1.1, 192.0.2.7, 127.0.0.9"}
    seen = request(gateway, "127.0.0.9", "private.test", "/", headers)
    assert seen.status_code == 403, "192.0.2.7 is the client; it is not in private.test's allow list"
    forwarded = request(gateway, "127.0.0.9", "private.test", "/", {"forwarded": 'for="10.9.8.7:1234";proto=https'})
    assert forwarded.json()["client"][0] == "10.9.8.7" and forwarded.json()["scheme"] == "https"


@pytest.mark.parametrize(
    ("headers", "client", "scheme"),
    [
        # A proxy terminating TLS that says only how the client came in (RFC 7239: every parameter is optional).
        ({"forwarded": "proto=https"}, "127.0.0.9", "https"),
        ({"forwarded": "proto=https;host=public.test"}, "127.0.0.9", "https"),
        # The client's own hop says how it came in; the trusted proxies' hop between them does not.
        ({"forwarded": "for=10.1.2.3;proto=https, for=127.0.0.9;proto=http"}, "10.1.2.3", "https"),
        ({"forwarded": "for=10.1.2.3;proto=http, for=192.0.2.7;proto=https"}, "192.0.2.7", "https"),
        ({"x-forwarded-for": "10.1.2.3, 127.0.0.9", "x-forwarded-proto": "https, http"}, "10.1.2.3", "https"),
        ({"x-forwarded-for": "10.1.2.3, 127.0.0.9", "x-forwarded-proto": "https"}, "10.1.2.3", "https"),
        ({"x-forwarded-proto": "https"}, "127.0.0.9", "https"),
    ],
)
def test_the_scheme_is_the_one_the_client_used(
    gateway: Gateway, headers: dict[str, str], client: str, scheme: str
) -> None:
    seen = request(gateway, "127.0.0.9", "public.test", "/", headers).json()
    assert (seen["client"][0], seen["scheme"]) == (client, scheme)


@pytest.mark.parametrize(
    ("written", "wrong", "expected"),
    [
        (
            'allow = ["127.0.0.1", "10.0.0.0/8"]',
            'allow = ["127.0.0.1", "10.0.0.0/33"]',
            "vhost[0].allow[1]: '10.0.0.0/33' is not an address or CIDR block",
        ),
        ('deny = ["127.0.0.4"]', 'deny = "nobody"', "vhost[1].route[0].deny[0]: 'nobody' is not an address"),
        ('trusted_proxies = ["127.0.0.9"]', 'trusted_proxies = ["proxy.local"]', "server.trusted_proxies[0]: 'proxy"),
    ],
)
def test_bad_lists_are_config_errors(tmp_path: Path, written: str, wrong: str, expected: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.replace(written, wrong))
    result = gateway_command("check", str(config))
    assert result.returncode == 2
    assert expected in result.stderr
