"""CGI scripts through the gateway: real sh, Perl and Python programs started per request.

The scripts are in tests/e2e/cgi_scripts/ (copied per module into a folder
of their own, where the traversal tests add symlinks and the state folder
collects the pids and timings scripts write). One gateway serves them under
several routes with different limits. A pid a script wrote is "gone" when
/proc has no entry for it or only a zombie (this container's init may reap
orphans late).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_program
from tests.support.processes import alive, rss_kib
from tests.support.server import Gateway, read_one_response, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
SCRIPTS = Path(__file__).parent / "cgi_scripts"
SECRET = "gateway-secret-for-cgi-7d1e"
MiB = 1024 * 1024
AS_ROOT = os.geteuid() == 0

CONFIG = """
[limits]
max_body_size = "64MiB"

[[vhost]]
names = ["cgi.test"]
default = true
  [[vhost.route]]
  path = "/cgi-bin/"
  handler = "cgi"
  root = "{root}"
  interpreters = {{ ".py" = "{python}", ".pl" = "perl" }}
  env = {{ "CGI_STATE" = "{state}", "GREETING" = "hello" }}
  timeout = 20

  [[vhost.route]]
  path = "/short/"
  handler = "cgi"
  root = "{root}"
  env = {{ "CGI_STATE" = "{state}" }}
  timeout = 1

  [[vhost.route]]
  path = "/limited/"
  handler = "cgi"
  root = "{root}"
  interpreters = {{ ".py" = "{python}" }}
  env = {{ "CGI_STATE" = "{state}" }}
  max_processes = 4
  queue = 16
  queue_timeout = 20

  [[vhost.route]]
  path = "/tight/"
  handler = "cgi"
  root = "{root}"
  interpreters = {{ ".py" = "{python}" }}
  env = {{ "CGI_STATE" = "{state}" }}
  max_processes = 4
  queue = 2
  queue_timeout = 10

  [[vhost.route]]
  path = "/files/"
  handler = "static"
  root = "{files}"
{extra}"""

AS_NOBODY = """
  [[vhost.route]]
  path = "/as-nobody/"
  handler = "cgi"
  root = "{root}"
  user = "nobody"
"""


@dataclass
class Site:
    root: Path
    state: Path
    outside: Path


# Fixtures ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    """The scripts in a world-readable folder (the `user` route runs them as nobody), plus traps."""
    base = Path(tempfile.mkdtemp(prefix="gateway-cgi-"))
    base.chmod(0o755)
    root, state, outside, files = base / "cgi-bin", base / "state", base / "outside", base / "files"
    shutil.copytree(SCRIPTS, root)
    for folder in (state, outside, files, root / "empty"):
        folder.mkdir()
    (files / "hello.txt").write_text("static hello\n")
    # A script outside the root that would leave a mark if it ever ran.
    escape = outside / "escape.sh"
    escape.write_text(f"#!/bin/sh\ntouch {state}/escaped\nprintf 'Content-Type: text/plain\\n\\nescaped\\n'\n")
    escape.chmod(0o755)
    (root / "escape.sh").symlink_to(escape)
    (root / "outdir").symlink_to(outside)
    (root / "alias.sh").symlink_to(root / "sub" / "page.sh")  # inside the root: allowed
    hidden = root / ".hidden.sh"
    hidden.write_text("#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\nhidden\\n'\n")
    hidden.chmod(0o755)
    (root / "data.txt").write_text("plain data, not a program\n")
    try:
        yield Site(root, state, outside)
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module", params=["auto", "asyncio"])
def gateway(request: pytest.FixtureRequest, site: Site) -> Iterator[Gateway]:
    """The gateway on uvloop (when installed) and on asyncio's own loop: their subprocess code differs."""
    require_program("perl")
    files = site.root.parent / "files"
    extra = AS_NOBODY.format(root=site.root) if AS_ROOT else ""
    config = CONFIG.format(root=site.root, state=site.state, files=files, python=sys.executable, extra=extra)
    loop = ("--loop", request.param)
    with run_gateway(config_text=config, env={"GATEWAY_SECRET": SECRET}, args=loop) as server:
        yield server
        assert "Traceback" not in server.stderr()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=20) as http:
        yield http


