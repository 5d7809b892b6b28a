"""apps_example/gateway.toml, the config `make run` serves: one page of each site, through the real server."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import require_program
from tests.support.server import ROOT, Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.php]
CONFIG = ROOT / "apps_example" / "gateway.toml"
SETUP = ROOT / "tools" / "example-setup.py"
DEMO_USER, DEMO_PASSWORD = "admin", "gateway-demo"  # what `make run` prints and the README says


def prepare_django(folder: Path) -> dict[str, str]:
    """The environment of a Django database and static folder of their own under folder, set up as `make run` does."""
    env = {
        "DJANGO_SETTINGS_MODULE": "django_site.settings",
        "DJANGO_DB": str(folder / "db.sqlite3"),
        "DJANGO_STATIC_ROOT": str(folder / "static"),
    }
    done = subprocess.run(
        [sys.executable, str(SETUP)], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert f"user {DEMO_USER}, password {DEMO_PASSWORD}" in done.stdout
    return env


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    require_program("php-cgi")
    data = tmp_path_factory.mktemp("guestbook")
    require_program("perl")
    env = {
        "GUESTBOOK_DATA": str(data),
        "CGI_COUNTER_FILE": str(data / "counter"),
        **prepare_django(tmp_path_factory.mktemp("django")),
    }
    with run_gateway(str(CONFIG), env=env) as gateway:
        gateway.extra["data"] = data
        yield gateway


def site(gateway: Gateway, host: str) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, headers={"host": host}, timeout=10)


def test_default_site_answers(example: Gateway) -> None:
    with site(example, "localhost") as http:
        assert http.get("/").text == "Hello from gateway!\n"


def test_php_guestbook_signs_and_lists_an_entry(example: Gateway) -> None:
    with site(example, "php.localhost") as http:
        page = http.get("/")
        assert page.status_code == 200 and "Guestbook" in page.text
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token is not None
        signed = http.post("/sign", data={"csrf": token.group(1), "name": "Ada", "message": "Hello <b>there</b>"})
        assert signed.status_code == 303 and signed.headers["location"].endswith("/")
        listing = http.get("/")
        assert "Ada" in listing.text and "Hello &lt;b&gt;there&lt;/b&gt;" in listing.text
        entries = http.get("/api/entries").json()
        assert any(entry["name"] == "Ada" for entry in entries)
        assert http.get("/style.css").headers["content-type"].startswith("text/css")
        assert http.get("/entry/999999").status_code == 404
    assert any(Path(example.extra["data"]).iterdir()), "the guestbook stores its data where GUESTBOOK_DATA says"  # type: ignore[arg-type]


def test_the_guestbook_admin_is_behind_digest_auth(example: Gateway) -> None:
    with site(example, "php.localhost") as http:
        refused = http.get("/admin/")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Digest ")
        page = http.get("/admin/", auth=httpx.DigestAuth("admin", "gateway-demo"))
        assert page.status_code == 200 and "<dd>admin</dd>" in page.text, "REMOTE_USER reaches the page"


def test_forged_post_is_refused(example: Gateway) -> None:
    with site(example, "php.localhost") as http:
        assert http.post("/sign", data={"csrf": "forged", "name": "Eve", "message": "x"}).status_code == 403


def test_cgi_scripts_in_three_languages(example: Gateway) -> None:
    with site(example, "cgi.localhost") as http:
        assert http.get("/").headers["location"] == "/cgi-bin/"
        index = http.get("/cgi-bin/")
        assert index.status_code == 200
        first = http.get("/cgi-bin/counter.py").text
        second = http.get("/cgi-bin/counter.py").text
        assert "visited 1 time." in first and "visited 2 times." in second
        form = http.post("/cgi-bin/form.pl", data={"name": "<Ada>"})
        assert form.status_code == 200 and "&lt;Ada&gt;" in form.text
        assert "GATEWAY_INTERFACE" in http.get("/cgi-bin/env.sh").text


def test_django_notes_admin_and_collected_static_files(example: Gateway) -> None:
    with site(example, "django.localhost") as http:
        page = http.get("/")
        assert page.status_code == 200 and "<h1>Notes</h1>" in page.text and "No notes yet" in page.text
        css = http.get("/static/notes/site.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert css.headers["cache-control"] == "max-age=3600", "served by the static route, not by Django"
        admin = http.get("/admin/")
        assert (admin.status_code, admin.headers["location"]) == (302, "/admin/login/?next=/admin/")
        login = http.get(admin.headers["location"])
        assert login.status_code == 200 and "csrftoken" in http.cookies
        assert http.get("/static/admin/css/base.css").status_code == 200
        missing = http.get("/notes/999/")
        assert missing.status_code == 404 and "DEBUG = True" not in missing.text, "DEBUG is off by default"


def test_django_live_counter_over_a_channels_websocket(example: Gateway) -> None:
    with site(example, "django.localhost") as http:
        page = http.get("/live/")
    assert page.status_code == 200 and "/ws/counter/" in page.text

    async def two_pages() -> list[dict[str, int]]:
        url = f"ws://django.localhost:{example.port}/ws/counter/"
        origin = {"origin": f"http://django.localhost:{example.port}"}
        where = {"host": example.host, "port": example.port}
        async with connect(url, **where, **origin) as first, connect(url, **where, **origin) as second:
            seen = [json.loads(await first.recv()), json.loads(await first.recv()), json.loads(await second.recv())]
            await second.send(json.dumps({"action": "click"}))
            seen += [json.loads(await first.recv()), json.loads(await second.recv())]
            return seen

    seen = asyncio.run(asyncio.wait_for(two_pages(), 20))
    assert seen[1]["watching"] == 2 and seen[2]["watching"] == 2
    assert seen[3] == seen[4] and seen[3]["clicks"] == seen[1]["clicks"] + 1, "the click reached both pages"

    async def from_elsewhere() -> None:
        url = f"ws://django.localhost:{example.port}/ws/counter/"
        async with connect(url, host=example.host, port=example.port, origin="http://evil.example"):
            pass

    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(asyncio.wait_for(from_elsewhere(), 20))
    assert refused.value.response.status_code == 403, "Channels' origin check refuses; the gateway answers 403"


def test_flask_form_with_token_and_escaping(example: Gateway) -> None:
    with site(example, "flask.localhost") as http:
        page = http.get("/")
        assert page.status_code == 200 and "<h1>To do</h1>" in page.text
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token is not None
        added = http.post("/tasks", data={"csrf": token.group(1), "title": "Fix <script>"})
        assert (added.status_code, added.headers["location"]) == (303, "/")
        listing = http.get("/").text
        assert "Fix &lt;script&gt;" in listing and "Fix <script>" not in listing
        assert http.post("/tasks", data={"csrf": "forged", "title": "x"}).status_code == 403
        assert http.post("/tasks", data={"csrf": token.group(1), "title": " "}).status_code == 422
        css = http.get("/static/style.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    with site(example, "flask.localhost") as stranger:  # no session: no token to match
        assert stranger.post("/tasks", data={"csrf": "", "title": "x"}).status_code == 403


def test_flask_json_api(example: Gateway) -> None:
    with site(example, "flask.localhost") as http:
        created = http.post("/api/tasks", json={"title": "Write the docs"})
        assert created.status_code == 201
        task = created.json()
        assert task["title"] == "Write the docs" and task["done"] is False
        assert http.get(created.headers["location"]).json() == task
        assert task in http.get("/api/tasks").json()
        assert http.post("/api/tasks", json={"title": ""}).status_code == 400
        assert http.post("/api/tasks", json=["not", "an", "object"]).status_code == 400
        assert http.post("/api/tasks", data={"title": "a form post"}).status_code == 415
        assert http.get("/api/tasks/999999").status_code == 404


def test_static_site_page_stylesheet_and_images(example: Gateway) -> None:
    with site(example, "static.localhost") as http:
        page = http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "The example sites" in page.text
        for path in re.findall(r'(?:href|src)="(/[^"]+)"', page.text):
            assert http.get(path).status_code == 200, path
        png = http.get("/images/lanes.png")
        assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG\r\n")
        assert (
            http.get("/css/site.css", headers={"if-none-match": http.get("/css/site.css").headers["etag"]}).status_code
            == 304
        )
        assert http.get("/nothing-here.html").status_code == 404
