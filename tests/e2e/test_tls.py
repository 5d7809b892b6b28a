"""TLS end to end: certificates made here (trustme), a plain and a TLS listener, real TLS clients.

What a user notices: the certificate each name gets (SNI), https in the app's
scope and HTTPS=on for PHP and CGI, a plain-HTTP client on the TLS port told
so in words, a client that never finishes its handshake cut off, plain HTTP
redirected to the TLS port, and certificates renewed on SIGHUP without a
connection dropped (one process, and two workers).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.conftest import require_program
from tests.support.server import gateway_command, read_one_response, read_response
from tests.support.tls import Pki, TlsGateway, get, run_listeners, serial, served_names

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

SITES = """
[server]
listen = ["{plain}", { address = "{tls}", tls = { cert = "CERTS/default.crt", key = "CERTS/default.key" } }]

[limits]
header_timeout = 1

[[vhost]]
names = ["a.test"]
tls = { cert = "CERTS/a.crt", key = "CERTS/a.key" }
https_redirect = true
  [[vhost.route]]
  path = "/.well-known/acme-challenge/"
  handler = "asgi"
  app = "tests.support.apps:echo"
  https_redirect = false
  [[vhost.route]]
  handler = "asgi"
  app = "tests.support.apps:echo"

[[vhost]]
names = ["b.test", "*.b.test"]
tls = { cert = "CERTS/b.crt", key = "CERTS/b.key" }
  [[vhost.route]]
  handler = "asgi"
  app = "tests.support.apps:echo"

[[vhost]]
names = ["ws.test"]
tls = { cert = "CERTS/ws.crt", key = "CERTS/ws.key" }
https_redirect = true
  [[vhost.route]]
  handler = "asgi"
  app = "tests.e2e.ws_apps:app"
