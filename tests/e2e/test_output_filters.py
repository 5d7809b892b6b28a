"""The output filters over real sockets: headers, compress and ranges around Flask, WSGI, ASGI and static routes.

Bodies are read raw (httpx's iter_raw, curl without --compressed) and decoded
here with the real brotli, zstandard and zlib decoders, so what is checked is
what went over the wire; curl --compressed checks that a real client agrees.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import brotli
import httpx
import pytest
import zstandard

from tests.conftest import require_program
from tests.support.server import Gateway, read_one_response, run_gateway

pytestmark = [pytest.mark.e2e]

FLASK = "tests.e2e.wsgi_apps.flask_app:app"
HELLO = b"Hello from Flask"
TEXT = b"".join(b"line %06d: the quick brown fox jumps over the lazy dog\n" % i for i in range(6000))  # 360 KB

CONFIG = """
[[vhost]]
names = ["filters.test"]
default = true
security_headers = true
  [[vhost.route]]
  path = "/flask/"
  handler = "wsgi"
  app = "{flask}"
  compress = {{ min_size = 0 }}
  headers = {{ set = {{ X-Frame-Options = "DENY" }}, add = {{ X-Served-By = "gateway" }} }}
  [[vhost.route]]
  path = "/nocookie/"
  handler = "wsgi"
  app = "{flask}"
  headers = {{ remove = ["Set-Cookie"] }}
  [[vhost.route]]
  path = "/wsgi-stream"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.apps:stream"
  compress = {{ min_size = 0 }}
  [[vhost.route]]
  path = "/asgi-stream"
  handler = "asgi"
  app = "tests.support.apps:stream"
  compress = {{ min_size = 0, algorithms = ["zstd", "gzip"] }}
  [[vhost.route]]
  path = "/static/"
  handler = "static"
  root = "{root}"
  compress = true
