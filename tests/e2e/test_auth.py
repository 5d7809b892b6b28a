"""The auth stage over real sockets: curl --basic/--digest and httpx against Flask, WSGI, CGI and PHP.

The user files are made with `gateway passwd` (bcrypt, SHA-256 digest) and
Apache's htdigest (MD5 digest). Clients that fail on purpose bind their own
loopback address (Linux routes 127.0.0.0/8 to lo), so one test's penalty
does not slow another's.
"""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from flask import Flask, jsonify, request

from tests.conftest import require_program
from tests.support.server import ROOT, Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(90)]

# The Flask app the protected routes serve: what it learns about its user.
whoami = Flask(__name__)


@whoami.get("/<path:anything>")
@whoami.get("/")
def who(anything: str = "") -> Any:
    return jsonify(
        remote_user=request.remote_user,
        authorization=request.headers.get("Authorization"),
        path=request.path,
    )


WHOAMI = "tests.e2e.test_auth:whoami"
ENVIRON = "tests.e2e.wsgi_apps.apps:environ_app"

CONFIG = """
[[vhost]]
names = ["auth.test"]
default = true
auth = {{ type = "basic", realm = "staff", users = "{folder}/basic" }}
rewrite = [{{ from = "^/pretty/(.*)$", to = "/md5/$1" }}]

  [[vhost.route]]
  path = "/open/"
  handler = "wsgi"
  app = "{whoami}"
  auth = false

  [[vhost.route]]
  path = "/digest/"
  handler = "wsgi"
  app = "{whoami}"
  auth = {{ type = "digest", realm = "admin", users = "{folder}/digest", algorithm = "SHA-256" }}

  [[vhost.route]]
  path = "/md5/"
  handler = "wsgi"
  app = "{whoami}"
  auth = {{ type = "digest", realm = "admin", users = "{folder}/digest" }}

  [[vhost.route]]
  path = "/short/"
  handler = "wsgi"
  app = "{whoami}"
  auth = {{ type = "digest", realm = "admin", users = "{folder}/digest", nonce_lifetime = 1 }}

  [[vhost.route]]
  path = "/both/"
  handler = "wsgi"
  app = "{environ}"
  auth = [
    {{ type = "digest", realm = "admin", users = "{folder}/digest", algorithm = ["SHA-256", "MD5"] }},
    {{ type = "basic", realm = "staff", users = "{folder}/basic" }},
  ]

  [[vhost.route]]
  path = "/admins/"
  handler = "wsgi"
  app = "{whoami}"
    [vhost.route.auth]
    type = "basic"
    realm = "staff"
    users = "{folder}/basic"
    require = ["group:admins"]
    groups = "{folder}/groups"

  [[vhost.route]]
  path = "/pass/"
  handler = "wsgi"
  app = "{whoami}"
  auth = {{ type = "basic", realm = "staff", users = "{folder}/basic", pass_authorization = true }}

  [[vhost.route]]
  path = "/cgi-bin/"
  handler = "cgi"
  root = "{folder}/cgi-bin"
  interpreters = {{ ".py" = "{python}" }}

  [[vhost.route]]
  path = "/digest-cgi/"
  handler = "cgi"
  root = "{folder}/cgi-bin"
  interpreters = {{ ".py" = "{python}" }}
  auth = {{ type = "digest", realm = "admin", users = "{folder}/digest", algorithm = "SHA-256" }}

  [[vhost.route]]
  path = "/"
  handler = "wsgi"
  app = "{whoami}"
"""

# A CGI script answering with a local redirect (RFC 3875 §6.2.2) to ?to=PATH.
GO_SCRIPT = """import os
print("Location: " + os.environ["QUERY_STRING"].partition("=")[2])
print()
"""

PHP_CONFIG = """
[server]
runtime_dir = "{folder}/run"

[[vhost]]
names = ["php.test"]
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{folder}/php"
  auth = {{ type = "digest", realm = "admin", users = "{folder}/digest", algorithm = "SHA-256" }}
"""