"""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    pki = Pki(tmp_path_factory.mktemp("certs"))
    pki.issue("default", "default.test")
    pki.issue("a", "a.test")
    pki.issue("b", "b.test", "*.b.test")
    pki.issue("ws", "ws.test")
    return pki


@pytest.fixture(scope="module")
def sites(pki: Pki) -> Iterator[TlsGateway]:
    with run_listeners(SITES.replace("CERTS", str(pki.folder))) as gateway:
        yield gateway


def unchecked_names(pki: Pki) -> ssl.SSLContext:
    """Trusts the CA but accepts any name: to see which certificate an unknown name gets."""
    context = pki.client()
    context.check_hostname = False
    return context


# SNI and defaults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.test", ["a.test"]), ("b.test", ["b.test", "*.b.test"]), ("www.b.test", ["b.test", "*.b.test"])],
)
def test_sni_chooses_the_vhosts_certificate(sites: TlsGateway, pki: Pki, name: str, expected: list[str]) -> None:
    with sites.connect(name, pki.client()) as tls:  # the client checks the name against the certificate
        assert served_names(tls) == expected
        status, _, body = get(tls, name)
    assert status == 200
    assert json.loads(body)["scheme"] == "https"


@pytest.mark.parametrize("name", ["other.test", None])
def test_unknown_names_and_no_sni_get_the_listeners_default(sites: TlsGateway, pki: Pki, name: str | None) -> None:
    with sites.connect(name, unchecked_names(pki)) as tls:
        assert served_names(tls) == ["default.test"]


def test_modern_defaults_tls12_or_newer_and_alpn_http11(sites: TlsGateway, pki: Pki) -> None:
    with sites.connect("a.test", pki.client()) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() == "http/1.1"  # the client offered h2 first
    old = unchecked_names(pki)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the point: a client that offers only TLS 1.1
        old.minimum_version = ssl.TLSVersion.TLSv1_1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("DEFAULT:@SECLEVEL=0")  # lets this OpenSSL offer TLS 1.1 at all
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        sites.connect("a.test", old).close()


# Requests over TLS -------------------------------------------------------------------------------------


def test_https_requests_reach_the_app_with_scheme_https_on_one_connection(sites: TlsGateway, pki: Pki) -> None:
    with sites.connect("www.b.test", pki.client()) as tls:
        first = get(tls, "www.b.test", "/one?x=1")
        second = get(tls, "www.b.test", "/two")
    for status, _, body in (first, second):
        assert status == 200
        seen = json.loads(body)
        assert seen["scheme"] == "https"
        assert seen["server"] == ["127.0.0.1", sites.tls_port]
    assert json.loads(second[2])["path"] == "/two"
    # The access log is the same as on plain HTTP.
    sites.gateway.wait_for_log('"GET /one?x=1 HTTP/1.1" 200', stream="stdout")


def test_plain_http_on_the_tls_port_gets_a_400_that_says_so(sites: TlsGateway) -> None:
    with socket.create_connection(("127.0.0.1", sites.tls_port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"The plain HTTP request was sent to an HTTPS port" in answer
    assert b"connection: close" in answer


def test_a_handshake_that_never_completes_is_cut_off_after_header_timeout(sites: TlsGateway) -> None:
    for opening in (b"", b"\x16\x03\x01"):  # silent, then a handshake record that never finishes
        with socket.create_connection(("127.0.0.1", sites.tls_port), timeout=5) as sock:
            sock.sendall(opening)
            started = time.monotonic()
            assert read_response(sock, timeout=5) == b""
            elapsed = time.monotonic() - started
        assert 0.8 <= elapsed < 3.0, (opening, elapsed)


def test_header_timeout_counts_from_the_accept_not_the_handshake(sites: TlsGateway, pki: Pki) -> None:
    started = time.monotonic()
    with sites.connect("a.test", pki.client()) as tls:
        answer = read_response(tls, timeout=5)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert time.monotonic() - started < 3.0  # header_timeout = 1, checked once a second


# HTTP → HTTPS ---------------------------------------------------------------------------------------------


def test_plain_http_to_a_redirecting_vhost_gets_308_to_the_tls_port(sites: TlsGateway, pki: Pki) -> None:
    with socket.create_connection(("127.0.0.1", sites.plain_port), timeout=5) as sock:
        sock.sendall(b"POST /form?next=%2Fhome HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\n\r\nhi")
        status, headers, _ = read_one_response(sock)
        assert status == 308  # keeps the method and body
        assert headers[b"location"] == f"https://a.test:{sites.tls_port}/form?next=%2Fhome".encode()
        # An ACME http-01 challenge stays on plain HTTP (the route sets https_redirect = false).
        status, _, body = get(sock, "a.test", "/.well-known/acme-challenge/token")
        assert status == 200 and json.loads(body)["scheme"] == "http"
        status, _, _ = get(sock, "b.test")  # a vhost without https_redirect
        assert status == 200
    with sites.connect("a.test", pki.client()) as tls:
        status, _, body = get(tls, "a.test", "/form")
    assert status == 200 and json.loads(body)["scheme"] == "https"


def test_wss_over_tls_and_plain_ws_refused_on_a_redirecting_vhost(sites: TlsGateway, pki: Pki) -> None:
    async def talk() -> str:
        uri = f"wss://ws.test:{sites.tls_port}/echo"
        where = {"host": "127.0.0.1", "port": sites.tls_port, "server_hostname": "ws.test"}
        async with connect(uri, ssl=pki.client(), open_timeout=10, **where) as ws:  # type: ignore[arg-type]
            await ws.send("over tls")
            return str(await ws.recv())

    async def plain() -> None:
        async with connect(f"ws://ws.test:{sites.plain_port}/echo", host="127.0.0.1", port=sites.plain_port):
            pass

    assert asyncio.run(talk()) == "over tls"
    with pytest.raises(InvalidStatus) as refused:  # ws:// on a vhost with https_redirect: told to use wss://
        asyncio.run(plain())
    assert refused.value.response.status_code == 403
    assert f"wss://ws.test:{sites.tls_port}/echo".encode() in refused.value.response.body
    with sites.connect("ws.test", pki.client()) as tls:
        status, _, body = get(tls, "ws.test", "/stats")
    assert status == 200
    assert json.loads(body)["scopes"][-1]["scheme"] == "wss"


# PHP, CGI and WSGI see HTTPS ------------------------------------------------------------------------------

BACKENDS = """
[server]
listen = ["{plain}", { address = "{tls}", tls = { cert = "CERTS/default.crt", key = "CERTS/default.key" } }]
runtime_dir = "RUNTIME"

[[vhost]]
names = ["default.test"]
  [[vhost.route]]
  path = "/cgi-bin/"
  handler = "cgi"
  root = "ROOT/cgi"
  [[vhost.route]]
  path = "/wsgi/"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.apps:env"
  [[vhost.route]]
  handler = "php"
  root = "ROOT/php"
  pool = { max = 1 }
"""


@pytest.mark.php
def test_php_cgi_and_wsgi_see_https_on_the_tls_listener_only(pki: Pki, tmp_path: Path) -> None:
    require_program("php-cgi")
    (tmp_path / "php").mkdir()
    (tmp_path / "php" / "index.php").write_text(
        "<?php header('Content-Type: text/plain'); echo 'HTTPS=' . ($_SERVER['HTTPS'] ?? '') . ';';"
    )
    (tmp_path / "cgi").mkdir()
    script = tmp_path / "cgi" / "https.sh"
    script.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nHTTPS=%s;' \"$HTTPS\"\n")
    script.chmod(0o755)
    config = BACKENDS.replace("CERTS", str(pki.folder)).replace("ROOT", str(tmp_path))
    with run_listeners(config.replace("RUNTIME", str(tmp_path / "run"))) as gateway:
        with gateway.connect("default.test", pki.client()) as tls:
            php, cgi, wsgi = (get(tls, "default.test", path) for path in ("/", "/cgi-bin/https.sh", "/wsgi/"))
        with socket.create_connection(("127.0.0.1", gateway.plain_port), timeout=5) as sock:
            plain_php, plain_cgi, plain_wsgi = (
                get(sock, "default.test", p) for p in ("/", "/cgi-bin/https.sh", "/wsgi/")
            )
    assert (php[0], php[2]) == (200, b"HTTPS=on;")
    assert (cgi[0], cgi[2]) == (200, b"HTTPS=on;")
    assert json.loads(wsgi[2])["wsgi.url_scheme"] == "https"
    assert plain_php[2] == b"HTTPS=;" and plain_cgi[2] == b"HTTPS=;"
    assert json.loads(plain_wsgi[2])["wsgi.url_scheme"] == "http"


# Certificate reload -----------------------------------------------------------------------------------------

RELOADING = """
[server]
listen = [{ address = "{plain}" }, { address = "{tls}", tls = { cert = "CERTS/site.crt", key = "CERTS/site.key" } }]
workers = WORKERS
loop = "LOOP"
shutdown_timeout = 10

