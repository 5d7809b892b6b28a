"""PHP through the gateway: real php-cgi pools spawned and supervised by the server under test.

The scripts are in tests/e2e/php_site/ (copied per module into a temporary
root, where the traversal tests add their symlinks).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_program
from tests.support.processes import alive, rss_kib
from tests.support.server import Gateway, gateway_command, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.php, pytest.mark.timeout(90)]
SITE = Path(__file__).parent / "php_site"
SECRET = "gateway-secret-value-123"
MiB = 1024 * 1024

CONFIG = """
[server]
runtime_dir = "{runtime}"

[limits]
max_body_size = "200MiB"
request_timeout = {request_timeout}

[[vhost]]
names = ["php.test"]
  [[vhost.route]]
  path = "/"
  handler = "php"
  root = "{root}"
  pool = {{ max = 2, max_requests = 50 }}
  php_ini = {{ "upload_max_filesize" = "20M", "post_max_size" = "220M", "memory_limit" = "64M" }}
  env = {{ "SITE_NAME" = "tests" }}
"""


def php_config(root: Path, runtime: Path, request_timeout: float = 30) -> str:
    return CONFIG.format(root=root, runtime=runtime, request_timeout=request_timeout)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of php_site, plus what the traversal tests need outside and inside it."""
    require_program("php-cgi")
    base = tmp_path_factory.mktemp("php")
    root = base / "site"
    shutil.copytree(SITE, root)
    outside = base / "outside.php"
    outside.write_text('<?php echo "ESCAPED";')
    (root / "escape.php").symlink_to(outside)
    (root / ".hidden.php").write_text('<?php echo "HIDDEN";')
    return root


