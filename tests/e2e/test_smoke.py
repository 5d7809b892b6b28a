"""The first thing a user does: serve an app and fetch a page."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]


def test_serves_an_asgi_app_named_on_the_command_line() -> None:
    with run_gateway("tests.support.apps:echo") as gw:
        response = httpx.get(gw.url + "/hello%20world?x=1")
    assert response.status_code == 200
    seen = response.json()
    assert seen["path"] == "/hello world"
    assert seen["raw_path"] == "/hello%20world"
    assert seen["query_string"] == "x=1"
    assert response.headers["server"] == "gateway"
