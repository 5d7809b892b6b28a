"""The `health` handler over real sockets: ready, php-cgi dying and coming back, the image's config.

A php-cgi that is killed is restarted within about 0.1 s, too fast to see the
503 in between reliably; so the php route runs php-cgi through a wrapper that
refuses to start while a "hold" file exists: kill the master with the file
there and the pool stays down (503) until the test removes it (200 again).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_program
from tests.support.server import ROOT, Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
HEALTH = "/_gateway/health"
PHP_SITE = Path(__file__).parent / "php_site"
IMAGE_CONFIG = ROOT / "deploy" / "container" / "gateway.toml"
DOCKERFILE = ROOT / "Dockerfile"

ASGI_CONFIG = """
[[vhost]]
names = ["app.test"]
default = true
  [[vhost.route]]
  path = "=/_gateway/health"
  handler = "health"
  [[vhost.route]]
  path = "/ops/ready"
  handler = "health"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "tests.e2e.lifecycle_apps:plain"
"""

PHP_CONFIG = """
[server]
runtime_dir = "{runtime}"

[[vhost]]
names = ["php.test"]
  [[vhost.route]]
  path = "=/_gateway/health"
  handler = "health"
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{root}"
  php_binary = "{wrapper}"
  pool = {{ max = 2 }}
"""

WRAPPER = """#!/bin/sh
# php-cgi, unless the test holds it down
[ -e "{hold}" ] && exit 1
exec "{php_cgi}" "$@"
"""


def http(gateway: Gateway, host: str = "app.test") -> httpx.Client:
    return httpx.Client(base_url=gateway.url, headers={"host": host}, timeout=10)


def wait_for_status(client: httpx.Client, status: int, timeout: float) -> httpx.Response:
    """Ask the health route until it answers status (or fail after timeout seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(HEALTH)
        if response.status_code == status:
            return response
        if time.monotonic() > deadline:
            raise AssertionError(f"no {status} within {timeout}s; last: {response.status_code} {response.text}")
        time.sleep(0.05)


def php_masters(gateway: Gateway) -> list[int]:
    """Live php-cgi processes whose parent is the gateway."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name == "php-cgi" and fields[0] != "Z" and int(fields[1]) == gateway.proc.pid:
            found.append(int(entry))
    return found


def healthcheck(url: str) -> subprocess.CompletedProcess[str]:
    """The Dockerfile's HEALTHCHECK command, run here with GATEWAY_HEALTH_URL pointing at url."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = re.search(r"^HEALTHCHECK .*? CMD (\[.*\])$", text, re.MULTILINE)
    assert found, "a HEALTHCHECK ... CMD [...] in the Dockerfile"
    command = json.loads(found.group(1))
    assert command[0] == "python"
    env = {**os.environ, "GATEWAY_HEALTH_URL": url}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=10)


def test_ready_on_any_route_it_is_mounted_on() -> None:
    with run_gateway(config_text=ASGI_CONFIG) as gateway, http(gateway) as client:
        for path in (HEALTH, "/ops/ready"):
            response = client.get(path)
            assert response.status_code == 200 and response.json() == {"status": "ready"}
            assert response.headers["content-type"] == "application/json"
            assert response.headers["cache-control"] == "no-store"
        head = client.head(HEALTH)
        assert head.status_code == 200 and head.content == b""
        refused = client.post(HEALTH)
        assert refused.status_code == 405 and refused.headers["allow"] == "GET, HEAD"
        assert client.get("/").status_code == 200, "the other routes serve as usual"


@pytest.fixture
def held_php(tmp_path: Path) -> Iterator[tuple[Gateway, Path]]:
    """A php route whose php-cgi the test can keep from restarting (touch the hold file)."""
    php_cgi = require_program("php-cgi")
    hold = tmp_path / "hold"
    wrapper = tmp_path / "php-cgi-wrapper"
    wrapper.write_text(WRAPPER.format(hold=hold, php_cgi=php_cgi))
    wrapper.chmod(0o755)
    config = PHP_CONFIG.format(runtime=tmp_path / "run", root=PHP_SITE, wrapper=wrapper)
    with run_gateway(config_text=config) as gateway:
        yield gateway, hold


@pytest.mark.php
def test_dead_php_cgi_is_503_until_it_runs_again(held_php: tuple[Gateway, Path]) -> None:
    gateway, hold = held_php
    with http(gateway, "php.test") as client:
        assert client.get(HEALTH).json() == {"status": "ready"}, "startup waited for php-cgi"
        assert client.get("/hello.php").text == "Hello from PHP"
        masters = php_masters(gateway)
        assert len(masters) == 1
        hold.touch()
        os.killpg(masters[0], signal.SIGKILL)
        down = wait_for_status(client, 503, timeout=5)
        assert down.json()["status"] == "starting"
        assert down.json()["waiting_for"] == ["php-cgi of vhost[0] (php.test) route[1] '/' (restarting)"]
        assert healthcheck(f"{gateway.url}{HEALTH}").returncode != 0, "the HEALTHCHECK fails meanwhile"
        time.sleep(0.5)
        assert client.get(HEALTH).status_code == 503, "still down while php-cgi cannot start"
        hold.unlink()
        wait_for_status(client, 200, timeout=15)  # the restart backoff is a few seconds by now
        assert client.get("/hello.php").text == "Hello from PHP"
        assert php_masters(gateway) != masters
    gateway.wait_for_log("restarting")


def prepare_django(folder: Path) -> dict[str, str]:
    """A database and static folder as the image's build makes them (tools/example-setup.py)."""
    env = {"DJANGO_DB": str(folder / "db.sqlite3"), "DJANGO_STATIC_ROOT": str(folder / "static")}
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "example-setup.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return env


@pytest.mark.php
def test_image_config_serves_the_example_sites_and_its_healthcheck_passes(tmp_path: Path) -> None:
    """deploy/container/gateway.toml with this repository standing in for the image's /srv/apps_example."""
    require_program("php-cgi")
    text = IMAGE_CONFIG.read_text(encoding="utf-8")
    here = text.replace("/srv/apps_example", str(ROOT / "apps_example")).replace("/run/gateway", str(tmp_path))
    env = {"GUESTBOOK_DATA": str(tmp_path / "guestbook"), "CGI_COUNTER_FILE": str(tmp_path / "counter")}
    env |= prepare_django(tmp_path / "django")
    with run_gateway(config_text=here, env=env) as gateway:
        assert healthcheck(f"{gateway.url}{HEALTH}").returncode == 0
        with httpx.Client(base_url=gateway.url, timeout=10) as client:  # Host: 127.0.0.1:port, as a probe sends
            assert client.get(HEALTH).json() == {"status": "ready"}
            assert client.get("/").text == "Hello from gateway!\n"
            pages = {
                "php.localhost": "/",
                "cgi.localhost": "/cgi-bin/",
                "django.localhost": "/admin/login/",
                "flask.localhost": "/",
                "static.localhost": "/",
            }
            for host, path in pages.items():
                assert client.get(path, headers={"host": host}).status_code == 200, host
            assert client.get("/static/notes/site.css", headers={"host": "django.localhost"}).status_code == 200
