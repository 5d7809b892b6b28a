"""The wsgi handler on the real server: our bridge beside a2wsgi, wsgiref.validate, Flask and Django.

a2wsgi is the reference for the environ and the responses; where we differ
on purpose (PEP 3333's exc_info, httpoxy, Host, framing) the test says so.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.wsgi_apps.apps import HEADER_CASES
from tests.support.server import ROOT, Gateway, read_one_response, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

SERVE = "tests.e2e.wsgi_apps.serve:app"
PLAIN = "tests.e2e.wsgi_apps.apps:environ_app"
MOUNT = "/mnt"
# Keys that differ between the bridges by design: the stream objects; a2wsgi says
# multiprocess and adds asgi.scope; only ours says wsgi.input_terminated (werkzeug
# needs it for chunked bodies); REMOTE_PORT is a different connection each time.
BRIDGE_KEYS = {"wsgi.input", "wsgi.errors", "wsgi.multiprocess", "wsgi.input_terminated", "asgi.scope", "REMOTE_PORT"}


@contextlib.contextmanager
def serving(
    app: str = PLAIN, bridge: str = "gateway", mount: str = MOUNT, config_text: str | None = None, **env: str
) -> Iterator[Gateway]:
    variables = {"GATEWAY_TEST_WSGI_APP": app, "GATEWAY_TEST_WSGI_BRIDGE": bridge, "GATEWAY_TEST_WSGI_MOUNT": mount}
    with run_gateway(SERVE, config_text=config_text, env={**variables, **env}) as gw:
        yield gw


@contextlib.contextmanager
def routed(app: str = PLAIN, threads: int = 8, limits: str = "") -> Iterator[Gateway]:
    """The handler as a config's route at MOUNT, as users write it: a bodyless GET is taken without a task."""
    route = f'path = "{MOUNT}"\nhandler = "wsgi"\napp = "{app}"\nthreads = {threads}\n'
    with run_gateway(config_text=f'[limits]\n{limits}\n[[vhost]]\nnames = ["x"]\n[[vhost.route]]\n{route}') as gw:
        yield gw


@pytest.fixture(scope="module")
def ours() -> Iterator[Gateway]:
    with routed(limits='max_body_size = "100MiB"') as gw:
        yield gw


@pytest.fixture(scope="module")
def reference() -> Iterator[Gateway]:
    with serving(bridge="a2wsgi") as gw:
        yield gw


def stats(gw: Gateway, tag: str) -> dict[str, Any]:
    result: dict[str, Any] = httpx.get(f"{gw.url}{MOUNT}/stats?tag={tag}").json()
    return result