# Helpers ----------------------------------------------------------------------------


def raw(gateway: Gateway, target: bytes, extra: bytes = b"") -> bytes:
    """One request as raw bytes (so encoded dots, slashes and NUL arrive as written); the whole answer."""
    with gateway.connect() as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: cgi.test\r\nConnection: close\r\n" + extra + b"\r\n")
        return read_response(sock)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def fresh(site: Site, tag: str) -> str:
    """A tag whose pid file and timing log are not there yet (the module's two gateways share the state)."""
    for name in (f"{tag}.pid", f"slots-{tag}.log"):
        (site.state / name).unlink(missing_ok=True)
    return tag


def wait_for_pid(site: Site, tag: str, timeout: float = 5.0) -> int:
    path = site.state / f"{tag}.pid"
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"the script never wrote {path}"
        time.sleep(0.02)
    return int(path.read_text())


def assert_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


def env_of(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    env: dict[str, str] = response.json()["env"]
    return env


# Meta-variables ---------------------------------------------------------------------

CGI_NAMES = {
    "AUTH_TYPE",
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "GATEWAY_INTERFACE",
    "PATH_INFO",
    "PATH_TRANSLATED",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "REMOTE_HOST",
    "REMOTE_PORT",
    "REMOTE_USER",
    "REQUEST_METHOD",
    "REQUEST_URI",
    "SCRIPT_NAME",
    "SCRIPT_FILENAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "SERVER_SOFTWARE",
    "SERVER_ADDR",
    "REQUEST_SCHEME",
    "DOCUMENT_ROOT",
    "HTTPS",
    "PATH",
    "CGI_STATE",
    "GREETING",
}


def test_every_meta_variable(client: httpx.Client, site: Site, gateway: Gateway) -> None:
    response = client.post(
        "/cgi-bin/env.py/extra/p%20ath/?x=1&y=%20",
        content=b"abc",
        headers={
            "Host": "cgi.test:8080",
            "Content-Type": "text/plain; charset=utf-8",
            "X-Custom": "custom value",
            "Proxy": "http://evil.example:3128",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X_Underscored": "dropped",
            "Cookie": "a=1",
        },
    )
    env = env_of(response)
    root = str(site.root)
    expected = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_NAME": "cgi.test",
        "SERVER_PORT": "8080",
        "REQUEST_METHOD": "POST",
        "QUERY_STRING": "x=1&y=%20",
        "REQUEST_URI": "/cgi-bin/env.py/extra/p%20ath/?x=1&y=%20",
        "SCRIPT_NAME": "/cgi-bin/env.py",
        "PATH_INFO": "/extra/p ath/",
        "PATH_TRANSLATED": root + "/extra/p ath/",
        "SCRIPT_FILENAME": root + "/env.py",
        "DOCUMENT_ROOT": root,
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_HOST": "127.0.0.1",
        "SERVER_ADDR": "127.0.0.1",
        "REQUEST_SCHEME": "http",
        "CONTENT_LENGTH": "3",
        "CONTENT_TYPE": "text/plain; charset=utf-8",
        "HTTP_HOST": "cgi.test:8080",
        "HTTP_X_CUSTOM": "custom value",
        "HTTP_COOKIE": "a=1",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "GREETING": "hello",
    }
    assert {name: env.get(name) for name in expected} == expected
    assert env["SERVER_SOFTWARE"].startswith("gateway/")
    assert int(env["REMOTE_PORT"]) > 0
    assert "HTTP_PROXY" not in env  # httpoxy, CVE-2016-5385
    assert "HTTP_PROXY_AUTHORIZATION" not in env  # a proxy's credentials (Apache drops them too)
    assert "HTTPS" not in env and "AUTH_TYPE" not in env and "REMOTE_USER" not in env  # plain http, no auth
    assert not any("UNDERSCORED" in name for name in env)
    assert SECRET not in json.dumps(env)  # the gateway's own environment does not leak
    unexpected = {name for name in env if not name.startswith("HTTP_") and name not in CGI_NAMES}
    assert unexpected <= {"LC_CTYPE"}, unexpected  # Python may set LC_CTYPE itself (PEP 538)
    assert response.json()["cwd"] == root  # the script's own folder


