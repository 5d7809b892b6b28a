"""A route's `headers` on every answer it gives: the refusals of its stages and their error documents too."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.server import run_gateway

pytestmark = [pytest.mark.e2e]
ECHO = "tests.support.apps:echo"

CONFIG = """
[[vhost]]
names = ["h.test"]
errors = {{ 403 = "/errors/403.html" }}
  [[vhost.route]]
  path = "/errors/"
  handler = "static"
  root = "{errors}"
  [[vhost.route]]
  path = "/rated/"
  handler = "asgi"
  app = "{echo}"
  rate = {{ requests = 1, per = "1m" }}
  headers = {{ set = {{ Access-Control-Allow-Origin = "*" }} }}
  security_headers = true
  [[vhost.route]]
  path = "/closed/"
  handler = "asgi"
  app = "{echo}"
  deny = ["all"]
  headers = {{ set = {{ X-Site = "closed" }} }}
  [[vhost.route]]
  path = "/old/"
  handler = "asgi"
  app = "{echo}"
  rewrite = [{{ from = "^/old/(.*)$", to = "/new/$1" }}]
  headers = {{ add = {{ X-From = "old" }} }}
  [[vhost.route]]
  path = "/new/"
  handler = "asgi"
  app = "{echo}"
  headers = {{ add = {{ X-From = "new" }} }}
"""


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    errors = tmp_path_factory.mktemp("errors")
    (errors / "403.html").write_text("<h1>closed</h1>\n")
    with (
        run_gateway(config_text=CONFIG.format(errors=errors, echo=ECHO)) as gateway,
        httpx.Client(base_url=gateway.url, headers={"host": "h.test"}, timeout=10) as client,
    ):
        yield client


def test_a_refusal_of_the_routes_limits_carries_its_headers(http: httpx.Client) -> None:
    """A browser reads a 429's Retry-After only with the route's CORS header on it (nginx: add_header always)."""
    assert http.get("/rated/").status_code == 200
    refused = http.get("/rated/")
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == "*"
    assert refused.headers["x-content-type-options"] == "nosniff"
    assert "retry-after" in refused.headers


def test_an_error_document_keeps_the_headers_of_the_refusal_it_replaces(http: httpx.Client) -> None:
    response = http.get("/closed/x")
    assert (response.status_code, response.text) == (403, "<h1>closed</h1>\n")
    assert response.headers["x-site"] == "closed"
    assert response.headers["content-type"].startswith("text/html")


def test_a_request_a_rewrite_sent_elsewhere_gets_that_routes_headers_only(http: httpx.Client) -> None:
    response = http.get("/old/page")
    assert response.json()["path"] == "/new/page"
    assert response.headers.get_list("x-from") == ["new"]