[[vhost]]
names = ["site.test"]
  [[vhost.route]]
  path = "/slow"
  handler = "asgi"
  app = "tests.support.apps:slow"
  [[vhost.route]]
  handler = "asgi"
  app = "tests.support.apps:echo"
"""


def reload_config(folder: Path, workers: int, loop: str) -> str:
    """The acceptor peeks and hands sockets to the loop's own TLS: uvloop's and asyncio's are different code."""
    return RELOADING.replace("CERTS", str(folder)).replace("WORKERS", str(workers)).replace("LOOP", loop)


def test_sighup_in_one_process_serves_the_new_certificate_and_keeps_open_connections(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    pki.issue("site", "site.test")
    with (
        run_listeners(reload_config(tmp_path, 1, "asyncio")) as gateway,
        gateway.connect("site.test", pki.client()) as kept,
    ):
        assert get(kept, "site.test")[0] == 200
        before = serial(kept)
        pki.issue("site", "site.test")  # renewed
        reload = gateway_command("reload", str(gateway.gateway.workdir / "gateway.toml"))
        assert reload.returncode == 0, reload.stderr
        assert "reloading the certificates (not the config) of gateway" in reload.stdout
        gateway.gateway.wait_for_log("certificates reloaded")
        with gateway.connect("site.test", pki.client()) as fresh:
            assert serial(fresh) != before
            assert get(fresh, "site.test")[0] == 200
        assert get(kept, "site.test")[0] == 200  # the open keep-alive connection goes on
        assert serial(kept) == before
        # A broken renewal is refused and logged; the current certificate stays.
        (tmp_path / "site.key").write_bytes(pki.ca.issue_cert("x.test").private_key_pem.bytes())
        gateway.gateway.proc.send_signal(signal.SIGHUP)
        log = gateway.gateway.wait_for_log("the current certificates stay in use")
        assert f"server.listen[1].tls.key: {tmp_path}/site.key is not the key of the certificate" in log
        with gateway.connect("site.test", pki.client()) as after:
            assert get(after, "site.test")[0] == 200
        assert get(kept, "site.test")[0] == 200


def test_two_workers_serve_tls_and_a_sighup_renews_it_without_a_failed_request(tmp_path: Path) -> None:
    """Each worker builds its contexts for the fd it inherited; SIGHUP's new generation reads the new files."""
    pki = Pki(tmp_path)
    pki.issue("site", "site.test")
    with run_listeners(reload_config(tmp_path, 2, "auto")) as gateway:
        pids = set()
        deadline = time.monotonic() + 10
        while len(pids) < 2 and time.monotonic() < deadline:
            with gateway.connect("site.test", pki.client()) as tls:
                pids.add(json.loads(get(tls, "site.test")[2])["pid"])
        assert len(pids) == 2 and gateway.gateway.proc.pid not in pids
        with gateway.connect("site.test", pki.client()) as kept:
            before = serial(kept)
            pki.issue("site", "site.test")
            gateway.gateway.proc.send_signal(signal.SIGHUP)
            # Requests go on over the open connection until its worker drains: the one in flight
            # then is answered (with Connection: close), none fails.
            closing, deadline = False, time.monotonic() + 30
            while not closing and time.monotonic() < deadline:
                status, headers, body = get(kept, "site.test", "/slow?s=0.5")
                assert (status, body) == (200, b"slept")
                closing = headers.get(b"connection") == b"close"
            assert closing, gateway.gateway.stderr()[-3000:]
        deadline = time.monotonic() + 20
        while gateway.gateway.stderr().count("stops (reloaded)") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        log = gateway.gateway.stderr()
        assert log.count("stops (reloaded)") == 2, log[-3000:]
        for _ in range(4):  # whichever worker answers: the new generation has the new certificate
            with gateway.connect("site.test", pki.client()) as fresh:
                assert serial(fresh) != before
                assert get(fresh, "site.test")[0] == 200
        with socket.create_connection(("127.0.0.1", gateway.plain_port), timeout=5) as sock:
            assert json.loads(get(sock, "site.test")[2])["scheme"] == "http"
        assert "exited with" not in gateway.gateway.stderr()
