"""Custom error documents per vhost: for the gateway's own errors, and for backends' with intercept_errors."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import Gateway, gateway_command, read_response, run_gateway

pytestmark = [pytest.mark.e2e]
STATUS = "tests.support.apps:status"
RAISES = "tests.support.apps:raises"

CONFIG = """
[[vhost]]
names = ["pages.test"]
errors = {{ 401 = "/errors/401.html", 403 = "/errors/403.html", 404 = "/errors/404.html", 429 = "/errors/gone.html", \
  500 = "/errors/500.html" }}
  [[vhost.route]]
  path = "/errors/"
  handler = "static"
  root = "{errors}"
  [[vhost.route]]
  path = "/files/"
  handler = "static"
  root = "{errors}"
  [[vhost.route]]
  path = "/private/"
  handler = "asgi"
  app = "{status}"
  deny = ["all"]
  [[vhost.route]]
  path = "/locked/"
  handler = "asgi"
  app = "{status}"
  auth = {{ type = "basic", realm = "pages", users = "{errors}/users.htpasswd" }}
  [[vhost.route]]
  path = "/rated/"
  handler = "asgi"
  app = "{status}"
  rate = {{ requests = 1, per = "1m" }}
  [[vhost.route]]
  path = "~^/(before|after)$"
  handler = "asgi"
  app = "{raises}"
  [[vhost.route]]
  path = "/app/"
  handler = "asgi"
  app = "{status}"

[[vhost]]
names = ["strict.test"]
errors = {{ 500 = "/errors/500.html", 404 = "/errors/404.html" }}
intercept_errors = true
  [[vhost.route]]
  path = "/errors/"
  handler = "static"
  root = "{errors}"
  [[vhost.route]]
  path = "/app/"
  handler = "asgi"
  app = "{status}"
  [[vhost.route]]
  path = "/file/"
  handler = "asgi"
  app = "tests.support.apps:status_file"
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    errors = tmp_path_factory.mktemp("errors")
    for code in (401, 403, 404, 500):
        (errors / f"{code}.html").write_text(f"<h1>custom {code}</h1>\n")
    sha = base64.b64encode(hashlib.sha1(b"secret").digest()).decode()
    (errors / "users.htpasswd").write_text(f"alice:{{SHA}}{sha}\n")
    with run_gateway(config_text=CONFIG.format(errors=errors, status=STATUS, raises=RAISES)) as server:
        yield server


def get(gateway: Gateway, host: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, headers={"host": host}, timeout=10) as http:
        return http.get(path)


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/nowhere", 404, "<h1>custom 404</h1>\n"),  # no route: the router's own 404
        ("/files/missing.txt", 404, "<h1>custom 404</h1>\n"),  # the static handler's
        ("/private/x", 403, "<h1>custom 403</h1>\n"),  # the access stage's
        ("/app/?code=500", 500, "the app's own 500 page"),  # an app's error is its own without intercept_errors
    ],
)
def test_gateway_errors_get_the_vhost_documents(gateway: Gateway, path: str, status: int, body: str) -> None:
    response = get(gateway, "pages.test", path)
    assert (response.status_code, response.text) == (status, body)
    if body.startswith("<h1>"):
        assert response.headers["content-type"].startswith("text/html")


def test_auth_refusals_get_the_document_and_keep_their_challenge(gateway: Gateway) -> None:
    response = get(gateway, "pages.test", "/locked/")
    assert (response.status_code, response.text) == (401, "<h1>custom 401</h1>\n")
    assert response.headers["www-authenticate"].startswith('Basic realm="pages"')
    with httpx.Client(base_url=gateway.url, headers={"host": "pages.test"}, auth=("alice", "secret")) as http:
        assert http.get("/locked/?code=200").status_code == 200


def test_a_missing_document_leaves_the_plain_error(gateway: Gateway) -> None:
    assert get(gateway, "pages.test", "/rated/?code=200").status_code == 200
    refused = get(gateway, "pages.test", "/rated/?code=200")
    assert refused.status_code == 429 and "Too Many Requests" in refused.text
    assert refused.headers["retry-after"], "the original's Retry-After is kept"
    gateway.wait_for_log("error document /errors/gone.html answered 404")


def test_intercept_errors_replaces_an_apps_error_page(gateway: Gateway) -> None:
    response = get(gateway, "strict.test", "/app/?code=500")
    assert (response.status_code, response.text) == (500, "<h1>custom 500</h1>\n")
    assert get(gateway, "strict.test", "/app/?code=418").text == "the app's own 418 page", "only listed codes"
    assert get(gateway, "strict.test", "/app/?code=404").text == "<h1>custom 404</h1>\n"