def passwd(*args: str, password: str) -> None:
    command = [sys.executable, "-m", "gateway", "passwd", "--password-stdin", *args]
    subprocess.run(command, input=password, text=True, check=True, capture_output=True, cwd=ROOT)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="gateway-auth-"))
    passwd(str(base / "basic"), "alice", password="secret")
    passwd(str(base / "basic"), "bob", password="hunter2")
    digest = ["--digest", "--realm", "admin", "--algorithm", "SHA-256", "--algorithm", "MD5"]
    passwd(*digest, str(base / "digest"), "alice", password="secret")
    passwd(*digest, str(base / "digest"), "bob", password="hunter2")
    # Apache's own tool adds an MD5-only user to the same file, keeping the other lines.
    htdigest = require_program("htdigest")
    subprocess.run(
        [htdigest, str(base / "digest"), "admin", "carol"], input="pw\npw\n", text=True, check=True, capture_output=True
    )
    (base / "groups").write_text("admins: alice\n")
    (base / "cgi-bin").mkdir()
    shutil.copy(Path(__file__).parent / "cgi_scripts" / "env.py", base / "cgi-bin" / "env.py")
    (base / "cgi-bin" / "go.py").write_text(GO_SCRIPT)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def gateway(folder: Path) -> Iterator[Gateway]:
    config = CONFIG.format(folder=folder, whoami=WHOAMI, environ=ENVIRON, python=sys.executable)
    with run_gateway(config_text=config) as server:
        yield server


def curl(gateway: Gateway, path: str, *args: str) -> tuple[int, str]:
    """curl's status and body for path, with its own flags (-u, --digest, --basic...)."""
    program = require_program("curl")
    done = subprocess.run(
        [program, "-s", "-w", "\n%{http_code}", *args, f"{gateway.url}{path}"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def client(gateway: Gateway, source: str = "127.0.0.1", **options: Any) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=gateway.url, transport=transport, timeout=20, **options)


# Basic ------------------------------------------------------------------------------------------


def test_curl_basic(gateway: Gateway) -> None:
    status, body = curl(gateway, "/hello", "--basic", "-u", "alice:secret")
    assert status == 200
    assert json.loads(body) == {"remote_user": "alice", "authorization": None, "path": "/hello"}
    gateway.wait_for_log("127.0.0.1 - alice [", stream="stdout")  # the access log names the user


def test_no_credentials_get_the_challenge(gateway: Gateway) -> None:
    with client(gateway) as http:
        reply = http.get("/hello")
    assert reply.status_code == 401
    assert reply.headers.get_list("www-authenticate") == ['Basic realm="staff", charset="UTF-8"']
    assert reply.text.startswith("401 Unauthorized")


def test_wrong_password(gateway: Gateway) -> None:
    status, _ = curl(gateway, "/hello", "--interface", "127.0.0.20", "--basic", "-u", "alice:wrong")
    assert status == 401


def test_route_can_switch_auth_off(gateway: Gateway) -> None:
    status, body = curl(gateway, "/open/x")
    assert status == 200
    assert json.loads(body)["remote_user"] is None


def test_pass_authorization(gateway: Gateway) -> None:
    with client(gateway, auth=("alice", "secret")) as http:
        data = http.get("/pass/x").json()
    assert data["remote_user"] == "alice"
    assert data["authorization"].startswith("Basic ")


def test_require_group(gateway: Gateway) -> None:
    assert curl(gateway, "/admins/", "-u", "alice:secret")[0] == 200
    status, body = curl(gateway, "/admins/", "-u", "bob:hunter2")
    assert status == 403 and body.startswith("403 Forbidden")
    gateway.wait_for_log(" - bob [", stream="stdout")  # the refused user is named, as Apache's %u does


def test_cgi_sees_remote_user_and_auth_type(gateway: Gateway) -> None:
    status, body = curl(gateway, "/cgi-bin/env.py", "--basic", "-u", "bob:hunter2")
    assert status == 200, body
    env = json.loads(body)["env"]
    assert env["REMOTE_USER"] == "bob"
    assert env["AUTH_TYPE"] == "Basic"
    assert "HTTP_AUTHORIZATION" not in env


@pytest.mark.parametrize(
    ("target", "user", "status"),
    [("/hello", "bob", 200), ("/admins/", "alice", 200), ("/admins/", "bob", 403), ("/open/x", "bob", 200)],
)
def test_a_cgi_local_redirect_keeps_the_basic_login(gateway: Gateway, target: str, user: str, status: int) -> None:
    """The redirected request meets the target's auth again: the login it passed holds, `require` still applies."""
    password = {"alice": "secret", "bob": "hunter2"}[user]
    answer, body = curl(gateway, f"/cgi-bin/go.py?to={target}", "--basic", "-u", f"{user}:{password}")
    assert answer == status, body
    if status == 200 and target != "/open/x":
        assert json.loads(body)["remote_user"] == user


def test_a_cgi_local_redirect_keeps_the_digest_login(gateway: Gateway) -> None:
    """Digest's nonce count is spent by the first check, and a POST's response hash names POST: not checked twice."""
    with client(gateway, auth=httpx.DigestAuth("alice", "secret")) as http:
        for method in ("GET", "POST"):
            reply = http.request(method, "/digest-cgi/go.py?to=/digest/x")
            assert reply.status_code == 200, reply.text
            assert reply.json() == {"remote_user": "alice", "authorization": None, "path": "/x"}
        elsewhere = http.get("/digest-cgi/go.py?to=/hello")  # the vhost's Basic realm: another login
        assert elsewhere.status_code == 401


# Digest -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "user"),
    [
        ("/digest/x", "alice:secret"),
        ("/md5/x?q=1&r=%20", "alice:secret"),
        ("/md5/y", "carol:pw"),
        ("/pretty/y?q=1", "carol:pw"),  # rewritten to /md5/: the client signed the target it sent (RFC 7616 §3.4.6)
    ],
)
def test_curl_digest(gateway: Gateway, path: str, user: str) -> None:
    status, body = curl(gateway, path, "--digest", "-u", user)
    assert status == 200, body
    assert json.loads(body)["remote_user"] == user.split(":")[0]
    assert json.loads(body)["authorization"] is None