"""


def decoder(coding: str) -> Callable[[bytes], bytes]:
    """An incremental decoder for a content coding ("" for identity)."""
    if coding == "gzip":
        return zlib.decompressobj(31).decompress
    if coding == "br":
        return brotli.Decompressor().process
    if coding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress
    return lambda data: data


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("static")
    (folder / "big.txt").write_bytes(TEXT)  # past the static handler's memory cache: sent with pathsend
    (folder / "page.html").write_bytes(b"<p>" + TEXT[:5000] + b"</p>")  # answered from memory
    (folder / "tiny.txt").write_bytes(b"tiny")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20)
    (folder / "app.js").write_bytes(b"console.log('plain');\n" * 200)
    (folder / "app.js.gz").write_bytes(gzip.compress(b"console.log('precompressed');\n" * 200))
    return folder


@pytest.fixture(scope="module")
def gateway(root: Path) -> Iterator[Gateway]:
    with run_gateway(config_text=CONFIG.format(flask=FLASK, root=root)) as server:
        yield server


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as http:
        yield http


def fetch(client: httpx.Client, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body as sent (not decoded by httpx); accept_encoding= is Accept-Encoding."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    with client.stream("GET", path, headers=sent) as response:
        return response, b"".join(response.iter_raw())


# compress ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_a_flask_page_is_compressed_for_each_coding(client: httpx.Client, coding: str) -> None:
    response, raw = fetch(client, "/flask/", accept_encoding=coding)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == coding
    assert response.headers["vary"] == "Accept-Encoding"
    assert response.headers["content-length"] == str(len(raw))  # one message: the core sizes the output
    assert "accept-ranges" not in response.headers
    assert decoder(coding)(raw) == HELLO


def test_q_values_choose_the_coding(client: httpx.Client) -> None:
    response, raw = fetch(client, "/flask/", accept_encoding="br;q=0.2, gzip;q=0.9, zstd;q=0")
    assert response.headers["content-encoding"] == "gzip" and decoder("gzip")(raw) == HELLO
    response, raw = fetch(client, "/flask/", accept_encoding="identity")
    assert "content-encoding" not in response.headers and raw == HELLO
    assert response.headers["vary"] == "Accept-Encoding"


def test_vary_is_merged_with_flasks(client: httpx.Client) -> None:
    response, _ = fetch(client, "/flask/count", accept_encoding="gzip")
    assert response.headers["vary"] == "Cookie, Accept-Encoding"


@pytest.mark.parametrize(("path", "coding"), [("/wsgi-stream", "br"), ("/asgi-stream", "zstd")])
def test_a_streamed_response_arrives_compressed_piece_by_piece(client: httpx.Client, path: str, coding: str) -> None:
    """The first chunk decodes on arrival, long before the app has finished."""
    decode = decoder(coding)
    arrivals: list[tuple[float, bytes]] = []
    started = time.monotonic()
    with client.stream("GET", f"{path}?n=3&size=200&delay=0.5", headers={"accept-encoding": "br, zstd"}) as response:
        assert response.headers["content-encoding"] == coding
        assert "content-length" not in response.headers
        for piece in response.iter_raw():
            arrivals.append((time.monotonic() - started, decode(piece)))
    text = b"".join(data for _, data in arrivals)
    assert text == b"A" * 200 + b"B" * 200 + b"C" * 200
    first_a = next(at for at, data in arrivals if data.startswith(b"A"))
    assert first_a < arrivals[-1][0] - 0.6, arrivals  # not held back until the end


def test_curl_compressed_reads_what_it_asked_for(gateway: Gateway) -> None:
    curl = require_program("curl")
    result = subprocess.run(
        [curl, "-sS", "--compressed", "-D", "-", f"{gateway.url}/flask/where"],
        capture_output=True,
        check=True,
        timeout=20,
    )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"\r\ncontent-encoding: " in head.lower()
    assert json.loads(body)["path"] == "/where"
    page = subprocess.run(
        [curl, "-sS", "--compressed", f"{gateway.url}/static/big.txt"], capture_output=True, check=True, timeout=20
    )
    assert page.stdout == TEXT


def test_head_has_the_get_head_and_the_connection_lives_on(gateway: Gateway) -> None:
    with gateway.connect() as sock:
        sock.sendall(b"HEAD /flask/ HTTP/1.1\r\nHost: filters.test\r\nAccept-Encoding: gzip\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        assert head.endswith(b"\r\n\r\n")  # no body, not even a chunked terminator
        fields = head.lower().split(b"\r\n")
        assert b"content-encoding: gzip" in fields and b"vary: accept-encoding" in fields
        assert not any(field.startswith(b"content-length:") for field in fields)
        sock.sendall(b"GET /flask/ HTTP/1.1\r\nHost: filters.test\r\nAccept-Encoding: gzip\r\n\r\n")
        status, headers, body = read_one_response(sock)
    assert status == 200 and headers[b"content-encoding"] == b"gzip" and decoder("gzip")(body) == HELLO


# static files -----------------------------------------------------------------------------------


def test_a_large_static_file_is_compressed_from_pathsend(client: httpx.Client) -> None:
    response, raw = fetch(client, "/static/big.txt", accept_encoding="br")
    assert response.headers["content-encoding"] == "br"
    assert response.headers["etag"].startswith('W/"')
    assert len(raw) < len(TEXT) // 5 and decoder("br")(raw) == TEXT
    again = client.get("/static/big.txt", headers={"accept-encoding": "br", "if-none-match": response.headers["etag"]})
    assert again.status_code == 304
    # RFC 9110 §15.4.5: the ETag and Vary the 200 had, so a cache refreshes the response it stored by them.
    assert again.headers["etag"] == response.headers["etag"]
    assert "accept-encoding" in again.headers["vary"].lower()
    plain = client.get("/static/big.txt", headers={"accept-encoding": "identity"})
    assert not plain.headers["etag"].startswith("W/")
    again = client.get("/static/big.txt", headers={"if-none-match": plain.headers["etag"]})
    assert (again.status_code, again.headers["etag"]) == (304, plain.headers["etag"])


def test_a_cached_static_page_is_compressed(client: httpx.Client) -> None:
    response, raw = fetch(client, "/static/page.html", accept_encoding="gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert decoder("gzip")(raw) == b"<p>" + TEXT[:5000] + b"</p>"


def test_precompressed_siblings_pass_untouched(client: httpx.Client, root: Path) -> None:
    response, raw = fetch(client, "/static/app.js", accept_encoding="gzip")
    assert response.headers["content-encoding"] == "gzip"
    assert raw == (root / "app.js.gz").read_bytes()  # the static handler's own file, not ours


@pytest.mark.parametrize(("name", "varies"), [("logo.png", False), ("tiny.txt", True)])
def test_images_and_tiny_files_are_not_compressed(client: httpx.Client, root: Path, name: str, varies: bool) -> None:
    response, raw = fetch(client, f"/static/{name}", accept_encoding="br, gzip")
    assert "content-encoding" not in response.headers and raw == (root / name).read_bytes()
    assert ("accept-encoding" in response.headers.get("vary", "").lower()) is varies


def test_static_ranges_are_the_static_handlers(client: httpx.Client) -> None:
    response, raw = fetch(client, "/static/big.txt", accept_encoding="gzip", range="bytes=100-199")
    assert response.status_code == 206 and "content-encoding" not in response.headers
    assert raw == TEXT[100:200]
    assert "accept-encoding" in response.headers["vary"].lower(), "the full response varies: so does a part of it"


# ranges on a dynamic response -------------------------------------------------------------------


def test_flask_answers_a_range(client: httpx.Client) -> None:
    response, raw = fetch(client, "/flask/", range="bytes=6-9", accept_encoding="gzip")
    assert response.status_code == 206 and raw == b"from"
    assert response.headers["content-range"] == "bytes 6-9/16"
    assert "content-encoding" not in response.headers


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({"range": "bytes=-5"}, 206, b"Flask"),
        ({"range": "bytes=16-"}, 416, b""),
        ({"range": "bytes=0-1,4-5"}, 200, HELLO),
        ({"range": "bytes=0-4", "if-range": '"not-the-etag"'}, 200, HELLO),
        ({"accept-encoding": "identity"}, 200, HELLO),
    ],
)
def test_flask_ranges(client: httpx.Client, headers: dict[str, str], status: int, body: bytes) -> None:
    response, raw = fetch(client, "/flask/", **headers)
    assert (response.status_code, raw) == (status, body)
    if status == 200 and "range" in headers:
        assert response.headers["accept-ranges"] == "bytes"
    if status == 416:
        assert response.headers["content-range"] == "bytes */16"


# headers ----------------------------------------------------------------------------------------


def test_headers_are_set_added_and_secured(client: httpx.Client) -> None:
    response = client.get("/flask/")
    assert response.headers["x-frame-options"] == "DENY"  # set wins over the security default
    assert response.headers["x-served-by"] == "gateway"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_headers_are_removed(client: httpx.Client) -> None:
    assert "set-cookie" in client.get("/flask/count").headers
    response = client.get("/nocookie/count")
    assert response.status_code == 200 and "set-cookie" not in response.headers
    assert response.headers["x-frame-options"] == "SAMEORIGIN"  # the vhost's security headers
