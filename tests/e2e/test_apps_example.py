"""apps_example/gateway.toml, the config `make run` serves: one page of each site, through the real server."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_program
from tests.support.server import ROOT, Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.php]
CONFIG = ROOT / "apps_example" / "gateway.toml"


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    require_program("php-cgi")
    data = tmp_path_factory.mktemp("guestbook")
    require_program("perl")
    env = {"GUESTBOOK_DATA": str(data), "CGI_COUNTER_FILE": str(data / "counter")}
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