@pytest.fixture(scope="module")
def php(site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    runtime = tmp_path_factory.mktemp("run")
    with run_gateway(config_text=php_config(site, runtime), env={"GATEWAY_TEST_SECRET": SECRET}) as gateway:
        gateway.extra["runtime"] = runtime
        yield gateway


def client(gateway: Gateway, **options: object) -> httpx.Client:
    return httpx.Client(base_url=gateway.url, headers={"host": "php.test"}, timeout=20, **options)  # type: ignore[arg-type]


def get_json(gateway: Gateway, path: str, **options: object) -> dict[str, object]:
    with client(gateway) as http:
        response = http.get(path, **options)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


def php_children(gateway: Gateway) -> list[int]:
    """Live php-cgi processes whose parent is the gateway (the masters)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            if name == "php-cgi" and fields[0] != "Z" and int(fields[1]) == gateway.proc.pid:
                found.append(int(entry))
    return found


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid and alive(int(entry)):
                    members.append(int(entry))
    return members


# The CGI/1.1 meta-variables -----------------------------------------------------


def test_get_with_query_sees_every_meta_variable(php: Gateway, site: Path) -> None:
    data = get_json(php, "/env.php?a=1&b=two", headers={"Proxy": "http://evil.example:8080", "X-Thing": "yes"})
    assert data["get"] == {"a": "1", "b": "two"}
    assert data["QUERY_STRING"] == "a=1&b=two"
    assert data["REQUEST_METHOD"] == "GET"
    assert data["REQUEST_URI"] == "/env.php?a=1&b=two"
    assert data["SCRIPT_NAME"] == "/env.php"
    assert data["SCRIPT_FILENAME"] == str(site / "env.php")
    assert data["DOCUMENT_ROOT"] == str(site)
    assert data["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert str(data["SERVER_SOFTWARE"]).startswith("gateway/")
    assert data["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert (data["SERVER_NAME"], data["SERVER_PORT"]) == ("php.test", "80")
    assert data["REMOTE_ADDR"] == "127.0.0.1"
    assert int(str(data["REMOTE_PORT"])) > 0
    assert (data["REQUEST_SCHEME"], data["SERVER_ADDR"]) == ("http", "127.0.0.1")  # nginx's fastcgi_params have them
    assert data["REDIRECT_STATUS"] == "200"
    assert data["HTTP_X_THING"] == "yes"
    assert "HTTP_PROXY" not in data, "a Proxy header must never become HTTP_PROXY (httpoxy)"
    assert "HTTPS" not in data
    assert data["env_secret"] is False, "the gateway's environment leaked into php-cgi"
    # No path info, no PATH_INFO: php-cgi (cgi.fix_pathinfo=0) would take an empty one for PHP_SELF.
    assert "PATH_INFO" not in data
    assert data["PHP_SELF"] == "/env.php"


def test_a_rewritten_request_keeps_the_clients_request_uri(site: Path, tmp_path: Path) -> None:
    """nginx's REQUEST_URI is $request_uri: a front controller routes on the pretty URL, its query on the new one."""
    rewrite = 'rewrite = [{ from = "^/pretty/(.*)$", to = "/env.php?page=$1" }]\n'
    config = php_config(site, tmp_path).replace('names = ["php.test"]\n', 'names = ["php.test"]\n' + rewrite)
    with run_gateway(config_text=config) as gateway:
        data = get_json(gateway, "/pretty/about?x=1")
    assert (data["REQUEST_URI"], data["QUERY_STRING"], data["SCRIPT_NAME"]) == (
        "/pretty/about?x=1",
        "page=about",
        "/env.php",
    )


def test_path_info_splits_at_the_script(php: Gateway) -> None:
    data = get_json(php, "/env.php/extra/path?x=1")
    assert (data["SCRIPT_NAME"], data["PATH_INFO"]) == ("/env.php", "/extra/path")
    assert data["REQUEST_URI"] == "/env.php/extra/path?x=1"


def test_subfolder_index_script(php: Gateway) -> None:
    with client(php) as http:
        assert http.get("/sub/").text.strip() == "sub index"


# Bodies -----------------------------------------------------------------------


def test_post_form_and_json(php: Gateway) -> None:
    with client(php) as http:
        form = http.post("/env.php", data={"name": "Ada", "note": "x y"}).json()
        assert form["post"] == {"name": "Ada", "note": "x y"}
        assert form["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
        payload = json.dumps({"items": list(range(1000))}).encode()
        body = http.post("/body.php", content=payload, headers={"content-type": "application/json"}).json()
    assert body["length"] == len(payload)
    assert body["sha256"] == hashlib.sha256(payload).hexdigest()
    assert body["content_type"] == "application/json"


def test_multipart_upload_of_several_megabytes(php: Gateway) -> None:
    first = os.urandom(6 * MiB)
    second = b"small file\n" * 100
    with client(php) as http:
        response = http.post(
            "/upload.php", files={"one": ("one.bin", first), "two": ("two.txt", second)}, data={"field": "v"}
        )
    assert response.status_code == 200, response.text
    files = response.json()["files"]
    assert response.json()["post"] == {"field": "v"}
    assert files["one"]["size"] == len(first) and files["one"]["error"] == 0
    assert files["one"]["sha256"] == hashlib.sha256(first).hexdigest()
    assert files["two"]["sha256"] == hashlib.sha256(second).hexdigest()


def test_chunked_body_reaches_php_with_its_length(php: Gateway) -> None:
    payload = os.urandom(3 * MiB + 17)

    def pieces() -> Iterator[bytes]:
        for start in range(0, len(payload), 100_000):
            yield payload[start : start + 100_000]

    with client(php) as http:
        body = http.post("/body.php", content=pieces()).json()
    assert body["length"] == len(payload)
    assert body["sha256"] == hashlib.sha256(payload).hexdigest()


def test_large_upload_streams_without_growing_the_gateway(php: Gateway) -> None:
    """100 MiB through to php://input: the gateway holds pieces, not the body."""
    before = rss_kib(php.proc.pid)
    chunk = os.urandom(MiB)
    digest = hashlib.sha256()
    peak = [before]

    def pieces() -> Iterator[bytes]:
        for _ in range(100):
            digest.update(chunk)
            peak[0] = max(peak[0], rss_kib(php.proc.pid))
            yield chunk

    with client(php) as http:
        body = http.post("/body.php", content=pieces(), headers={"content-length": str(100 * MiB)}).json()
    assert body["length"] == 100 * MiB
    assert body["sha256"] == digest.hexdigest()
    assert peak[0] - before < 30 * 1024, f"gateway RSS grew {(peak[0] - before) // 1024} MiB during the upload"


# Responses --------------------------------------------------------------------


def test_sessions_persist_across_requests(php: Gateway) -> None:
    with client(php) as http:
        counts = [http.get("/session.php").text.strip() for _ in range(3)]
    assert counts == ["1", "2", "3"]


def test_head_gets_the_get_headers_and_no_length_php_did_not_give(php: Gateway) -> None:
    """php-cgi answers HEAD with headers only: the length of the page is unknown, so none is claimed (not 0)."""
    with client(php) as http:
        get = http.get("/hello.php")
        head = http.head("/hello.php")
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == get.headers["content-type"]
    assert "content-length" not in head.headers and get.headers["content-length"] == "14"


def test_a_range_of_a_script_s_output(php: Gateway) -> None:
    """The ranges stage slices PHP's answer to a GET with Range, as it does every handler's."""
    with client(php) as http:
        part = http.get("/hello.php", headers={"range": "bytes=6-9"})
        whole = http.get("/hello.php")
    assert part.status_code == 206 and part.text == "from"
    assert part.headers["content-range"] == "bytes 6-9/14"
    assert whole.status_code == 200 and whole.text == "Hello from PHP"


def test_headers_cookies_and_status_codes(php: Gateway) -> None:
    with client(php) as http:
        response = http.get("/headers.php", params={"code": "418"})
    assert response.status_code == 418
    assert response.text == "ok"
    assert response.headers["x-custom"] == "yes"
    assert response.headers.get_list("x-multi") == ["one", "two"]
    cookies = response.headers.get_list("set-cookie")
    assert [c.split(";")[0] for c in cookies] == ["a=1", "b=2"]


def test_location_is_a_redirect(php: Gateway) -> None:
    with client(php) as http:
        response = http.get("/redirect.php")
    assert response.status_code == 302
    assert response.headers["location"] == "/target?from=php"


def test_fatal_error_is_a_500_with_the_error_logged(php: Gateway) -> None:
    with client(php) as http:
        response = http.get("/fatal.php")
    assert response.status_code == 500
    log = php.wait_for_log("Call to undefined function")
    assert "fatal.php" in log


def test_a_body_short_of_its_content_length_is_a_502(php: Gateway) -> None:
    with client(php) as http:
        response = http.get("/length.php", params={"cl": "100", "n": "6"})
    assert response.status_code == 502
    php.wait_for_log("its output ended after 6 bytes of its Content-Length of 100")


def test_a_body_past_its_content_length_is_cut_to_it(php: Gateway) -> None:
    with client(php) as http:
        response = http.get("/length.php", params={"cl": "10", "n": "20"})
    assert (response.status_code, response.content) == (200, b"a" * 10)
    php.wait_for_log("length.php: wrote more than its Content-Length of 10; the rest was dropped")


def test_a_streamed_body_short_of_its_content_length_cuts_the_connection(php: Gateway) -> None:
    with php.connect() as sock:
        target = b"/length.php?cl=200000&n=100000&pause=1"
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: php.test\r\nConnection: close\r\n\r\n")
        head, _, body = read_response(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"content-length: 200000" in head.lower()
    assert 0 < len(body) < 200_000
    php.wait_for_log("its output ended after 100000 bytes of its Content-Length of 200000")


def test_php_cgis_own_stderr_is_tagged_escaped_and_bounded_in_the_log(php: Gateway) -> None:
    """A script's php://stderr goes to php-cgi's stderr: through the gateway's log, never raw into it."""
    with client(php) as http:
        assert http.get("/stderr.php", params={"lines": "1000"}).text == "written"
    log = php.wait_for_log("php-cgi stderr: 2026-01-01 00:00:00,000 [CRITICAL] gateway.server: forged \\x1b[31mred")
    assert "\n2026-01-01 00:00:00,000 [CRITICAL]" not in log, "a line of the script's reached the log as its own"
    php.wait_for_log("more than 200 lines on stderr; the rest is dropped")
    assert php.stderr().count("flood line") <= 200


def test_output_streams_as_php_flushes_it(php: Gateway) -> None:
    with socket.create_connection(php.address) as sock:
        sock.sendall(b"GET /stream.php HTTP/1.1\r\nHost: php.test\r\nConnection: close\r\n\r\n")
        sock.settimeout(5)
        received = b""
        while b"line 1" not in received:
            received += sock.recv(4096)
        first_seen = time.monotonic()
        rest = read_response(sock)
    assert b"line 3" in rest, "the rest of the stream"
    assert time.monotonic() - first_seen > 0.5, "line 1 arrived only after the whole script had ended"


def test_slow_reader_of_ten_megabytes_keeps_the_gateway_small(php: Gateway) -> None:
    before = rss_kib(php.proc.pid)
    peak = before
    total = 0
    digest = hashlib.sha256()
    with socket.create_connection(php.address) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /big.php?mb=10 HTTP/1.1\r\nHost: php.test\r\nConnection: close\r\n\r\n")
        sock.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        head, _, first = head.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        body = bytearray(first)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            data = sock.recv(256 * 1024)
            if not data:
                break
            body += data
            total += len(data)
            if len(body) % (MiB) < len(data):
                peak = max(peak, rss_kib(php.proc.pid))
                time.sleep(0.05)  # a slow client: php must wait, not the gateway's memory grow
        digest.update(body)
    assert b"chunked" in head.lower() or b"content-length" in head.lower()
    decoded = _dechunk(bytes(body)) if b"chunked" in head.lower() else bytes(body)
    assert len(decoded) == 10 * MiB
    # measured: ~2 MiB with flow control, ~12 MiB when STDOUT is read regardless of the client
    assert peak - before < 6 * 1024, f"gateway RSS grew {(peak - before) // 1024} MiB for a slow reader"


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    position = 0
    while True:
        line_end = data.index(b"\r\n", position)
        size = int(data[position:line_end], 16)
        if size == 0:
            return bytes(out)
        out += data[line_end + 2 : line_end + 2 + size]
        position = line_end + 2 + size + 2


def test_client_leaving_mid_response_frees_its_php_connection(php: Gateway) -> None:
    """With pool.max = 2, three abandoned downloads must not leave the pool stuck."""
    for _ in range(3):
        with socket.create_connection(php.address) as sock:
            sock.sendall(b"GET /big.php?mb=10 HTTP/1.1\r\nHost: php.test\r\n\r\n")
            sock.settimeout(5)
            sock.recv(65536)
    results: list[int] = []

    def fetch() -> None:
        with client(php) as http:
            results.append(http.get("/hello.php").status_code)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [200] * 4


def test_pretty_urls_reach_the_front_controller(php: Gateway) -> None:
    data = get_json(php, "/blog/2024/hello-world?page=2")
    assert data["front"] is True
    assert data["request_uri"] == "/blog/2024/hello-world?page=2"
    assert data["script_name"] == "/index.php"
    assert data["query"] == "page=2"


def test_static_files_are_served_without_php(php: Gateway) -> None:
    with client(php) as http:
        text = http.get("/static.txt")
        again = http.get("/static.txt")  # cached now: answered at once, as the static handler answers
        unchanged = http.get("/static.txt", headers={"if-none-match": text.headers["etag"]})
        source = http.get("/uploads/evil.jpg")
    assert text.text == "static file\n" and "etag" in text.headers
    assert again.text == text.text and again.headers["etag"] == text.headers["etag"]
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert source.status_code == 200 and b"<?php" in source.content, "a .jpg is a file, never PHP"


# Nothing runs that the config did not name ----------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/uploads/evil.jpg/x.php", "/uploads/evil.jpg/index.php", "/uploads/evil.jpg%2fx.php", "/uploads/evil.jpg/.php"],
)
def test_path_info_tricks_never_run_a_non_php_file(php: Gateway, path: str) -> None:
    with client(php) as http:
        response = http.get(path)
    assert b"EXECUTED" not in response.content


@pytest.mark.parametrize(
    ("raw_path", "statuses"),
    [
        (b"/%2e%2e/%2e%2e/%2e%2e/etc/passwd", {400, 404}),
        (b"/uploads/..%2f..%2f..%2fetc/passwd", {400, 404}),
        (b"/uploads/%2e%2e/.hidden.php", {400, 404}),
        (b"/env.php%00.txt", {400}),
        (b"/../../etc/passwd", {400}),
        (b"/.hidden.php", {404}),
        (b"/escape.php", {404}),
    ],
)
def test_traversal_is_refused(php: Gateway, raw_path: bytes, statuses: set[int]) -> None:
    with socket.create_connection(php.address) as sock:
        sock.sendall(b"GET " + raw_path + b" HTTP/1.1\r\nHost: php.test\r\nConnection: close\r\n\r\n")
        response = read_response(sock)
    status = int(response.split(b" ", 2)[1])
    assert status in statuses, response[:300]
    assert b"root:" not in response and b"ESCAPED" not in response and b"HIDDEN" not in response


# Supervision ------------------------------------------------------------------


def test_php_cgi_killed_mid_request_is_a_502_then_the_pool_is_back(php: Gateway) -> None:
    masters = php_children(php)
    assert len(masters) == 1, f"one php-cgi master per pool, found {masters}"
    outcome: list[int] = []

    mark = php.workdir / "killed-mid-request"
    with client(php) as http:  # the slow request then goes on a kept connection (one a recycle would close)
        assert http.get("/hello.php").status_code == 200

    def slow() -> None:
        with client(php) as http:
            outcome.append(http.get("/slow.php", params={"s": "5", "mark": str(mark)}).status_code)

    thread = threading.Thread(target=slow)
    thread.start()
    wait_for_files([mark])  # the script runs in a child
    time.sleep(0.5)  # well into it: a close this late is no recycled connection, and is not retried
    os.killpg(masters[0], signal.SIGKILL)
    thread.join(20)
    assert outcome == [502]
    deadline = time.monotonic() + 10
    with client(php) as http:
        while True:
            response = http.get("/hello.php")
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert response.status_code == 200 and response.text == "Hello from PHP"
    assert php_children(php) != masters, "a new php-cgi master"
    php.wait_for_log("restarting")


def test_children_recycled_after_max_requests_never_fail_a_request(php: Gateway) -> None:
    """pool.max_requests = 50 with 2 children: 250 requests see children replaced, and no 502."""
    with client(php) as http:
        responses = [http.get("/pid.php") for _ in range(250)]
    assert [r.status_code for r in responses] == [200] * 250
    assert len({r.text for r in responses}) > 2, "php-cgi replaced its children along the way"


def wait_for_files(paths: list[Path], timeout: float = 10.0) -> None:
    """Until every file exists (slow.php's ?mark=: its script is running)."""
    deadline = time.monotonic() + timeout
    while not all(path.exists() for path in paths):
        assert time.monotonic() < deadline, f"not created within {timeout}s: {[str(p) for p in paths]}"
        time.sleep(0.02)


def fetch_all(gateway: Gateway, paths: list[str]) -> list[int]:
    """GET every path at once, each on its own connection; the statuses in the order of paths."""
    statuses: dict[int, int] = {}

    def fetch(index: int, path: str) -> None:
        with client(gateway) as http:
            statuses[index] = http.get(path).status_code

    threads = [threading.Thread(target=fetch, args=(index, path)) for index, path in enumerate(paths)]
    for thread in threads:
        thread.start()
        time.sleep(0.02)  # in this order
    for thread in threads:
        thread.join(30)
    return [statuses.get(index, 0) for index in range(len(paths))]


def test_requests_beyond_the_children_wait_their_turn(php: Gateway) -> None:
    """pool.max = 2: ten requests of 0.3 s at once all succeed, two at a time (at least 5 x 0.3 s)."""
    started = time.monotonic()
    statuses = fetch_all(php, ["/slow.php?s=0.3"] * 10)
    elapsed = time.monotonic() - started
    assert statuses == [200] * 10
    assert elapsed >= 1.4, f"ten 0.3 s scripts on two children took {elapsed:.2f} s"


def test_a_queued_request_whose_client_is_gone_never_runs(php: Gateway, tmp_path: Path) -> None:
    """A client that resets its connection while its request waits for a child: the script is not run for it."""
    skipped, control = tmp_path / "skipped", tmp_path / "control"
    marks = [tmp_path / "busy-1", tmp_path / "busy-2"]
    busy = threading.Thread(target=fetch_all, args=(php, [f"/slow.php?s=1.5&mark={mark}" for mark in marks]))
    busy.start()
    wait_for_files(marks)  # both children are busy
    sock = socket.create_connection(php.address)
    sock.sendall(f"GET /touch.php?f={skipped} HTTP/1.1\r\nHost: php.test\r\n\r\n".encode())
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")  # close with a reset
    sock.close()
    busy.join(30)
    with client(php) as http:
        assert http.get("/touch.php", params={"f": str(control)}).text == "touched"
    assert control.read_text() == "ran"
    assert not skipped.exists(), "the script ran for a client that had left"


def test_requests_queued_past_request_timeout_are_504s_and_the_pool_recovers(site: Path, tmp_path: Path) -> None:
    """Two slow scripts hold both children; two more requests wait behind them: all four time out, none hangs."""
    with run_gateway(config_text=php_config(site, tmp_path, request_timeout=1)) as gateway:
        started = time.monotonic()
        # 4 s: past the queued requests' deadlines however the once-a-second check falls (0.5 + 1 + up to 1 s);
        # with 2.5 s a child could free itself just before that check and answer a queued request with a 200.
        slow = threading.Thread(target=lambda: statuses.extend(fetch_all(gateway, ["/slow.php?s=4"] * 2)))
        statuses: list[int] = []
        slow.start()
        time.sleep(0.5)  # both children are busy
        queued = fetch_all(gateway, ["/hello.php"] * 2)
        slow.join(10)
        assert (statuses, queued) == ([504, 504], [504, 504])
        assert time.monotonic() - started < 4
        time.sleep(max(0.0, started + 4.5 - time.monotonic()))  # the slow scripts have ended in php-cgi
        assert fetch_all(gateway, ["/hello.php"] * 4) == [200] * 4, "no slot of the pool was lost"


def test_slow_script_past_request_timeout_is_a_504(site: Path, tmp_path: Path) -> None:
    with run_gateway(config_text=php_config(site, tmp_path, request_timeout=1)) as gateway, client(gateway) as http:
        started = time.monotonic()
        response = http.get("/slow.php", params={"s": "4"})
        elapsed = time.monotonic() - started
        assert response.status_code == 504
        assert elapsed < 3
        assert http.get("/hello.php").text == "Hello from PHP", "the pool still serves"


def test_no_php_cgi_survives_kill_9_of_the_gateway(site: Path, tmp_path: Path) -> None:
    with run_gateway(config_text=php_config(site, tmp_path), expect_exit=None) as gateway:
        with client(gateway) as http:
            assert http.get("/hello.php").status_code == 200
        masters = php_children(gateway)
        assert len(masters) == 1
        members = group_members(masters[0])
        assert len(members) >= 3, "master and two children"
        gateway.proc.kill()
        gateway.proc.wait()
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in members) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [pid for pid in members if alive(pid)], "php-cgi processes outlived the gateway"


def test_shutdown_stops_php_cgi_and_removes_its_socket(site: Path, tmp_path: Path) -> None:
    with run_gateway(config_text=php_config(site, tmp_path)) as gateway:
        masters = php_children(gateway)
        members = group_members(masters[0])
        sockets = list(tmp_path.glob("php-*.sock"))
        assert len(sockets) == 1
    assert not [pid for pid in members if alive(pid)]
    assert not sockets[0].exists()


def test_missing_php_cgi_is_a_clear_error(tmp_path: Path, site: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        php_config(site, tmp_path).replace('handler = "php"', 'handler = "php"\n  php_binary = "/nope/php-cgi"')
    )
    result = gateway_command("check", str(config))
    assert result.returncode == 2
    assert "php_binary" in result.stderr and "apt-get install php-cgi" in result.stderr


# The fastcgi handler, against a FastCGI server the test runs ----------------------------


@pytest.fixture()
def external_php(site: Path) -> Iterator[int]:
    """php-cgi on a loopback TCP port, as a php-fpm would be."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": os.environ["PATH"], "PHP_FCGI_CHILDREN": "2"}
    proc = subprocess.Popen(
        [require_program("php-cgi"), "-b", f"127.0.0.1:{port}", "-d", "cgi.fix_pathinfo=0"],
        env=env,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            time.sleep(0.05)
        yield port
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


@pytest.mark.parametrize("keep_conn", [False, True])
def test_fastcgi_handler_reaches_an_external_server(site: Path, external_php: int, keep_conn: bool) -> None:
    config = f"""
[[vhost]]
names = ["php.test"]
  [[vhost.route]]
  path = "/"
  handler = "fastcgi"
  address = "127.0.0.1:{external_php}"
  root = "{site}"
  keep_conn = {str(keep_conn).lower()}
  max_connections = 2
"""
    with run_gateway(config_text=config) as gateway, client(gateway) as http:
        for _ in range(5):
            assert http.get("/hello.php").text == "Hello from PHP"
        assert http.get("/env.php/x").json()["PATH_INFO"] == "/x"
        assert http.get("/static.txt").text == "static file\n"


def test_php_cgi_runs_as_a_batch_process(php: Gateway) -> None:
    """SCHED_BATCH (no wakeup preemption of the gateway), for the master and the children it forks."""
    with client(php) as http:
        pids = {int(http.get("/pid.php").text) for _ in range(8)}
    masters = php_children(php)
    assert masters
    for pid in [*masters, *pids]:
        with contextlib.suppress(ProcessLookupError):  # a child replaced meanwhile
            assert os.sched_getscheduler(pid) == os.SCHED_BATCH, f"php-cgi {pid}"