def test_sha256_route_refuses_md5_only_user(gateway: Gateway) -> None:
    status, _ = curl(gateway, "/digest/x", "--interface", "127.0.0.23", "--digest", "-u", "carol:pw")
    assert status == 401


def test_curl_digest_wrong_password(gateway: Gateway) -> None:
    status, _ = curl(gateway, "/digest/x", "--interface", "127.0.0.21", "--digest", "-u", "alice:nope")
    assert status == 401


def test_httpx_digest_many_requests(gateway: Gateway) -> None:
    """A browser-like client reuses its nonce with a rising nonce count."""
    with client(gateway, auth=httpx.DigestAuth("bob", "hunter2")) as http:
        replies = [http.get(f"/digest/{i}") for i in range(5)]
    assert [reply.status_code for reply in replies] == [200] * 5
    assert {reply.json()["remote_user"] for reply in replies} == {"bob"}


def test_stale_nonce_is_retried_without_the_user(gateway: Gateway) -> None:
    with client(gateway, auth=httpx.DigestAuth("alice", "secret")) as http:
        assert http.get("/short/a").status_code == 200
        time.sleep(1.5)  # past the route's nonce_lifetime
        reply = http.get("/short/b")
        assert reply.status_code == 200  # httpx met stale=true and answered the new challenge
        first = reply.history[0] if reply.history else None
    assert first is not None and first.status_code == 401
    assert "stale=true" in first.headers["www-authenticate"]


def test_replayed_header_is_refused(gateway: Gateway) -> None:
    with client(gateway, auth=httpx.DigestAuth("alice", "secret")) as http:
        reply = http.get("/digest/replay")
        assert reply.status_code == 200
        header = reply.request.headers["authorization"]
    with client(gateway, source="127.0.0.22") as http:
        replay = http.get("/digest/replay", headers={"Authorization": header})
        moved = http.get("/digest/elsewhere", headers={"Authorization": header})
    assert replay.status_code == 401 and "stale=true" in replay.headers["www-authenticate"]
    assert moved.status_code == 401 and "stale" not in moved.headers["www-authenticate"]  # wrong uri


def test_both_schemes(gateway: Gateway) -> None:
    with client(gateway) as http:
        challenge = http.get("/both/")
    offered = challenge.headers.get_list("www-authenticate")
    assert [value.split(" ", 1)[0] for value in offered] == ["Digest", "Digest", "Basic"]
    for flag in ("--digest", "--basic"):
        status, body = curl(gateway, "/both/", flag, "-u", "alice:secret")
        assert status == 200, body
        environ = json.loads(body)
        assert environ["REMOTE_USER"] == "alice"
        assert "HTTP_AUTHORIZATION" not in environ


# Penalty ----------------------------------------------------------------------------------------


