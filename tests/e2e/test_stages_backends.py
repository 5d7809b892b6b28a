"""The stages apply to every handler alike: the same stages in front of real php-cgi and real CGI scripts.

(The Flask, WSGI, ASGI and static sides are in test_output_filters.py, test_auth.py, test_access.py and
test_route_limits.py.)
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_program
from tests.support.server import Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.php]
HERE = Path(__file__).parent

CONFIG = """
[server]
runtime_dir = "{runtime}"

[[vhost]]
names = ["stages.test"]
errors = {{ 403 = "/errors/403.html" }}
security_headers = true
  [[vhost.route]]
  path = "/errors/"
  handler = "static"
  root = "{errors}"
  [[vhost.route]]
  path = "/cgi-bin/"
  handler = "cgi"
  root = "{cgi}"
  interpreters = {{ ".py" = "python3" }}
  compress = {{ min_size = 0 }}
  headers = {{ set = {{ X-Backend = "cgi" }} }}
  limits = {{ max_body_size = "1KiB" }}
  [[vhost.route]]
  path = "/closed/"
  handler = "cgi"
  root = "{cgi}"
  deny = ["all"]
  [[vhost.route]]
  path = "/asgi/"
  handler = "asgi"
  app = "tests.support.apps:own_fields"
  [[vhost.route]]
  path = "/wsgi/"
  handler = "wsgi"
  app = "tests.support.apps:own_fields_wsgi"
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{php}"
  pool = {{ max = 2 }}
  compress = {{ min_size = 0 }}
  headers = {{ set = {{ X-Backend = "php" }}, remove = ["X-Powered-By"] }}
  rewrite = [{{ from = "^/hi$", to = "/hello.php" }}]
  limits = {{ max_body_size = "2KiB" }}
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    require_program("php-cgi")
    require_program("perl")
    errors = tmp_path_factory.mktemp("errors")
    (errors / "403.html").write_text("<h1>not for you</h1>\n")
    runtime = tmp_path_factory.mktemp("run")
    config = CONFIG.format(runtime=runtime, errors=errors, cgi=HERE / "cgi_scripts", php=HERE / "php_site")
    with run_gateway(config_text=config) as server:
        yield server


@pytest.fixture()
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, headers={"host": "stages.test"}, timeout=20) as client:
        yield client


@pytest.mark.parametrize(("path", "backend"), [("/hello.php", "php"), ("/cgi-bin/env.py", "cgi")])
def test_compress_and_headers(http: httpx.Client, path: str, backend: str) -> None:
    with http.stream("GET", path, headers={"accept-encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw)
    assert response.headers["x-backend"] == backend
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "x-powered-by" not in response.headers


@pytest.mark.parametrize(
    ("path", "whole"), [("/hello.php", b"Hello from PHP"), ("/cgi-bin/mapped.py", b"mapped ran\n")]
)
def test_ranges_on_dynamic_output(http: httpx.Client, path: str, whole: bytes) -> None:
    assert http.get(path).content == whole
    part = http.get(path, headers={"range": "bytes=2-6"})
    assert part.status_code == 206
    assert part.content == whole[2:7]
    assert part.headers["content-range"] == f"bytes 2-6/{len(whole)}"


def test_rewrite_reaches_php(http: httpx.Client) -> None:
    assert http.get("/hi").text == "Hello from PHP"


@pytest.mark.parametrize(("path", "limit"), [("/body.php", 2048), ("/cgi-bin/sha256.pl", 1024)])
def test_route_body_limits(http: httpx.Client, path: str, limit: int) -> None:
    assert http.post(path, content=os.urandom(limit)).json()["length"] == limit
    assert http.post(path, content=os.urandom(limit + 1)).status_code == 413


def test_access_and_its_error_document(http: httpx.Client) -> None:
    response = http.get("/closed/env.py")
    assert (response.status_code, response.text) == (403, "<h1>not for you</h1>\n")


@pytest.mark.parametrize("path", ["/asgi/", "/wsgi/", "/own-fields.php", "/cgi-bin/own-fields.sh"])
def test_an_apps_own_date_and_server_never_make_two(http: httpx.Client, path: str) -> None:
    """Date and Server are the core's (`server_header`), as the proxy handler treats an upstream's."""
    for _ in range(2):  # the second PHP answer comes from the cache of heads seen before
        response = http.get(path)
        assert (response.status_code, response.text) == (200, "own fields")
        assert response.headers.get_list("server") == ["gateway"]
        assert len(response.headers.get_list("date")) == 1
        assert "2000" not in response.headers["date"]
        assert response.headers["x-app"] == "yes"
