"""One gateway, one config: a Starlette app, a Flask app, a Django project and static files,
each on its own virtual host, answering side by side in one process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_wsgi import ADMIN_PASSWORD, django_env
from tests.support.server import Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
__all__ = ["django_env"]  # the migrated Django database this module's server uses

CONFIG = """
[[vhost]]
names = ["starlette.test"]
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "tests.e2e.vhost_apps:alpha"

[[vhost]]
names = ["flask.test"]
  [[vhost.route]]
  path = "/"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.flask_app:app"

[[vhost]]
names = ["django.test"]
  [[vhost.route]]
  path = "/static/"
  handler = "static"
  root = "{django_static}"
  [[vhost.route]]
  path = "/"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.django_site.wsgi:application"

[[vhost]]
names = ["files.test"]
default = true
  [[vhost.route]]
  path = "/"
  handler = "static"
  root = "{files}"
"""


@pytest.fixture(scope="module")
def gw(django_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    files = tmp_path_factory.mktemp("files")
    (files / "index.html").write_text("<h1>files.test</h1>\n")
    config = CONFIG.format(django_static=django_env["GATEWAY_TEST_DJANGO_STATIC"], files=files)
    with run_gateway(config_text=config, env=django_env) as gateway:
        yield gateway


def get(gw: Gateway, host: str, path: str) -> httpx.Response:
    return httpx.get(gw.url + path, headers={"Host": host}, timeout=10)


def test_each_vhost_answers_with_its_own_site(gw: Gateway) -> None:
    assert get(gw, "starlette.test", "/").json() == {"site": "alpha", "home": True, "path": "/"}
    assert get(gw, "flask.test", "/").text == "Hello from Flask"
    assert get(gw, "django.test", "/where/").json()["path"] == "/where/"
    assert get(gw, "files.test", "/").text == "<h1>files.test</h1>\n"
    assert get(gw, "unknown.test", "/").text == "<h1>files.test</h1>\n"


def test_all_four_share_one_process(gw: Gateway) -> None:
    starlette = get(gw, "starlette.test", "/where").json()
    assert starlette["started_by"] == "alpha"  # its lifespan ran
    assert gw.proc.pid != 0 and "Traceback" not in gw.stderr()


def test_django_admin_logs_in_beside_the_others(gw: Gateway) -> None:
    with httpx.Client(base_url=gw.url, headers={"Host": "django.test"}, timeout=10) as client:
        page = client.get("/admin/login/?next=/admin/")
        token = page.text.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
        form = {"username": "admin", "password": ADMIN_PASSWORD, "next": "/admin/", "csrfmiddlewaretoken": token}
        login = client.post("/admin/login/?next=/admin/", data=form)
        assert (login.status_code, login.headers["location"]) == (302, "/admin/")
        assert "Site administration" in client.get("/admin/").text
        css = client.get("/static/admin/css/base.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    # The Flask vhost is unaffected by Django's session: no cookie crossed over.
    assert "sessionid" not in get(gw, "flask.test", "/").headers.get("set-cookie", "")


def test_access_log_names_every_site(gw: Gateway) -> None:
    for host in ("starlette.test", "flask.test", "django.test", "files.test"):
        get(gw, host, "/")
    log = gw.wait_for_log('"GET / HTTP/1.1" 200', stream="stdout", timeout=3)
    assert log.count('"GET / HTTP/1.1"') >= 4
    assert Path(gw.workdir / "gateway.toml").exists()