def test_penalty_slows_one_client_only(gateway: Gateway) -> None:
    wrong = httpx.BasicAuth("alice", "wrong")
    timings: list[float] = []
    with client(gateway, source="127.0.0.30", auth=wrong) as attacker:
        for _ in range(7):
            started = time.perf_counter()
            assert attacker.get("/hello").status_code == 401
            timings.append(time.perf_counter() - started)
        # While the attacker's 8th failure waits, another address is served at once.
        waiting = threading.Thread(target=attacker.get, args=("/hello",))
        started = time.perf_counter()
        waiting.start()
        time.sleep(0.05)
        with client(gateway, source="127.0.0.31", auth=("alice", "secret")) as other:
            quick_started = time.perf_counter()
            assert other.get("/hello").status_code == 200
            quick = time.perf_counter() - quick_started
        waiting.join()
        slow = time.perf_counter() - started
    assert max(timings[:5]) < 0.25  # five free failures (bcrypt cost 10: ~60 ms each)
    assert timings[5] >= 0.25 and timings[6] >= 0.5  # then 0.25 s, 0.5 s, ...
    assert slow >= 1.0 and quick < 0.5
    assert "repeated failed logins from 127.0.0.30" in gateway.stderr()


# PHP --------------------------------------------------------------------------------------------


@pytest.mark.php
def test_php_sees_remote_user(folder: Path) -> None:
    require_program("php-cgi")
    (folder / "php").mkdir(exist_ok=True)
    (folder / "run").mkdir(exist_ok=True)
    shutil.copy(Path(__file__).parent / "php_site" / "env.php", folder / "php" / "env.php")
    with run_gateway(config_text=PHP_CONFIG.format(folder=folder)) as php:
        status, body = curl(php, "/env.php", "-H", "Host: php.test", "--digest", "-u", "alice:secret")
        assert status == 200, body
        data = json.loads(body)
        assert data["REMOTE_USER"] == "alice"
        assert "HTTP_AUTHORIZATION" not in data
        assert curl(php, "/env.php", "-H", "Host: php.test")[0] == 401


# Paths that spell a protected prefix another way -------------------------------------------------

BYPASS_CONFIG = """
[server]
runtime_dir = "{folder}/run"

[[vhost]]
names = ["php.test"]
  [[vhost.route]]
  path = "/admin/"
  handler = "php"
  root = "{folder}/site"
  auth = {{ type = "basic", realm = "admin", users = "{folder}/basic" }}
  [[vhost.route]]
  path = "/private/"
  handler = "static"
  root = "{folder}/site"
  allow = ["10.9.9.9"]
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{folder}/site"
"""
SPELLINGS = ["/{p}", "//{p}", "///{p}", "/%2F{p}", "/./{p}", "/x/..//{p}"]


def raw_get(gateway: Gateway, target: str, headers: dict[str, str]) -> tuple[int, str]:
    """GET with the target sent as written (httpx would read "//admin" as a host)."""
    connection = http.client.HTTPConnection(*gateway.address, timeout=20)
    try:
        connection.request("GET", target, headers=headers)
        reply = connection.getresponse()
        return reply.status, reply.read().decode()
    finally:
        connection.close()


@pytest.mark.php
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_a_protected_prefix_spelt_otherwise_is_still_protected(folder: Path, spelling: str) -> None:
    """The route is chosen by the path with slashes merged (nginx's merge_slashes), so the stage applies.

    The file handlers map the empty segments away: before, "//admin/" fell through
    to the "/" route and ran the protected script without asking for a password.
    """
    require_program("php-cgi")
    site = folder / "site"
    (site / "admin").mkdir(parents=True, exist_ok=True)
    (site / "private").mkdir(exist_ok=True)
    (site / "admin" / "index.php").write_text("<?php echo 'ADMIN SECRET';\n")
    (site / "private" / "p.txt").write_text("private data\n")
    (folder / "run").mkdir(exist_ok=True)
    host = {"Host": "php.test"}
    with run_gateway(config_text=BYPASS_CONFIG.format(folder=folder)) as php:
        status, body = raw_get(php, spelling.format(p="admin/index.php"), host)
        assert (status, "ADMIN SECRET" in body) == (401, False)
        status, body = raw_get(php, spelling.format(p="private/p.txt"), host)
        assert (status, "private data" in body) == (403, False)
        alice = {**host, "Authorization": "Basic " + base64.b64encode(b"alice:secret").decode()}
        status, body = raw_get(php, spelling.format(p="admin/index.php"), alice)
        # The file handlers refuse an encoded slash or a ".." in what the client sent (404); the rest name the script.
        refused = "%2F" in spelling or ".." in spelling
        assert (status, body) == ((404, "Not Found\n") if refused else (200, "ADMIN SECRET"))
