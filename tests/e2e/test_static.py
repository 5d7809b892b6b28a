"""The static handler end to end: a real server, real sockets, files made for each case.

One module-scoped server (tests/e2e/static_app.py) serves one tree under four
mounts with different options. Requests go out as raw bytes, so what a client
could send (encoded dots and slashes, NUL, odd ranges) reaches the server
unchanged, and answers are read byte for byte until the server closes.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from adapters import _static_files as static_files
from adapters.static import StaticHandler, StaticOptions
from gateway.types import HandlerContext
from tests.support.server import Gateway, read_one_response, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

MiB = 1024 * 1024
SECRET = b"TOP SECRET: outside the root"
RANGE_TEXT = b"0123456789abcdef" * 64  # 1 KiB, every offset readable in a failure message
APP_JS = b"console.log('identity');\n" * 40
APP_JS_BR = b"pretend-brotli-bytes\x00\x01\x02"
ODD_NAME = "<b>&\"x'.txt"


@dataclass
class Site:
    root: Path
    outside: Path
    big: bytes


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


# Fixtures ---------------------------------------------------------------------------


def _make_tree(base: Path) -> Site:
    root, outside = base / "root", base / "outside"
    for folder in (root / "css", root / "js", root / "docs", root / "noindex" / "sub", root / "plainhome", outside):
        folder.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_bytes(SECRET)
    files = {
        "index.html": b"<h1>root index</h1>\n",
        "hello.txt": b"hello, static\n",
        "css/site.css": b"body { color: red }\n",
        "js/app.js": APP_JS,
        "js/app.js.br": APP_JS_BR,
        "js/app.js.gz": gzip.compress(APP_JS, mtime=0),
        "docs/index.html": b"<h1>docs</h1>\n",
        "docs/guide.txt": b"the guide\n",
        "plainhome/home.html": b"<h1>home</h1>\n",
        "plainhome/index.html": b"<h1>not me</h1>\n",
        "range.txt": RANGE_TEXT,
        "empty.txt": b"",
        "changing.txt": b"version one\n",
        f"noindex/{ODD_NAME}": b"odd\n",
        "noindex/a:b.txt": b"colon\n",
        "noindex/.hidden": b"dotfile\n",
        "café.txt": b"utf-8 name\n",
        "data.unknownext": b"\x00\x01",
    }
    for name, data in files.items():
        (root / name).write_bytes(data)
    (root / os.fsdecode(b"caf\xe9.bin")).write_bytes(b"latin-1 name\n")
    big = os.urandom(3 * MiB + 123)
    (root / "big.bin").write_bytes(big)
    (root / "inside-link.txt").symlink_to("hello.txt")
    (root / "escape.txt").symlink_to(outside / "secret.txt")
    (root / "escape-dir").symlink_to(outside)
    (root / "noindex" / "out-link.txt").symlink_to(outside / "secret.txt")
    # A sibling whose name begins with the root's: a prefix test without the trailing "/" would let it in.
    (base / "root-private").mkdir(exist_ok=True)
    (base / "root-private" / "secret.txt").write_bytes(SECRET)
    (root / "sibling.txt").symlink_to(base / "root-private" / "secret.txt")
    os.mkfifo(root / "fifo")
    return Site(root, outside, big)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return _make_tree(tmp_path_factory.mktemp("static"))


@pytest.fixture(scope="module")
def gw(site: Site) -> Iterator[Gateway]:
    with run_gateway("tests.e2e.static_app:app", env={"GATEWAY_TEST_STATIC_ROOT": str(site.root)}) as gateway:
        yield gateway


def fetch(gw: Gateway, target: str | bytes, headers: dict[str, str] | None = None, method: str = "GET") -> Answer:
    """One request on its own connection, read until the server closes it."""
    target_bytes = target if isinstance(target, bytes) else target.encode("utf-8")
    lines = [b"%s %s HTTP/1.1" % (method.encode(), target_bytes), b"Host: static.test", b"Connection: close"]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in (headers or {}).items()]
    with gw.connect() as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        data = read_response(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    parsed = {}
    for field in fields:
        name, _, value = field.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), parsed, body)


def multipart(answer: Answer) -> list[tuple[str, str, bytes]]:
    """(content-type, content-range, data) of each part of a multipart/byteranges body."""
    kind, _, boundary = answer.headers["content-type"].partition("; boundary=")
    assert kind == "multipart/byteranges"
    delimiter = b"\r\n--" + boundary.encode()
    assert answer.body.startswith(delimiter) and answer.body.endswith(delimiter + b"--\r\n")
    parts = []
    for chunk in answer.body.split(delimiter)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n"))
        parts.append((fields["content-type"], fields["content-range"], data))
    return parts


# Serving files ----------------------------------------------------------------------


def test_a_file_comes_with_type_length_validators_and_cache_control(gw: Gateway) -> None:
    answer = fetch(gw, "/static/css/site.css")
    assert answer.status == 200
    assert answer.body == b"body { color: red }\n"
    assert answer.headers["content-type"] == "text/css; charset=utf-8"
    assert answer.headers["content-length"] == str(len(answer.body))
    assert answer.headers["etag"].startswith('"') and answer.headers["etag"].endswith('"')
    assert answer.headers["last-modified"].endswith(" GMT")
    assert answer.headers["accept-ranges"] == "bytes"
    assert answer.headers["cache-control"] == "max-age=60"
    assert "vary" not in answer.headers  # no precompressed sibling: nothing varies


@pytest.mark.parametrize(
    ("target", "content_type"),
    [
        ("/hello.txt", "text/plain; charset=utf-8"),
        ("/js/app.js", "text/javascript; charset=utf-8"),
        ("/index.html", "text/html; charset=utf-8"),
        ("/data.unknownext", "application/octet-stream"),
        ("/js/app.js.gz", "application/gzip"),
    ],
)
def test_content_types(gw: Gateway, target: str, content_type: str) -> None:
    answer = fetch(gw, target)
    assert (answer.status, answer.headers["content-type"]) == (200, content_type)
    assert "content-encoding" not in answer.headers  # a .gz asked for by name is a gzip file, not an encoding


def test_without_max_age_there_is_no_cache_control(gw: Gateway) -> None:
    assert "cache-control" not in fetch(gw, "/hello.txt").headers


def test_names_outside_ascii_are_percent_decoded_to_the_file_system_bytes(gw: Gateway) -> None:
    assert fetch(gw, "/static/caf%C3%A9.txt").body == b"utf-8 name\n"
    assert fetch(gw, "/static/caf%E9.bin").body == b"latin-1 name\n"
    assert fetch(gw, "/static/%68ello.txt").body == b"hello, static\n"
    assert fetch(gw, "/static/./css/%2e/site.css").body == b"body { color: red }\n"  # "." and "//" are skipped
    assert fetch(gw, "/static//css//site.css").body == b"body { color: red }\n"


def test_index_files_and_the_slash_redirect(gw: Gateway) -> None:
    assert fetch(gw, "/").body == b"<h1>root index</h1>\n"
    assert fetch(gw, "/static/").body == b"<h1>root index</h1>\n"
    assert fetch(gw, "/static/docs/").body == b"<h1>docs</h1>\n"
    redirect = fetch(gw, "/static/docs?page=2")
    assert (redirect.status, redirect.headers["location"]) == (301, "/static/docs/?page=2")
    mount = fetch(gw, "/static")
    assert (mount.status, mount.headers["location"]) == (301, "/static/")
    # the Location is rebuilt from the path's segments: never "//host/", an open redirect
    doubled = fetch(gw, "//docs")
    assert (doubled.status, doubled.headers["location"]) == (301, "/docs/")
    doubled = fetch(gw, "/static//docs")
    assert (doubled.status, doubled.headers["location"]) == (301, "/static/docs/")


def test_index_names_are_tried_in_order(gw: Gateway) -> None:
    assert fetch(gw, "/plain/plainhome/").body == b"<h1>home</h1>\n"
    assert fetch(gw, "/static/plainhome/").body == b"<h1>not me</h1>\n"


def test_a_file_asked_for_as_a_directory_is_not_found(gw: Gateway) -> None:
    assert fetch(gw, "/static/hello.txt/").status == 404


def test_missing_files_fifos_and_directories_without_index_are_404(gw: Gateway) -> None:
    assert fetch(gw, "/static/nope.txt").status == 404
    assert fetch(gw, "/static/noindex/").status == 404  # autoindex is off by default
    started = time.monotonic()
    assert fetch(gw, "/static/fifo").status == 404  # never opened: it would block
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_methods_other_than_get_and_head_are_405(gw: Gateway, method: str) -> None:
    answer = fetch(gw, "/static/hello.txt", method=method)
    assert (answer.status, answer.headers["allow"]) == (405, "GET, HEAD")


def test_head_has_the_get_headers_and_no_body(gw: Gateway, site: Site) -> None:
    for target, size in (("/static/hello.txt", 14), ("/static/big.bin", len(site.big))):
        get, head = fetch(gw, target), fetch(gw, target, method="HEAD")
        assert (head.status, head.body) == (200, b"")
        assert head.headers["content-length"] == str(size)
        assert head.headers["etag"] == get.headers["etag"]


def test_a_big_file_arrives_byte_exact_through_pathsend(gw: Gateway, site: Site) -> None:
    answer = fetch(gw, "/static/big.bin")
    assert answer.status == 200
    assert answer.headers["content-length"] == str(len(site.big))
    assert hashlib.sha256(answer.body).digest() == hashlib.sha256(site.big).digest()
    with httpx.Client() as client:
        streamed = client.get(gw.url + "/static/big.bin")
    assert streamed.content == site.big


def test_keep_alive_survives_cached_pathsend_and_ranged_answers(gw: Gateway, site: Site) -> None:
    requests = [
        (b"/static/hello.txt", b"", b"hello, static\n"),
        (b"/static/big.bin", b"", site.big),
        (b"/static/big.bin", b"Range: bytes=100-299\r\n", site.big[100:300]),
        (b"/static/range.txt", b"Range: bytes=-4\r\n", RANGE_TEXT[-4:]),
        (b"/static/hello.txt", b"", b"hello, static\n"),
    ]
    with gw.connect() as sock:
        for target, extra, expected in requests:
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: static.test\r\n%s\r\n" % (target, extra))
            _, _, body = read_one_response(sock)
            assert body == expected


def test_a_client_leaving_mid_range_leaves_the_server_well(gw: Gateway) -> None:
    for _ in range(3):
        with gw.connect() as sock:
            sock.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-2000000,3000000-\r\n\r\n")
            sock.recv(1000)
    assert fetch(gw, "/static/hello.txt").body == b"hello, static\n"


# Staying inside the root ------------------------------------------------------------


# The core refuses a path whose dot segments climb above "/" (400) before any handler
# sees it; every other trick reaches the handler, which refuses it (404).
CLIMBS_ABOVE_THE_ROOT = [
    b"/static/..%2F..%2F..%2F..%2F..%2F..%2F..%2F..%2Fetc/passwd",
    b"/static/%2e%2e/%2e%2e/outside/secret.txt",
    b"/static/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
    b"/../outside/secret.txt",
    b"/%2e%2e/outside/secret.txt",
]
REACHES_THE_HANDLER = [
    b"/static/..%2foutside/secret.txt",
    b"/static/%2E%2E/outside/secret.txt",
    b"/static/.%2e/outside/secret.txt",
    b"/static/css/..%5c..%5c..%5coutside%5csecret.txt",
    b"/static/../outside/secret.txt",
    b"/static/css%2fsite.css",
    b"/static/escape.txt",
    b"/static/escape-dir/secret.txt",
    b"/static/escape-dir/",
    b"/static/sibling.txt",
]


@pytest.mark.parametrize(
    ("target", "status"), [(t, 400) for t in CLIMBS_ABOVE_THE_ROOT] + [(t, 404) for t in REACHES_THE_HANDLER]
)
def test_no_path_leaves_the_root(gw: Gateway, target: bytes, status: int) -> None:
    answer = fetch(gw, target)
    assert answer.status == status
    assert SECRET not in answer.body and b"root:" not in answer.body


LINKS_OUT = (b"/static/escape.txt", b"/static/escape-dir/secret.txt", b"/static/escape-dir/", b"/static/sibling.txt")


ESCAPES = CLIMBS_ABOVE_THE_ROOT + REACHES_THE_HANDLER + [b"/static/a%00.txt"]


@pytest.mark.parametrize(
    ("target", "follow"),
    [(t, False) for t in ESCAPES] + [(t, True) for t in ESCAPES if t not in LINKS_OUT],  # links out: served
)
def test_the_handler_refuses_escapes_on_its_own(site: Site, target: bytes, follow: bool) -> None:
    """Whatever the core lets through: the handler reads raw_path, never the normalised path.

    With follow_symlinks the realpath check is off: the segment rules alone keep ".." out.
    """
    options = StaticOptions(root=str(site.root), follow_symlinks=follow)
    handler = StaticHandler(options, HandlerContext(site.root, "test", "/static"))
    app = handler.app()
    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    path = "/static/" + target.decode("latin-1").rpartition("/")[2]  # what routing saw: irrelevant here
    scope = {"type": "http", "method": "GET", "path": path, "raw_path": target, "query_string": b"", "headers": []}
    asyncio.run(app(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] in (400, 404)
    assert SECRET not in sent[1]["body"] and b"root:" not in sent[1]["body"]  # type: ignore[operator]


def test_a_double_encoded_dot_is_a_name_not_a_parent(gw: Gateway) -> None:
    assert fetch(gw, b"/static/%252e%252e/outside/secret.txt").status == 404  # looks for a folder named "%2e%2e"


def test_a_nul_byte_is_a_bad_request(gw: Gateway) -> None:
    answer = fetch(gw, b"/static/hello.txt%00.html")
    assert answer.status == 400


def test_symlinks_inside_the_root_are_served(gw: Gateway) -> None:
    assert fetch(gw, "/static/inside-link.txt").body == b"hello, static\n"


def test_follow_symlinks_serves_links_leading_out(gw: Gateway) -> None:
    assert fetch(gw, "/open/escape.txt").body == SECRET
    assert fetch(gw, "/open/escape-dir/secret.txt").body == SECRET
    assert fetch(gw, b"/open/..%2foutside/secret.txt").status == 404  # ".." stays refused


# Conditional requests ---------------------------------------------------------------


def test_if_none_match_and_if_modified_since_give_304(gw: Gateway) -> None:
    first = fetch(gw, "/static/hello.txt")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"other", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
        {"If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"},
    ):
        answer = fetch(gw, "/static/hello.txt", headers)
        assert (answer.status, answer.body) == (304, b""), headers
        assert answer.headers["etag"] == etag
        assert answer.headers["cache-control"] == "max-age=60"
        assert "content-length" not in answer.headers


def test_changed_or_unparsable_validators_give_200(gw: Gateway) -> None:
    modified = fetch(gw, "/static/hello.txt").headers["last-modified"]
    for headers in (
        {"If-None-Match": '"not-it"'},
        {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"},
        {"If-Modified-Since": "yesterday"},
        {"If-None-Match": '"not-it"', "If-Modified-Since": modified},  # If-None-Match wins (RFC 9110 §13.2.2)
    ):
        answer = fetch(gw, "/static/hello.txt", headers)
        assert (answer.status, answer.body) == (200, b"hello, static\n"), headers


def test_a_changed_file_is_seen_within_a_second_or_so(gw: Gateway, site: Site) -> None:
    before = fetch(gw, "/static/changing.txt")
    path = site.root / "changing.txt"
    path.write_bytes(b"version two, longer\n")
    os.utime(path, (time.time() + 10, time.time() + 10))
    time.sleep(1.1)
    after = fetch(gw, "/static/changing.txt")
    assert after.body == b"version two, longer\n"
    assert after.headers["etag"] != before.headers["etag"]
    assert fetch(gw, "/static/changing.txt", {"If-None-Match": before.headers["etag"]}).status == 200


# Ranges -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-5", 1019, 1023),
        ("bytes=1020-5000", 1020, 1023),
        ("bytes=0-9,5-19", 0, 19),  # overlapping ranges are merged
        ("bytes=-5000", 0, 1023),
    ],
)
def test_a_single_range_is_206(gw: Gateway, spec: str, first: int, last: int) -> None:
    answer = fetch(gw, "/static/range.txt", {"Range": spec})
    assert answer.status == 206
    assert answer.headers["content-range"] == f"bytes {first}-{last}/1024"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert answer.body == RANGE_TEXT[first : last + 1]
    assert answer.headers["content-length"] == str(len(answer.body))


def test_several_ranges_are_multipart_byteranges(gw: Gateway) -> None:
    answer = fetch(gw, "/static/range.txt", {"Range": "bytes=500-503, 0-1,-2"})
    assert answer.status == 206
    assert answer.headers["content-length"] == str(len(answer.body))
    assert multipart(answer) == [
        ("text/plain; charset=utf-8", "bytes 0-1/1024", RANGE_TEXT[0:2]),
        ("text/plain; charset=utf-8", "bytes 500-503/1024", RANGE_TEXT[500:504]),
        ("text/plain; charset=utf-8", "bytes 1022-1023/1024", RANGE_TEXT[1022:]),
    ]


def test_ranges_of_a_big_file_are_streamed_byte_exact(gw: Gateway, site: Site) -> None:
    single = fetch(gw, "/static/big.bin", {"Range": "bytes=1000000-2999999"})
    assert single.status == 206
    assert single.body == site.big[1000000:3000000]
    several = fetch(gw, "/static/big.bin", {"Range": "bytes=0-99,1048576-2097151,-10"})
    size = len(site.big)
    assert several.headers["content-length"] == str(len(several.body))
    assert [(r, d) for _, r, d in multipart(several)] == [
        (f"bytes 0-99/{size}", site.big[:100]),
        (f"bytes 1048576-2097151/{size}", site.big[1048576:2097152]),
        (f"bytes {size - 10}-{size - 1}/{size}", site.big[-10:]),
    ]


@pytest.mark.parametrize(
    ("target", "spec", "size"),
    [
        ("/static/range.txt", "bytes=1024-", 1024),
        ("/static/range.txt", "bytes=-0", 1024),
        ("/static/range.txt", "bytes=99999999999999999999999-", 1024),
        ("/empty.txt", "bytes=0-", 0),
    ],
)
def test_unsatisfiable_ranges_are_416(gw: Gateway, target: str, spec: str, size: int) -> None:
    answer = fetch(gw, target, {"Range": spec})
    assert answer.status == 416
    assert answer.headers["content-range"] == f"bytes */{size}"


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=5-1", "items=0-1", "bytes=", "bytes=1-2-3", "bytes=0-1," * 65])
def test_ranges_we_cannot_read_are_ignored(gw: Gateway, spec: str) -> None:
    answer = fetch(gw, "/static/range.txt", {"Range": spec})
    assert (answer.status, answer.body) == (200, RANGE_TEXT)


def test_if_range_sends_the_range_only_while_the_file_is_unchanged(gw: Gateway) -> None:
    first = fetch(gw, "/static/range.txt")
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for validator, status in ((etag, 206), (modified, 206), ('"stale"', 200), (f"W/{etag}", 200)):
        answer = fetch(gw, "/static/range.txt", {"Range": "bytes=0-3", "If-Range": validator})
        assert answer.status == status, validator
        assert answer.body == (RANGE_TEXT[:4] if status == 206 else RANGE_TEXT)


def test_head_ignores_range(gw: Gateway) -> None:
    answer = fetch(gw, "/static/range.txt", {"Range": "bytes=0-3"}, method="HEAD")
    assert (answer.status, answer.headers["content-length"], answer.body) == (200, "1024", b"")


# Precompressed siblings -------------------------------------------------------------


def test_precompressed_siblings_follow_accept_encoding(gw: Gateway) -> None:
    cases = [
        ("gzip, deflate, br", "br", APP_JS_BR),
        ("gzip", "gzip", gzip.compress(APP_JS, mtime=0)),
        ("br;q=0, gzip", "gzip", gzip.compress(APP_JS, mtime=0)),
        ("gzip;q=0.5, br;q=0.4", "gzip", gzip.compress(APP_JS, mtime=0)),
        ("*", "br", APP_JS_BR),
        ("identity", None, APP_JS),
        ("identity;q=1, gzip;q=0.5", None, APP_JS),  # rated above every sibling: as the compress stage answers
        ("x-gzip;q=0.9, identity;q=0.5", "gzip", gzip.compress(APP_JS, mtime=0)),
        ("br;q=0, gzip;q=0", None, APP_JS),
        (None, None, APP_JS),
    ]
    etags = set()
    for accept, coding, body in cases:
        answer = fetch(gw, "/static/js/app.js", {"Accept-Encoding": accept} if accept else {})
        assert answer.status == 200
        assert answer.headers.get("content-encoding") == coding, accept
        assert answer.headers["vary"] == "accept-encoding"
        assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
        assert answer.body == body
        etags.add((coding, answer.headers["etag"]))
    assert len({etag for _, etag in etags}) == 3  # one ETag per representation


def test_a_precompressed_representation_revalidates_and_ranges_on_its_own(gw: Gateway) -> None:
    br = fetch(gw, "/static/js/app.js", {"Accept-Encoding": "br"})
    again = fetch(gw, "/static/js/app.js", {"Accept-Encoding": "br", "If-None-Match": br.headers["etag"]})
    assert (again.status, again.headers["vary"]) == (304, "accept-encoding")
    identity = fetch(gw, "/static/js/app.js", {"If-None-Match": br.headers["etag"]})
    assert identity.status == 200
    ranged = fetch(gw, "/static/js/app.js", {"Accept-Encoding": "br", "Range": "bytes=0-6"})
    assert (ranged.status, ranged.body, ranged.headers["content-encoding"]) == (206, APP_JS_BR[:7], "br")


def test_precompressed_off_serves_the_file_itself(gw: Gateway) -> None:
    answer = fetch(gw, "/plain/js/app.js", {"Accept-Encoding": "br, gzip"})
    assert answer.body == APP_JS
    assert "content-encoding" not in answer.headers and "vary" not in answer.headers


def test_httpx_decodes_the_gzip_sibling(gw: Gateway) -> None:
    response = httpx.get(gw.url + "/static/js/app.js", headers={"Accept-Encoding": "gzip"})
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == APP_JS


# Directory listing ------------------------------------------------------------------


def test_autoindex_lists_escaped_names_and_hides_dotfiles_and_escaping_links(gw: Gateway) -> None:
    answer = fetch(gw, "/open/noindex/")
    assert answer.status == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    page = answer.body.decode()
    assert "Index of /open/noindex/" in page
    assert "&lt;b&gt;&amp;&quot;x&#x27;.txt" in page
    assert 'href="%3Cb%3E%26%22x%27.txt"' in page
    assert ODD_NAME not in page
    assert 'href="a%3Ab.txt"' in page  # never read as a scheme
    assert 'href="sub/"' in page
    assert ".hidden" not in page
    assert 'href="out-link.txt"' in page  # follow_symlinks is on under /open


def test_autoindex_link_leads_to_the_file(gw: Gateway) -> None:
    assert fetch(gw, "/open/noindex/%3Cb%3E%26%22x%27.txt").body == b"odd\n"


def test_autoindex_hides_links_leading_out_when_symlinks_are_not_followed(gw: Gateway, site: Site) -> None:
    handler = StaticHandler(StaticOptions(root=str(site.root), autoindex=True), HandlerContext(site.root, "test", ""))
    table = handler.app().table  # type: ignore[attr-defined]
    entries = {entry.name: table.visible(entry) for entry in os.scandir(os.fsencode(site.root / "noindex"))}
    assert entries[b"out-link.txt"] is False
    assert entries[b"a:b.txt"] is True


def test_an_index_file_wins_over_autoindex(gw: Gateway) -> None:
    assert fetch(gw, "/open/docs/").body == b"<h1>docs</h1>\n"


# The cache ----------------------------------------------------------------------------


def test_the_cache_stays_within_its_byte_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static_files, "CACHE_BYTES", 100_000)
    for number in range(40):
        (tmp_path / f"{number}.bin").write_bytes(bytes(10_000))
    table = StaticHandler(StaticOptions(root=str(tmp_path)), HandlerContext(tmp_path, "test", "")).app().table  # type: ignore[attr-defined]
    for number in range(40):
        assert isinstance(table.lookup(b"/%d.bin" % number), static_files.File)
        assert table.cache_bytes <= 100_000
    assert sum(len(entry.identity.body) + static_files.ENTRY_OVERHEAD for entry in table.cache.values()) == (
        table.cache_bytes
    )
    assert b"/39.bin" in table.cache and b"/0.bin" not in table.cache


# Through the config -------------------------------------------------------------------


def test_served_by_a_config_route(site: Site) -> None:
    config = f"""