def test_get_has_no_body_variables(client: httpx.Client) -> None:
    env = env_of(client.get("/cgi-bin/env.py"))
    assert env["REQUEST_METHOD"] == "GET"
    assert env["PATH_INFO"] == "" and "PATH_TRANSLATED" not in env
    assert env["QUERY_STRING"] == ""
    assert "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env


def test_perl_script_gets_the_same_environment(client: httpx.Client, site: Site) -> None:
    response = client.get("/cgi-bin/env.pl/info?word", headers={"Proxy": "x"})
    body = response.json()
    env = body["env"]
    assert env["SCRIPT_NAME"] == "/cgi-bin/env.pl" and env["PATH_INFO"] == "/info"
    assert env["SCRIPT_FILENAME"] == f"{site.root}/env.pl"
    assert body["argv"] == ["word"]
    assert "HTTP_PROXY" not in env and "GATEWAY_SECRET" not in env


def test_shell_script(client: httpx.Client) -> None:
    response = client.get("/cgi-bin/env.sh/a/b?one+two")
    lines = response.text.splitlines()
    assert "SCRIPT_NAME=/cgi-bin/env.sh" in lines and "PATH_INFO=/a/b" in lines
    assert "GATEWAY_INTERFACE=CGI/1.1" in lines and "QUERY_STRING=one+two" in lines
    assert lines[-2:] == ["ARG=one", "ARG=two"]


def test_script_name_and_path_info_in_subfolders(client: httpx.Client) -> None:
    assert client.get("/cgi-bin/sub/page.sh").text == "/cgi-bin/sub/page.sh|\n"
    assert client.get("/cgi-bin/sub/page.sh/x/y").text == "/cgi-bin/sub/page.sh|/x/y\n"
    assert client.get("/cgi-bin/sub/page.sh/").text == "/cgi-bin/sub/page.sh|/\n"
    assert client.get("/cgi-bin/alias.sh/z").text == "/cgi-bin/alias.sh|/z\n"  # a symlink inside the root


def test_isindex_queries_become_argv(client: httpx.Client) -> None:
    def argv(query: str) -> list[str]:
        result: list[str] = client.get(f"/cgi-bin/env.py?{query}").json()["argv"]
        return result

    assert argv("foo+bar") == ["foo", "bar"]
    assert argv("a%20b+c%2Bd") == ["a b", "c+d"]
    assert argv("-c+import+os") == ["-c", "import", "os"]  # words after the script: the interpreter never parses them
    assert argv("x=1") == []
    assert argv("a%3Db") == ["a=b"]  # only an unencoded "=" means a form query
    assert argv("a++b") == []  # an empty word: malformed, so no argv at all (§4.4)
    assert argv("a%00b") == []


def test_interpreter_runs_a_file_that_is_not_executable(client: httpx.Client) -> None:
    response = client.get("/cgi-bin/mapped.py")
    assert (response.status_code, response.text) == (200, "mapped ran\n")


# Request bodies ---------------------------------------------------------------------