def wait_for(gw: Gateway, tag: str, key: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not (seen := stats(gw, tag)).get(key):
        assert time.monotonic() < deadline, f"{key} not set for {tag}: {seen}"
        time.sleep(0.05)
    return seen


# The same cases through both bridges ----------------------------------------------

ENVIRON_CASES = [
    ("GET", "/mnt/plain?x=1&y=%20z", {}, None),
    ("GET", "/mnt", {}, None),
    ("GET", "/mnt/caf%C3%A9/a%2Fb;p?q=%C3%A9", {"Accept-Language": "fr", "X-Custom": "yes"}, None),
    ("POST", "/mnt/form", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1&b=two+words"),
    ("PUT", "/mnt/json/", {"Content-Type": "application/json", "Cookie": "k=v"}, b'{"n": [1, 2]}'),
    ("DELETE", "/mnt/item/7", {"Authorization": "Bearer t"}, None),
]


def _environ(gw: Gateway, method: str, target: str, headers: dict[str, str], body: bytes | None) -> dict[str, Any]:
    response = httpx.request(method, gw.url + target, headers=headers, content=body)
    assert response.status_code == 200, response.text
    seen: dict[str, Any] = response.json()
    port = str(gw.port)
    return {k: v.replace(port, "PORT") if isinstance(v, str) else v for k, v in seen.items() if k not in BRIDGE_KEYS}


@pytest.mark.parametrize(("method", "target", "headers", "body"), ENVIRON_CASES)
def test_environ_matches_a2wsgi(
    ours: Gateway, reference: Gateway, method: str, target: str, headers: dict[str, str], body: bytes | None
) -> None:
    mine = _environ(ours, method, target, headers, body)
    theirs = _environ(reference, method, target, headers, body)
    assert mine == theirs
    assert mine["SCRIPT_NAME"] == MOUNT


def test_environ_values_of_our_bridge(ours: Gateway) -> None:
    seen = httpx.get(ours.url + "/mnt/caf%C3%A9/a%2Fb?q=%C3%A9").json()
    assert seen["PATH_INFO"] == "/caf\u00c3\u00a9/a/b"  # bytes as latin-1, PEP 3333
    assert seen["QUERY_STRING"] == "q=%C3%A9"
    assert seen["REMOTE_ADDR"] == "127.0.0.1"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("127.0.0.1", str(ours.port))
    assert seen["wsgi.url_scheme"] == "http"
    assert (seen["wsgi.multithread"], seen["wsgi.multiprocess"], seen["wsgi.run_once"]) == (True, False, False)
    assert seen["wsgi.input_terminated"] is True
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_headers_our_way(ours: Gateway, reference: Gateway) -> None:
    """httpoxy, underscores, repeated headers and Host: where we part from a2wsgi on purpose."""
    raw = (
        b"GET /mnt/h HTTP/1.1\r\nHost: example.com:8080\r\nProxy: http://evil.example\r\n"
        b"X-Auth_User: mallory\r\nX-Dup: a\r\nX-Dup: b\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n"
    )
    with ours.connect() as sock:
        sock.sendall(raw)
        _, _, body = read_one_response(sock)
    seen = json.loads(body)
    assert "HTTP_PROXY" not in seen
    assert "HTTP_X_AUTH_USER" not in seen
    assert seen["HTTP_X_DUP"] == "a, b"
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("example.com", "8080")
    with reference.connect() as sock:
        sock.sendall(raw)
        _, _, body = read_one_response(sock)
    theirs = json.loads(body)
    assert theirs["HTTP_PROXY"] == "http://evil.example"  # what the reference would have let through
    assert theirs["SERVER_NAME"] == "127.0.0.1"


RESPONSE_CASES = [
    ("GET", "/mnt/write", None),
    ("GET", "/mnt/teapot", None),
    ("GET", "/mnt/empty", None),
    ("GET", "/mnt/stream?n=4&size=1000", None),
    ("HEAD", "/mnt/teapot", None),
    ("POST", "/mnt/lines", b"first line\nabcdef\nthird\nlast"),
    ("POST", "/mnt/upload", b"x" * 300_000),
    ("GET", "/mnt/error-before", None),
]
FRAMING = {"content-length", "transfer-encoding", "date", "connection"}


def _response(gw: Gateway, method: str, target: str, body: bytes | None) -> tuple[int, list[tuple[str, str]], bytes]:
    response = httpx.request(method, gw.url + target, content=body)
    headers = sorted((k.lower(), v) for k, v in response.headers.multi_items() if k.lower() not in FRAMING)
    content = response.content
    if target.endswith("upload"):
        content = json.dumps({k: v for k, v in response.json().items() if k != "grown_kib"}).encode()
    return response.status_code, headers, content


@pytest.mark.parametrize(("method", "target", "body"), RESPONSE_CASES)
def test_responses_match_a2wsgi(
    ours: Gateway, reference: Gateway, method: str, target: str, body: bytes | None
) -> None:
    assert _response(ours, method, target, body) == _response(reference, method, target, body)


def test_a_response_made_at_once_gets_a_content_length(ours: Gateway) -> None:
    response = httpx.get(ours.url + "/mnt/teapot")
    assert response.headers["content-length"] == "15"
    assert response.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]


# PEP 3333 behaviour of our bridge ------------------------------------------------------


def test_wsgiref_validate_finds_nothing_wrong() -> None:
    with serving("tests.e2e.wsgi_apps.apps:validated_app") as gw, httpx.Client(base_url=gw.url) as client:
        cases = [
            ("GET", "/mnt/plain?a=1", None, 200),
            ("POST", "/mnt/form", b"a=1", 200),
            ("POST", "/mnt/upload", b"y" * 200_000, 200),
            ("POST", "/mnt/lines", b"one\ntwo\nthree\n", 200),
            ("GET", "/mnt/write", None, 200),
            ("GET", "/mnt/teapot", None, 418),
            ("HEAD", "/mnt/teapot", None, 418),
            ("GET", "/mnt/empty", None, 204),
            ("GET", "/mnt/stream?n=3&size=5", None, 200),
            ("GET", "/mnt/error-page", None, 500),
            ("GET", "/mnt/errors", None, 200),
        ]
        for method, target, body, status in cases:
            assert client.request(method, target, content=body).status_code == status, target
    log = gw.stderr()
    assert "AssertionError" not in log and "WSGIWarning" not in log and "Exception ignored" not in log, log


def test_exc_info_replaces_the_headers_before_output(ours: Gateway) -> None:
    response = httpx.get(ours.url + "/mnt/error-page")
    assert (response.status_code, response.text) == (500, "custom error page")


def test_exc_info_after_output_reraises(ours: Gateway) -> None:
    """write() committed the headers, so start_response re-raises; nothing had left yet: a 500."""
    response = httpx.get(ours.url + "/mnt/late-exc-info")
    assert response.status_code == 500
    ours.wait_for_log("ValueError: too late")


def test_an_error_mid_body_cuts_the_connection(ours: Gateway) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(ours.url + "/mnt/error-after")
    ours.wait_for_log("RuntimeError: boom in the middle")


def test_an_error_before_start_response_is_a_500(ours: Gateway) -> None:
    response = httpx.get(ours.url + "/mnt/error-before")
    assert response.status_code == 500
    ours.wait_for_log("RuntimeError: boom before start_response")


def test_wsgi_errors_go_to_the_log(ours: Gateway) -> None:
    assert httpx.get(ours.url + "/mnt/errors").text == "logged"
    log = ours.wait_for_log("partial line")
    assert "gateway.adapters.wsgi" in log and "an error line from the app" in log


def test_chunks_stream_as_the_app_makes_them_and_close_runs(ours: Gateway) -> None:
    started = time.monotonic()
    arrivals = []
    with httpx.stream("GET", ours.url + "/mnt/stream?n=4&size=5&delay=0.25&tag=slow") as response:
        for chunk in response.iter_raw():
            arrivals.append((time.monotonic() - started, chunk))
    assert b"".join(c for _, c in arrivals) == b"AAAAABBBBBCCCCCDDDDD"
    assert arrivals[0][0] < 0.5 and arrivals[-1][0] >= 0.75
    assert stats(ours, "slow") == {"produced": 20, "closed": True, "chunks": 4}


def test_a_client_that_leaves_stops_the_iterable(ours: Gateway) -> None:
    with ours.connect() as sock:
        sock.sendall(b"GET /mnt/stream?n=0&size=1000&delay=0.01&tag=gone HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
    seen = wait_for(ours, "gone", "closed")
    time.sleep(0.2)
    assert stats(ours, "gone")["produced"] == seen["produced"]  # it stopped


def test_clients_leaving_a2wsgi_streams_free_its_threads() -> None:
    """a2wsgi's sender died on the core's ClientDisconnect and its thread blocked for ever: one thread, dead route."""
    with serving(bridge="a2wsgi", GATEWAY_TEST_WSGI_THREADS="1") as gw:
        for index in range(3):
            with gw.connect() as sock:
                sock.sendall(
                    f"GET /mnt/stream?n=0&size=65536&delay=0.01&tag=a2gone{index} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                )
                assert sock.recv(100).startswith(b"HTTP/1.1 200")
            assert (
                wait_for(gw, f"a2gone{index}", "closed")["closed"] is True
            )  # the endless iterable stopped, closed once
        assert httpx.get(gw.url + "/mnt/", timeout=5).status_code == 200


def test_a_client_that_leaves_makes_write_raise(ours: Gateway) -> None:
    with ours.connect() as sock:
        sock.sendall(b"GET /mnt/written-stream?tag=wgone HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.recv(100)
    seen = wait_for(ours, "wgone", "closed")
    assert seen["write_error"] == "ClientDisconnected"


def test_a_slow_reader_holds_the_app_back(ours: Gateway) -> None:
    """Backpressure: an endless write() loop stalls while the client reads nothing."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.connect(ours.address)
    with sock:
        sock.sendall(b"GET /mnt/written-stream?tag=slowreader HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(1.0)
        first = stats(ours, "slowreader")["produced"]
        time.sleep(0.5)
        assert stats(ours, "slowreader")["produced"] == first
        assert first < 16 * 1024 * 1024
        sock.settimeout(5)
        received = 0
        while received < first + 5 * 65536:  # reading lets it go on
            received += len(sock.recv(1 << 20))
    assert stats(ours, "slowreader")["produced"] > first
    wait_for(ours, "slowreader", "closed")


def _chunks(total: int, size: int = 1 << 20) -> Iterator[bytes]:
    block = bytes(range(256)) * (size // 256)
    for _ in range(total // size):
        yield block


def test_a_large_chunked_upload_streams_through(ours: Gateway) -> None:
    total = 64 << 20
    expected = hashlib.sha256()
    for block in _chunks(total):
        expected.update(block)
    response = httpx.post(ours.url + "/mnt/upload", content=_chunks(total), timeout=30)
    seen = response.json()
    assert (seen["length"], seen["sha256"]) == (total, expected.hexdigest())
    assert seen["largest"] <= 65536
    assert seen["grown_kib"] < 32 * 1024, "the body was buffered, not streamed"


def test_a_sized_upload_and_readline(ours: Gateway) -> None:
    body = b"".join(_chunks(8 << 20))
    seen = httpx.post(ours.url + "/mnt/upload", content=body, timeout=30).json()
    assert (seen["length"], seen["sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
    seen = httpx.post(ours.url + "/mnt/lines", content=b"first line\nabcdef\nthird\nlast").json()
    assert seen == {"first": "first line\n", "limited": "abc", "rest": ["def\n", "third\n", "last"]}


def test_a_client_that_leaves_mid_upload(ours: Gateway) -> None:
    """The app's read raises ClientDisconnected (an OSError); that is no app error to log."""
    with ours.connect() as sock:
        sock.sendall(b"POST /mnt/upload?tag=cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        sock.sendall(b"z" * 100_000)
        time.sleep(0.2)
    assert wait_for(ours, "cut", "read_error")["read_error"] == "ClientDisconnected"
    assert "while serving POST /mnt/upload" not in ours.stderr()
    assert httpx.get(ours.url + "/mnt/after").status_code == 200


def test_100_continue_only_once_the_app_reads(ours: Gateway) -> None:
    with ours.connect() as sock:
        sock.sendall(b"PUT /mnt/env HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        status, _, body = read_one_response(sock)
    assert (status, json.loads(body)["body"]) == (200, "hello")


def test_requests_run_side_by_side_on_the_threads(ours: Gateway) -> None:
    def fetch(number: int) -> bytes:
        return httpx.get(f"{ours.url}/mnt/stream?n=2&size=3&delay=0.3&tag=side{number}", timeout=10).content

    started = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        bodies = list(pool.map(fetch, range(16)))
    assert bodies == [b"AAABBB"] * 16
    assert time.monotonic() - started < 3.0  # 8 threads: two waves of 0.6 s, not sixteen


@pytest.mark.parametrize("kind", sorted(HEADER_CASES))
def test_response_headers_the_same_with_or_without_a_task(ours: Gateway, kind: str) -> None:
    """A GET is answered from the worker's hand-off, a POST through a task: the same bytes for either."""
    seen = {}
    for method in ("GET", "POST"):
        with ours.connect() as sock:
            length = "Content-Length: 0\r\n" if method == "POST" else ""
            head = f"{method} /mnt/headers?kind={kind} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{length}\r\n"
            sock.sendall(head.encode())
            seen[method] = re.sub(rb"date: [^\r]*\r\n", b"", read_response(sock))
    assert seen["GET"] == seen["POST"]
    assert b"x-injected" not in seen["GET"].lower()
    status = int(seen["GET"].split(b" ", 2)[1])
    # A whole body that belies the declared length is refused before anything is written, as for any app.
    refused = kind.startswith("crlf") or kind in ("short", "long", "space-name", "colon-name", "nul-value")
    assert status == (500 if refused else 200), seen["GET"]
    if kind == "exact":
        assert seen["GET"].endswith(b"\r\n\r\nHello, world!") and b"content-length: 13\r\n" in seen["GET"]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_request_whose_client_left_while_queued_never_runs(method: str) -> None:
    """One thread, busy: a request queued behind it whose client resets is dropped, not run for nobody.

    A GET is taken without a task, a POST with its body through one: both are dropped.
    """
    with routed(threads=1) as gw:
        with ThreadPoolExecutor(1) as pool:
            busy = pool.submit(httpx.get, gw.url + "/mnt/sleep?s=1&tag=busy", timeout=10)
            time.sleep(0.3)  # (asking /stats would queue behind it too)
            with gw.connect() as sock:
                body = "Content-Length: 3\r\n\r\nabc" if method == "POST" else "\r\n"
                sock.sendall(f"{method} /mnt/sleep?tag=left HTTP/1.1\r\nHost: x\r\n{body}".encode())
                time.sleep(0.2)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close with a reset
            assert busy.result().json() == {"slept": 1.0}
        assert httpx.get(gw.url + "/mnt/sleep?tag=after").status_code == 200  # queued after "left"
        assert stats(gw, "left") == {}


def test_a_request_past_its_timeout_before_any_output_is_a_504() -> None:
    with routed(threads=1, limits='request_timeout = "0.5s"') as gw:
        started = time.monotonic()
        response = httpx.get(gw.url + "/mnt/sleep?s=2.5&tag=slow", timeout=10)
        assert response.status_code == 504
        # Timers are checked once a second: the 504 comes 0.5 to 1.5 s in, long before the app's answer.
        assert time.monotonic() - started < 2.0
        time.sleep(max(0.0, started + 2.7 - time.monotonic()))  # asked sooner, /stats would wait past 0.5 s too
        assert stats(gw, "slow")["finished"] is True  # the app is not interrupted; its answer is dropped
        assert httpx.get(gw.url + "/mnt/teapot").text == "short and stout"


# Flask --------------------------------------------------------------------------------


@pytest.mark.parametrize("bridge", ["gateway", "a2wsgi"])
def test_flask_forms_json_sessions_and_urls(bridge: str) -> None:
    """On either bridge: a2wsgi's own environ lacked wsgi.input_terminated, and Flask read a chunked body as empty."""
    flask = "tests.e2e.wsgi_apps.flask_app:app"
    with serving(flask, bridge=bridge, mount="/flask") as gw, httpx.Client(base_url=gw.url) as client:
        assert client.get("/flask/").text == "Hello from Flask"
        form = client.post("/flask/form", data={"name": "Ada", "colour": ["red", "blue"]}).json()
        assert form == {"name": "Ada", "colours": ["red", "blue"], "attachment": None, "attachment_name": None}
        files = {"attachment": ("notes.txt", b"file body", "text/plain")}
        upload = client.post("/flask/form", data={"name": "Bo"}, files=files).json()
        assert (upload["attachment"], upload["attachment_name"]) == ("file body", "notes.txt")
        assert client.post("/flask/json", json={"numbers": [1, 2, 3.5]}).json()["total"] == 6.5
        where = client.get("/flask/where").json()
        assert where == {
            "url": f"{gw.url}/flask/where",
            "path": "/where",
            "script_root": "/flask",
            "remote_addr": "127.0.0.1",
            "host": f"127.0.0.1:{gw.port}",
        }
        assert client.get("/flask/go").headers["location"] == "/flask/where"
        assert [client.get("/flask/count").json()["count"] for _ in range(3)] == [1, 2, 3]
        chunked = client.post("/flask/chunked", content=iter([b"a" * 1000, b"b" * 500]))
        assert chunked.json() == {"length": 1500}


@pytest.mark.parametrize("bridge", ["gateway", "a2wsgi"])
def test_the_auth_stages_user_is_remote_user(tmp_path: Path, bridge: str) -> None:
    users = tmp_path / "users"
    users.write_text("bob:{SHA}" + base64.b64encode(hashlib.sha1(b"s3cret").digest()).decode() + "\n")
    route = f'path = "{MOUNT}"\nhandler = "wsgi"\napp = "{PLAIN}"\nbridge = "{bridge}"\n'
    route += f'auth = {{ type = "basic", realm = "r", users = "{users}" }}\n'
    with run_gateway(config_text=f'[[vhost]]\nnames = ["x"]\n[[vhost.route]]\n{route}') as gw:
        seen = httpx.get(f"{gw.url}{MOUNT}/who", auth=("bob", "s3cret")).json()
    assert (seen["REMOTE_USER"], seen["AUTH_TYPE"]) == ("bob", "Basic")


# Django -------------------------------------------------------------------------------

DJANGO_APP = "tests.e2e.wsgi_apps.django_site.wsgi:application"
ADMIN_PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def django_env() -> Iterator[dict[str, str]]:
    """A migrated SQLite database with a superuser, and the collected static files, in a tmp dir."""
    with tempfile.TemporaryDirectory(prefix="gateway-django-") as tmp:
        env = {
            "DJANGO_SETTINGS_MODULE": "tests.e2e.wsgi_apps.django_site.settings",
            "GATEWAY_TEST_DJANGO_DB": str(Path(tmp) / "db.sqlite3"),
            "GATEWAY_TEST_DJANGO_STATIC": str(Path(tmp) / "static"),
        }
        full = {**os.environ, "PYTHONPATH": str(ROOT), **env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD}
        for command in (
            ["migrate", "--noinput", "-v0"],
            ["createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com"],
            ["collectstatic", "--noinput", "-v0"],
        ):
            subprocess.run([sys.executable, "-m", "django", *command], cwd=ROOT, env=full, check=True, timeout=60)
        yield env


def _django_config(static_root: str) -> str:
    return f"""
[[vhost]]
names = ["django.test"]
  [[vhost.route]]
  path = "/site/static/"
  handler = "static"
  root = "{static_root}"
  [[vhost.route]]
  path = "/site/"
  handler = "wsgi"
  app = "{DJANGO_APP}"
"""


def _csrf_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def test_django_admin_login_with_csrf_sessions_and_static(django_env: dict[str, str]) -> None:
    """Routed by a real config: /site/ to Django through the wsgi handler, /site/static/ to files."""
    config = _django_config(django_env["GATEWAY_TEST_DJANGO_STATIC"])
    with run_gateway(config_text=config, env=django_env) as gw, httpx.Client(base_url=gw.url) as client:
        first = client.get("/site/admin/")
        assert (first.status_code, first.headers["location"]) == (302, "/site/admin/login/?next=/site/admin/")
        page = client.get("/site/admin/login/?next=/site/admin/")
        assert page.status_code == 200 and "csrftoken" in client.cookies
        stylesheet = re.search(r'href="(/site/static/admin/css/[^"]+\.css)"', page.text)
        assert stylesheet, page.text
        css = client.get(stylesheet.group(1))
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        form = {"username": "admin", "password": ADMIN_PASSWORD, "next": "/site/admin/"}
        refused = client.post("/site/admin/login/", data=form)  # no token
        assert refused.status_code == 403 and "CSRF" in refused.text
        token = _csrf_token(page.text)
        wrong = client.post("/site/admin/login/", data={**form, "password": "nope", "csrfmiddlewaretoken": token})
        assert wrong.status_code == 200 and "Please enter the correct username and password" in wrong.text
        login = client.post("/site/admin/login/?next=/site/admin/", data={**form, "csrfmiddlewaretoken": token})
        assert (login.status_code, login.headers["location"]) == (302, "/site/admin/")
        assert "sessionid" in client.cookies
        home = client.get("/site/admin/")
        assert home.status_code == 200
        assert "Site administration" in home.text and "Welcome," in home.text and "<strong>admin</strong>" in home.text
        users = client.get("/site/admin/auth/user/")
        assert users.status_code == 200 and "admin@example.com" in users.text
        where = client.get("/site/where/").json()
        assert where == {
            "script_name": "/site",
            "path_info": "/where/",
            "path": "/site/where/",
            "absolute": f"{gw.url}/site/where/",
        }


DENIED_ADMIN = f"""
[[vhost]]
names = ["x"]
  [[vhost.route]]
  path = "/admin/"
  handler = "wsgi"
  app = "{PLAIN}"
  deny = ["127.0.0.0/8"]
  [[vhost.route]]
  path = "/"
  handler = "wsgi"
  app = "{PLAIN}"
"""


@pytest.mark.parametrize("target", ["/admin/../x", "/admin/%2e%2e/x", "/admin/./../x", "//x"])
def test_the_app_sees_the_path_its_route_was_chosen_by(target: str) -> None:
    """/admin/../x routes as /x, past the /admin route's deny: the app must not see /admin/../x (its admin view)."""
    with run_gateway(config_text=DENIED_ADMIN) as gw, gw.connect() as sock:
        assert raw_status(sock, "/admin/x") == 403
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status, _, body = read_one_response(sock)
        assert status == 200
        described = json.loads(body)
        assert (described["SCRIPT_NAME"], described["PATH_INFO"]) == ("", "/x")


def raw_status(sock: socket.socket, target: str) -> int:
    sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return read_one_response(sock)[0]