[[vhost]]
names = ["localhost"]
  [[vhost.route]]
  path = "/assets/"
  handler = "static"
  root = {str(site.root)!r}
  max_age = "1h"
  autoindex = true
"""
    with run_gateway(config_text=config) as gateway:
        file = fetch(gateway, "/assets/css/site.css")
        listing = fetch(gateway, "/assets/noindex/")
        outside = fetch(gateway, "/assets/escape.txt")
    assert (file.status, file.body, file.headers["cache-control"]) == (200, b"body { color: red }\n", "max-age=3600")
    assert listing.status == 200 and b"Index of /assets/noindex/" in listing.body
    assert b"out-link.txt" not in listing.body  # follow_symlinks is off here
    assert outside.status == 404


# Configuration problems -------------------------------------------------------------


def _problems(tmp_path: Path, **options: object) -> list[tuple[str, str]]:
    return StaticHandler(StaticOptions(**options), HandlerContext(tmp_path, "test", "")).problems()  # type: ignore[arg-type]


def test_problems_name_what_is_wrong_with_the_root(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "public").mkdir()
    assert _problems(tmp_path, root="public") == []
    assert _problems(tmp_path, root="") == [("root", 'missing; the folder to serve, as in root = "public"')]
    assert _problems(tmp_path, root="missing") == [("root", f"{str(tmp_path / 'missing')!r} does not exist")]
    assert _problems(tmp_path, root="file.txt") == [("root", f"{str(tmp_path / 'file.txt')!r} is not a directory")]
    assert _problems(tmp_path, root="public", index=("a/b.html",)) == [
        ("index", "entry 'a/b.html' must be a plain file name (no '/', '.' or '..')")
    ]


def test_problems_report_an_unreadable_root(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every folder: permissions cannot make one unreadable")
    (tmp_path / "locked").mkdir(mode=0)
    try:
        assert _problems(tmp_path, root="locked") == [
            ("root", f"{str(tmp_path / 'locked')!r} cannot be read by this server (check its permissions)")
        ]
    finally:
        (tmp_path / "locked").chmod(0o755)


def test_the_server_logged_no_errors(gw: Gateway) -> None:
    """Last on purpose: every refusal above was an answer, never a traceback."""
    log = gw.stderr()
    assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