def test_large_post_streams_to_stdin(client: httpx.Client) -> None:
    data = os.urandom(6 * MiB)
    answer = client.post("/cgi-bin/sha256.pl", content=data).json()
    assert answer == {"content_length": str(len(data)), "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_chunked_post_gets_a_content_length(client: httpx.Client) -> None:
    pieces = [os.urandom(256 * 1024 + n) for n in range(12)]

    def chunks() -> Iterator[bytes]:
        yield from pieces

    answer = client.post("/cgi-bin/sha256.pl", content=chunks()).json()
    data = b"".join(pieces)
    assert answer == {"content_length": str(len(data)), "length": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_script_that_ignores_its_body(client: httpx.Client) -> None:
    response = client.post("/cgi-bin/env.sh", content=os.urandom(5 * MiB))
    assert response.status_code == 200 and "REQUEST_METHOD=POST" in response.text


# Responses --------------------------------------------------------------------------


def test_status_and_repeated_headers(client: httpx.Client) -> None:
    response = client.get("/cgi-bin/headers.sh")
    assert (response.status_code, response.text) == (201, "created\n")
    assert response.headers.get_list("x-multi") == ["one", "two"]
    assert response.headers["content-length"] == "8"  # a short response is sized, not chunked


def test_a_local_redirect_meets_the_vhosts_rewrites_even_after_a_routes_own(site: Site) -> None:
    """The redirect is a new request: reached through a route's rewrite or not, the vhost's rewrites apply to it."""
    config = f"""
[[vhost]]
names = ["cgi.test"]
rewrite = [{{ from = "^/from-local/(.*)$", to = "/cgi-bin/env.py/$1" }}]
  [[vhost.route]]
  path = "/cgi-bin/"
  handler = "cgi"
  root = "{site.root}"
  interpreters = {{ ".py" = "{sys.executable}" }}
  [[vhost.route]]
  path = "/via-rewrite/"
  handler = "static"
  root = "{site.root}"
  rewrite = [{{ from = "^/via-rewrite/.*$", to = "/cgi-bin/to-rewritten.sh" }}]
"""
    with run_gateway(config_text=config) as gateway:
        for start in ("/cgi-bin/to-rewritten.sh", "/via-rewrite/x"):
            response = httpx.get(f"{gateway.url}{start}", headers={"host": "cgi.test"}, timeout=10)
            assert response.status_code == 200, (start, response.text)
            assert response.json()["env"]["PATH_INFO"] == "/here"


def test_output_short_of_its_content_length_is_a_502(gateway: Gateway) -> None:
    answer = raw(gateway, b"/cgi-bin/short-length.sh")
    assert status_of(answer) == 502, answer
    gateway.wait_for_log("short-length.sh: its output ended after 6 bytes of its Content-Length of 100")


def test_a_streamed_output_short_of_its_content_length_cuts_the_connection(gateway: Gateway) -> None:
    """The head went out with the first piece: only a cut connection tells the client its body is not whole."""
    answer = raw(gateway, b"/cgi-bin/short-stream.sh")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert status_of(head) == 200 and b"content-length: 200000" in head.lower()
    assert 0 < len(body) < 200_000
    gateway.wait_for_log("short-stream.sh: its output ended after 100000 bytes of its Content-Length of 200000")


def test_timeout_does_not_count_the_wait_for_a_slow_client(gateway: Gateway) -> None:
    """The script is blocked on a full pipe, not running late: a slow download outlasts `timeout` (1 s here)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # the pipe fills at once
        sock.connect((gateway.host, gateway.port))
        sock.sendall(b"GET /short/eight-mib.sh HTTP/1.1\r\nHost: cgi.test\r\nConnection: close\r\n\r\n")
        sock.settimeout(10)
        received, began = 0, time.monotonic()
        while data := sock.recv(65536):
            received += len(data)
            time.sleep(0.02)
    assert time.monotonic() - began > 1.5, "the client was not slow enough to test anything"
    assert received > 8 * 1024 * 1024, received  # the head and the whole body
    assert "eight-mib.sh: ran past its timeout" not in gateway.stderr()


def test_local_redirect_is_served_internally(client: httpx.Client) -> None:
    response = client.post("/cgi-bin/local-redirect.sh", content=b"dropped", headers={"Content-Type": "x/y"})
    env = env_of(response)
    assert env["SCRIPT_NAME"] == "/cgi-bin/env.py" and env["QUERY_STRING"] == "from=local"
    assert env["REQUEST_METHOD"] == "GET" and "CONTENT_LENGTH" not in env and "CONTENT_TYPE" not in env
    assert env["REQUEST_URI"] == "/cgi-bin/env.py?from=local"


def test_local_redirect_to_another_handler(client: httpx.Client) -> None:
    response = client.get("/cgi-bin/to-static.sh")
    assert (response.status_code, response.text) == (200, "static hello\n")


def test_local_redirect_loop_is_a_502(client: httpx.Client, gateway: Gateway) -> None:
    response = client.get("/cgi-bin/loop.sh")
    assert response.status_code == 502
    gateway.wait_for_log("loop.sh: local redirect to '/cgi-bin/loop.sh': more than 5 local redirects")


def test_client_redirect(client: httpx.Client) -> None:
    response = client.get("/cgi-bin/client-redirect.sh")
    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/elsewhere?x=1"


def test_nph_script_sends_its_own_status_line(client: httpx.Client) -> None:
    response = client.get("/cgi-bin/nph-custom.sh")
    assert (response.status_code, response.text) == (202, "nph body\n")
    assert response.headers["x-nph"] == "yes"


@pytest.mark.parametrize(
    ("script", "reason"),
    [
        ("bad-line.sh", "not a header line: 'this is not a header'"),
        ("bad-status.sh", "Status must be a code from 200 to 599, got '99'"),
        ("silent.sh", "the program wrote nothing (a CGI response starts with headers) (exit status 3)"),
        ("flood-head.sh", "no end of the headers within 65536 bytes of output"),
    ],
)
def test_bad_output_is_a_502(client: httpx.Client, gateway: Gateway, script: str, reason: str) -> None:
    response = client.get(f"/cgi-bin/{script}")
    assert response.status_code == 502
    assert "Bad Gateway" in response.text
    gateway.wait_for_log(f"{script}: {reason}")


def test_stderr_goes_to_the_log_tagged_with_the_script(client: httpx.Client, gateway: Gateway, site: Site) -> None:
    client.get("/cgi-bin/silent.sh")
    gateway.wait_for_log(f"[ERROR] gateway.adapters.cgi: {site.root}/silent.sh: silent.sh gives up")


def test_output_streams_line_by_line(client: httpx.Client) -> None:
    start = time.monotonic()
    seen = []
    with client.stream("GET", "/cgi-bin/ticker.sh") as response:
        for line in response.iter_lines():
            seen.append((line, time.monotonic() - start))
    assert [line for line, _ in seen] == [f"line {n}" for n in range(1, 6)]
    first, last = seen[0][1], seen[-1][1]
    assert first < 0.9, f"the first line came after {first:.2f}s"
    assert last - first > 0.8  # lines arrived as printed, 0.3 s apart, not all at the end


# Sandbox limits ---------------------------------------------------------------------


def test_timeout_kills_the_script(gateway: Gateway, site: Site) -> None:
    start = time.monotonic()
    answer = raw(gateway, b"/short/sleep.sh?" + fresh(site, "timeout1").encode())
    assert status_of(answer) == 504, answer
    assert time.monotonic() - start < 5
    assert_gone(wait_for_pid(site, "timeout1"))
    gateway.wait_for_log("sleep.sh: ran past its timeout of 1 s")


def test_child_left_behind_is_killed(client: httpx.Client, site: Site) -> None:
    start = time.monotonic()
    response = client.get(f"/cgi-bin/fork.sh?{fresh(site, 'fork1')}")
    assert (response.status_code, response.text) == (200, "forked\n")
    assert time.monotonic() - start < 3  # the child held stdout: the response did not wait for it
    assert_gone(wait_for_pid(site, "fork1"))


def test_a_script_that_closed_its_stdout_has_answered(client: httpx.Client, site: Site) -> None:
    """Its response ends when stdout closes, not when it exits: nothing but the script holds its pipes."""
    start = time.monotonic()
    response = client.get(f"/cgi-bin/closes-stdout.sh?{fresh(site, 'closed1')}")
    assert (response.status_code, response.text) == (200, "answered\n")
    assert time.monotonic() - start < 2  # it works on for 3 s
    assert alive(wait_for_pid(site, "closed1"))


def test_client_disconnect_kills_the_script(gateway: Gateway, site: Site) -> None:
    sock = gateway.connect()
    tag = fresh(site, "gone1")
    sock.sendall(f"GET /cgi-bin/forever.sh?{tag} HTTP/1.1\r\nHost: cgi.test\r\n\r\n".encode())
    received = b""
    while b"tick 1" not in received:
        data = sock.recv(4096)
        assert data, received
        received += data
    pid = wait_for_pid(site, "gone1")
    assert alive(pid)
    sock.close()
    assert_gone(pid)


def test_max_processes_with_a_queue(gateway: Gateway, site: Site) -> None:
    tag = fresh(site, "limited")
    answers = _concurrent(gateway, [f"/limited/slot.py?{tag}+0.3+{n}" for n in range(20)])
    assert [status for status, _ in answers] == [200] * 20
    assert 2 <= _most_at_once(site.state / "slots-limited.log") <= 4


def test_full_queue_is_a_503(gateway: Gateway, site: Site) -> None:
    tag = fresh(site, "tight")
    answers = _concurrent(gateway, [f"/tight/slot.py?{tag}+0.8+{n}" for n in range(20)])
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(200) >= 4 and statuses.count(503) >= 8, statuses
    assert all(headers.get(b"retry-after") == b"1" for status, headers in answers if status == 503)
    assert _most_at_once(site.state / "slots-tight.log") <= 4


def _concurrent(gateway: Gateway, targets: list[str]) -> list[tuple[int, dict[bytes, bytes]]]:
    """Send every request at once, each on its own connection; their statuses and headers, in order."""
    results: list[tuple[int, dict[bytes, bytes]] | None] = [None] * len(targets)
    barrier = threading.Barrier(len(targets))

    def one(index: int, target: str) -> None:
        with gateway.connect(timeout=30) as sock:
            barrier.wait()
            sock.sendall(f"GET {target} HTTP/1.1\r\nHost: cgi.test\r\n\r\n".encode())
            status, headers, _ = read_one_response(sock, timeout=30)
            results[index] = (status, headers)

    threads = [threading.Thread(target=one, args=(n, t)) for n, t in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(40)
    done = [result for result in results if result is not None]
    assert len(done) == len(targets), results
    return done


def _most_at_once(log: Path) -> int:
    events = []
    for line in log.read_text().splitlines():
        kind, stamp = line.split()
        events.append((float(stamp), 1 if kind == "start" else -1))
    running = most = 0
    for _, step in sorted(events, key=lambda event: (event[0], event[1])):
        running += step
        most = max(most, running)
    return most


def test_stdout_flood_streams_with_bounded_memory(gateway: Gateway) -> None:
    before = rss_kib(gateway.proc.pid)
    total = 0
    with socket.create_connection(gateway.address, timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(b"GET /cgi-bin/flood-out.sh HTTP/1.1\r\nHost: cgi.test\r\nConnection: close\r\n\r\n")
        first = sock.recv(65536)
        time.sleep(1.0)  # a slow client: the script must block, not the gateway buffer
        during = rss_kib(gateway.proc.pid)
        buffer = first
        while data := sock.recv(1024 * 1024):
            total += len(data)
        head, _, body = buffer.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0] and b"transfer-encoding: chunked" in head.lower()
    assert total + len(body) > 64 * MiB  # the body with its chunk framing
    after = rss_kib(gateway.proc.pid)
    assert during - before < 24 * 1024, (before, during)
    assert after - before < 24 * 1024, (before, after)


def test_stderr_flood_is_bounded(client: httpx.Client, gateway: Gateway) -> None:
    before = rss_kib(gateway.proc.pid)
    response = client.get("/cgi-bin/flood-err.sh")
    assert (response.status_code, response.text) == (200, "survived\n")
    assert rss_kib(gateway.proc.pid) - before < 24 * 1024
    log = gateway.wait_for_log("flood-err.sh: more than 200 lines on stderr; the rest is dropped")
    assert log.count("flood-err.sh: an error line from flood-err") == 200
    assert len(log) < 4 * MiB


# What may run -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (b"/cgi-bin/sub/%2e%2e/env.sh", 404),
        (b"/cgi-bin/sub/%2E%2E/%2e%2e/cgi-bin/env.sh", 404),
        (b"/cgi-bin/sub%2f..%2fenv.sh", 404),
        (b"/cgi-bin/sub/..%5cenv.sh", 404),
        (b"/cgi-bin/env.sh%00.txt", 400),
        (b"/cgi-bin/escape.sh", 404),  # a symlink out of the root
        (b"/cgi-bin/outdir/escape.sh", 404),  # through a symlinked folder
        (b"/cgi-bin/.hidden.sh", 404),
        (b"/cgi-bin/missing.sh", 404),
        (b"/cgi-bin/missing.sh/info", 404),
        (b"/cgi-bin/not-executable.sh", 403),
        (b"/cgi-bin/data.txt/with/path", 403),
        (b"/cgi-bin/empty/", 403),
        (b"/cgi-bin/", 403),
    ],
)
def test_refused(gateway: Gateway, site: Site, target: bytes, status: int) -> None:
    answer = raw(gateway, target)
    assert status_of(answer) == status, answer
    assert b"should never run" not in answer and b"escaped" not in answer.split(b"\r\n\r\n", 1)[1]
    assert not (site.state / "escaped").exists()


def test_dotdot_in_the_request_line_never_escapes(gateway: Gateway, site: Site) -> None:
    for target in (b"/cgi-bin/../outside/escape.sh", b"/cgi-bin/%2e%2e/outside/escape.sh", b"/cgi-bin/../../x"):
        assert status_of(raw(gateway, target)) in (400, 404)
    assert not (site.state / "escaped").exists()


def test_directory_index(client: httpx.Client) -> None:
    response = client.get("/cgi-bin/sub/")
    assert (response.status_code, response.text) == (200, "index of sub: /cgi-bin/sub/index.cgi\n")
    moved = client.get("/cgi-bin/sub?q=1")
    assert moved.status_code == 301 and moved.headers["location"] == "/cgi-bin/sub/?q=1"


@pytest.mark.skipif(not AS_ROOT, reason="switching users needs the gateway to run as root")
def test_user_drops_privileges(client: httpx.Client) -> None:
    response = client.get("/as-nobody/whoami.sh")
    nobody = __import__("pwd").getpwnam("nobody")
    assert (response.status_code, response.text) == (200, f"{nobody.pw_uid} {nobody.pw_gid}\n")


def test_script_dies_with_the_gateway(site: Site) -> None:
    """kill -9 of the gateway leaves no script behind (setpriv --pdeathsig)."""
    require_program("setpriv")
    config = CONFIG.format(root=site.root, state=site.state, files=site.outside, python=sys.executable, extra="")
    with run_gateway(config_text=config, expect_exit=None) as server:
        sock = server.connect()
        tag = fresh(site, "orphan1")
        sock.sendall(f"GET /cgi-bin/forever.sh?{tag} HTTP/1.1\r\nHost: cgi.test\r\n\r\n".encode())
        pid = wait_for_pid(site, "orphan1")
        assert alive(pid)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(5)
        sock.close()
        assert_gone(pid)


# The example ------------------------------------------------------------------------

EXAMPLE = """
[[vhost]]
names = ["cgi.localhost"]
  [[vhost.route]]
  path = "=/"
  handler = "redirect"
  to = "/cgi-bin/"
  [[vhost.route]]
  path = "/cgi-bin/"
  handler = "cgi"
  root = "{root}"                 # only files under it run; index.cgi is the folder's page
  allow = ["127.0.0.0/8", "::1"]
  env = {{ "COUNTER_FILE" = "${{CGI_COUNTER_FILE:-/tmp/gateway-cgi-counter}}" }}
  timeout = 30
  max_processes = 8
"""


def test_example_scripts(tmp_path: Path) -> None:
    """apps_example/cgi-bin under the route block its README section shows."""
    require_program("perl")
    root = Path(__file__).parents[2] / "apps_example" / "cgi-bin"
    counter = tmp_path / "counter"
    with (
        run_gateway(
            config_text=EXAMPLE.format(root=root), env={"CGI_COUNTER_FILE": str(counter), "GATEWAY_SECRET": SECRET}
        ) as server,
        httpx.Client(base_url=server.url, headers={"Host": "cgi.localhost"}, timeout=10) as http,
    ):
        home = http.get("/")
        assert (home.status_code, home.headers["location"]) == (302, "/cgi-bin/")
        index = http.get("/cgi-bin/")
        assert index.status_code == 200 and 'href="/cgi-bin/form.pl"' in index.text
        listing = http.get("/cgi-bin/env.sh/some/path?word1+word2").text
        assert "  PATH_INFO=/some/path" in listing and "  word2" in listing
        assert f"  COUNTER_FILE={counter}" in listing and SECRET not in listing
        echoed = http.post("/cgi-bin/form.pl", data={"name": "<Ada>", "message": "a & b"}).text
        assert "<dd>&lt;Ada&gt;</dd>" in echoed and "<dd>a &amp; b</dd>" in echoed
        assert http.get("/cgi-bin/counter.py").text == "This page has been visited 1 time.\n"
        assert http.get("/cgi-bin/counter.py").text == "This page has been visited 2 times.\n"
        assert counter.read_text() == "2\n"
