"""Internal rewrites on a vhost (before routing) and on a route (then routed again), with loops bounded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

from tests.support.server import Gateway, gateway_command, read_response, run_gateway

pytestmark = [pytest.mark.e2e]
ECHO = "tests.support.apps:echo"

CONFIG = f"""
[[vhost]]
names = ["rw.test"]
rewrite = [
  {{ from = "^/old/(.*)$", to = "/new/$1" }},
  {{ from = "^/p/([0-9]+)$", to = "/posts/show?id=$1", keep_query = true }},
  {{ from = "^/tag/([^/]+)$", to = "/search?q=$1&lang=français" }},
]
  [[vhost.route]]
  path = "/legacy/"
  handler = "asgi"
  app = "{ECHO}"
  rewrite = [{{ from = "^/legacy/(.*)$", to = "/api/v2/$1" }}]
  [[vhost.route]]
  path = "/x/"
  handler = "asgi"
  app = "{ECHO}"
  rewrite = [{{ from = "^/x/(.*)$", to = "/old/$1" }}]
  [[vhost.route]]
  path = "/loop/"
  handler = "asgi"
  app = "{ECHO}"
  rewrite = [{{ from = "^/loop/(.*)$", to = "/loop/again-$1" }}]
  [[vhost.route]]
  path = "/api/"
  handler = "asgi"
  app = "{ECHO}"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "{ECHO}"
"""


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    with run_gateway(config_text=CONFIG) as server:
        yield server


def get(gateway: Gateway, target: str) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, headers={"host": "rw.test"}, timeout=10) as http:
        return http.get(target)


def test_vhost_rewrite_before_routing(gateway: Gateway) -> None:
    seen = get(gateway, "/old/page?x=1").json()
    assert (seen["path"], seen["query_string"]) == ("/new/page", "x=1")


def test_the_access_log_shows_what_the_client_asked_for(gateway: Gateway) -> None:
    """As Apache's %r and nginx's $request: the rewrite's target is the app's business, not the log's."""
    assert get(gateway, "/old/logged?x=1").json()["path"] == "/new/logged"
    gateway.wait_for_log('"GET /old/logged?x=1 HTTP/1.1" 200', stream="stdout")


def test_rewrite_can_set_the_query_and_keep_the_clients(gateway: Gateway) -> None:
    seen = get(gateway, "/p/42?ref=home").json()
    assert (seen["path"], seen["query_string"]) == ("/posts/show", "id=42&ref=home")


def test_a_capture_put_into_the_query_stays_one_encoded_value(gateway: Gateway) -> None:
    """The path's "%26" or "%0D%0A" decoded by the capture is encoded again: no new parameter, no raw bytes."""
    with gateway.connect() as sock:
        sock.sendall(b"GET /tag/a%26b%3Dc%20d%0D%0AX:%201%C3%A9 HTTP/1.1\r\nHost: rw.test\r\nConnection: close\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    seen = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert seen["path"] == "/search"
    assert seen["query_string"] == "q=a%26b%3Dc%20d%0D%0AX:%201%C3%A9&lang=fran%C3%A7ais"
    assert parse_qs(seen["query_string"]) == {"q": ["a&b=c d\r\nX: 1é"], "lang": ["français"]}


def test_route_rewrite_routes_again(gateway: Gateway) -> None:
    seen = get(gateway, "/legacy/users").json()
    assert seen["path"] == "/api/v2/users"
    assert seen["root_path"] == "/api", "the /api/ route's mount, not /legacy's"


def test_a_route_rewrite_is_not_rewritten_again_by_the_vhost(gateway: Gateway) -> None:
    """As nginx's `rewrite ... last` in a location: the server-level rules ran on the first pass only."""
    assert get(gateway, "/x/echo").json()["path"] == "/old/echo"


def test_a_rewrite_loop_is_a_500_not_a_hang(gateway: Gateway) -> None:
    response = get(gateway, "/loop/x")
    assert response.status_code == 500
    assert "loop" in response.text
    gateway.wait_for_log("rewrite loop")


def test_explain_shows_the_vhost_rewrite(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG)
    result = gateway_command("explain", str(config), "http://rw.test/old/page")
    assert "rewritten by the vhost's rules: '/old/page' → '/new/page'" in result.stdout


def test_explain_follows_a_routes_rewrite_as_the_server_does(gateway: Gateway, tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG)
    result = gateway_command("explain", str(config), "http://rw.test/legacy/users")
    assert "rewritten by route 0's rules: '/legacy/users' → '/api/v2/users'; routed again" in result.stdout
    assert "mounted at '/api'" in result.stdout  # the route that answers, as the server says:
    assert get(gateway, "/legacy/users").json()["root_path"] == "/api"
    looping = gateway_command("explain", str(config), "http://rw.test/loop/x")
    assert "the rewrites loop: the gateway answers 500" in looping.stdout