def test_intercept_errors_replaces_an_error_page_sent_as_a_file(gateway: Gateway) -> None:
    """An app's 404 sent by http.response.pathsend (Starlette's FileResponse) is replaced like any other."""
    response = get(gateway, "strict.test", "/file/?code=404")
    assert (response.status_code, response.text) == (404, "<h1>custom 404</h1>\n")
    response = get(gateway, "strict.test", "/file/?code=418")
    assert response.status_code == 418
    assert "status_file" in response.text, "an unlisted code's file goes out as it is"


def test_bad_errors_tables_are_config_errors(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        CONFIG.format(errors=tmp_path, status=STATUS, raises=RAISES).replace(
            '403 = "/errors/403.html", 404', '200 = "x.html", 403'
        )
    )
    result = gateway_command("check", str(config))
    assert result.returncode == 2
    assert "vhost[0].errors.200: expected an error status from 400 to 599" in result.stderr


def test_an_app_that_raises_before_its_response_gets_the_500_document(gateway: Gateway) -> None:
    """The gateway's own 500 for a crash: it was the core's plain page, out of the stage's reach."""
    response = get(gateway, "pages.test", "/before")
    assert (response.status_code, response.text) == (500, "<h1>custom 500</h1>\n")
    gateway.wait_for_log("RuntimeError: boom before start")  # logged as the core logs it
    with pytest.raises(httpx.RemoteProtocolError):  # begun: nothing to replace, the connection is cut
        get(gateway, "pages.test", "/after")


WIDENED = """
[limits]
max_body_size = 1000
[[vhost]]
names = ["big.test"]
errors = {{ 413 = "/errors/413.html" }}
  [[vhost.route]]
  path = "/errors/"
  handler = "static"
  root = "{errors}"
  [[vhost.route]]
  path = "/uploads/"
  handler = "asgi"
  app = "{status}"
  limits = {{ max_body_size = 100000 }}
  [[vhost.route]]
  path = "/app/"
  handler = "asgi"
  app = "{status}"
"""


def test_a_413_from_a_routes_limits_gets_its_document(tmp_path: Path) -> None:
    """Another route widens the body limit, so /app/'s own refuses: its page's GET met the same Content-Length."""
    (tmp_path / "413.html").write_text("<h1>too big</h1>\n")
    with run_gateway(config_text=WIDENED.format(errors=tmp_path, status=STATUS)) as gateway, gateway.connect() as sock:
        sock.sendall(b"POST /app/x HTTP/1.1\r\nHost: big.test\r\nContent-Length: 1001\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b"\r\n\r\n<h1>too big</h1>\n"), answer


TIMED = """
[[vhost]]
names = ["slow.test"]
errors = {{ 504 = "/errors/504.html" }}
  [[vhost.route]]
  path = "/errors/"
  handler = "static"
  root = "{errors}"
  [[vhost.route]]
  path = "/wsgi/"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.apps:environ_app"
  limits = {{ request_timeout = 1 }}
  [[vhost.route]]
  path = "/gives-up"
  handler = "asgi"
  app = "tests.support.apps:returns_when_cancelled"
  limits = {{ request_timeout = 1 }}
  [[vhost.route]]
  path = "/stubborn"
  handler = "asgi"
  app = "tests.support.apps:stubborn"
  limits = {{ request_timeout = 1 }}
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "tests.support.apps:slow"
  limits = {{ request_timeout = 1 }}
"""


@pytest.mark.parametrize("path", ["/?s=10", "/wsgi/sleep?s=3"])
def test_a_request_past_its_timeout_gets_the_504_document(tmp_path: Path, path: str) -> None:
    """As nginx's error_page 504 for an upstream that does not answer in time."""
    (tmp_path / "504.html").write_text("<h1>too slow</h1>\n")
    with run_gateway(config_text=TIMED.format(errors=tmp_path)) as gateway:
        started = time.monotonic()
        response = get(gateway, "slow.test", path)
        assert (response.status_code, response.text) == (504, "<h1>too slow</h1>\n")
        assert time.monotonic() - started < 4  # the timer is checked once a second
        gateway.wait_for_log(f'"GET {path} HTTP/1.1" 504', stream="stdout")


@pytest.mark.parametrize("path", ["/stubborn", "/gives-up"])
def test_an_app_that_ignores_the_timeout_still_gets_the_plain_504(tmp_path: Path, path: str) -> None:
    """The document is the app's task's to send; one that will not (goes on, or returns) gets the core's 504."""
    (tmp_path / "504.html").write_text("<h1>too slow</h1>\n")
    with run_gateway(config_text=TIMED.format(errors=tmp_path)) as gateway:
        started = time.monotonic()
        response = get(gateway, "slow.test", path)
        assert response.status_code == 504 and "did not answer in time" in response.text
        assert time.monotonic() - started < 6  # request_timeout, the document's grace, the once-a-second check
