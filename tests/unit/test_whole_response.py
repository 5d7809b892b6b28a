"""When the router hands a request to an app's gateway_respond_now, and what the core writes for it.

The byte-for-byte comparison with the ASGI path is tests/e2e/test_static_whole.py;
here: which requests take the fast path (so that comparison is not vacuous)
and the core's side of it on a transport that records its writes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from adapters._static_files import FileAnswer
from gateway.config.schema import Limits
from gateway.http.protocol import HttpProtocol
from gateway.http.state import ServerState
from gateway.logs import NullAccessLog
from gateway.routing.router import FastRouter, Router
from gateway.runner import resolve
from gateway.types import Message, Scope

CONFIG = """
[[vhost]]
names = ["fast"]
  [[vhost.route]]
  path = "~^/regex/"
  handler = "static"
  root = "{root}"
  [[vhost.route]]
  path = "/"
  handler = "static"
  root = "{root}"

[[vhost]]
names = ["staged"]
  [[vhost.route]]
  path = "/"
  handler = "static"
  root = "{root}"
  allow = ["127.0.0.1"]
"""


@pytest.fixture
def router(tmp_path: Path) -> FastRouter:
    (tmp_path / "hello.txt").write_bytes(b"hello\n")
    (tmp_path / "big.bin").write_bytes(b"x" * (65 * 1024))
    config = tmp_path / "gateway.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    app = resolve([str(config)])[1]
    assert isinstance(app, FastRouter)
    return app


@pytest.mark.parametrize(
    "extra",
    [
        '[server]\ntrusted_proxies = ["10.0.0.1"]\n',  # the client address is rewritten first
        "",  # below: no static route at all
    ],
)
def test_a_config_without_routes_that_answer_at_once_does_not_try(tmp_path: Path, extra: str) -> None:
    """Every request of such a config would pay for a lookup that never answers."""
    route = 'handler = "static"\n  root = "."' if extra else 'handler = "redirect"\n  to = "https://example.com/"'
    config = tmp_path / "gateway.toml"
    config.write_text(f'{extra}[[vhost]]\nnames = ["a"]\n  [[vhost.route]]\n  path = "/"\n  {route}\n')
    app = resolve([str(config)])[1]
    assert type(app) is Router
    assert getattr(app, "gateway_respond_now", None) is None


def scope_for(host: str, path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> Scope:
    return {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host.encode()), *(headers or [])],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
    }


def through_asgi(router: FastRouter, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(router(scope, receive, send))
    return sent


def test_a_cached_small_file_of_a_plain_route_is_answered_at_once(router: FastRouter) -> None:
    assert router.gateway_respond_now(scope_for("fast", "/hello.txt")) is None  # not cached yet
    through_asgi(router, scope_for("fast", "/hello.txt"))
    status, fields, body = router.gateway_respond_now(scope_for("fast", "/hello.txt")) or (0, b"", b"")
    assert (status, body) == (200, b"hello\n")
    assert fields.startswith(b"content-type: text/plain; charset=utf-8\r\n")
    assert fields.endswith(b"accept-ranges: bytes\r\ncontent-length: 6\r\n")


def test_a_cached_large_file_is_sent_from_the_cycle(router: FastRouter) -> None:
    """Past SMALL_FILE the answer is a FileAnswer: its head lines built once, the bytes by sendfile."""
    through_asgi(router, scope_for("fast", "/big.bin"))
    found = router.gateway_respond_now(scope_for("fast", "/big.bin"))
    assert isinstance(found, FileAnswer)
    assert found.size == 65 * 1024 and found.path.endswith("/big.bin")
    assert found.lines.endswith(b"accept-ranges: bytes\r\ncontent-length: 66560\r\n")  # where the ASGI path has it


@pytest.mark.parametrize(
    ("host", "path", "method", "headers"),
    [
        ("staged", "/hello.txt", "GET", []),  # a stage wraps the route
        ("fast", "/regex/hello.txt", "GET", []),  # a regex route hands its match to the app
        ("fast", "/hello.txt", "GET", [(b"range", b"bytes=0-1")]),
        ("fast", "/hello.txt", "DELETE", []),
    ],
)
def test_what_goes_the_asgi_way(
    router: FastRouter, host: str, path: str, method: str, headers: list[tuple[bytes, bytes]]
) -> None:
    through_asgi(router, scope_for(host, path, "GET"))
    through_asgi(router, scope_for("fast", "/hello.txt", "GET"))
    scope = scope_for(host, path, method, headers)
    before = dict(scope)
    assert router.gateway_respond_now(scope) is None
    assert scope == before


def test_a_conditional_request_gets_304_at_once(router: FastRouter) -> None:
    messages = through_asgi(router, scope_for("fast", "/hello.txt"))
    etag = dict(messages[0]["headers"])[b"etag"]
    found = router.gateway_respond_now(scope_for("fast", "/hello.txt", headers=[(b"if-none-match", etag)]))
    assert found is not None and found[0] == 304 and found[2] == b""


def test_a_mounted_route_answers_with_its_mount_in_root_path(tmp_path: Path) -> None:
    """As __call__ moves a Python app's prefix into root_path (SCRIPT_NAME); a None leaves the scope as it was."""
    config = tmp_path / "gateway.toml"
    route = 'path = "/app"\n  handler = "wsgi"\n  app = "tests.e2e.wsgi_apps.apps:environ_app"'
    config.write_text(f'[[vhost]]\nnames = ["a"]\n  [[vhost.route]]\n  {route}\n')
    router = resolve([str(config)])[1]
    assert isinstance(router, FastRouter)  # the wsgi bridge answers bodyless requests from a callback
    seen: list[str] = []
    answers: list[Any] = [(200, b"", b""), None]
    router.vhosts[0].routes[0].respond_now = lambda scope: seen.append(scope["root_path"]) or answers.pop(0)
    answered = scope_for("a", "/app/x")
    assert router.gateway_respond_now(answered) == (200, b"", b"")
    assert answered["root_path"] == "/app"
    declined = scope_for("a", "/app/x")
    assert router.gateway_respond_now(declined) is None
    assert declined == scope_for("a", "/app/x") and seen == ["/app", "/app"]


class Transport:
    def __init__(self) -> None:
        self.written = b""
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 80), "peername": ("127.0.0.1", 5000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += data

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


class WholeApp:
    """An app that answers GET / at once, fails on /boom, and leaves the rest to ASGI."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def gateway_respond_now(self, scope: Scope) -> tuple[int, bytes, bytes] | None:
        if scope["path"] == "/boom":
            raise ValueError("boom")
        if scope["path"] == "/":
            return 200, b"content-type: text/plain\r\ncontent-length: 3\r\n", b"hi\n"
        return None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.called.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi"})


def serve(*chunks: bytes) -> tuple[Transport, WholeApp]:
    """Feed each chunk as one read from the client, letting tasks run after each."""

    async def run() -> tuple[Transport, WholeApp]:
        app = WholeApp()
        state = ServerState(app, Limits(), asyncio.get_running_loop(), NullAccessLog())
        protocol = HttpProtocol(state)
        transport = Transport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        for data in chunks:
            protocol.data_received(data)
            await asyncio.sleep(0.01)
        return transport, app

    return asyncio.run(run())


def test_the_core_writes_the_whole_answer_then_serves_the_next_request() -> None:
    transport, app = serve(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    answers = transport.written.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert answers[0].endswith(b"content-type: text/plain\r\ncontent-length: 3\r\n\r\n")  # HEAD: no body
    assert answers[1].endswith(b"content-type: text/plain\r\ncontent-length: 3\r\n\r\nhi\n")
    assert app.called == []


def test_requests_pipelined_behind_a_whole_answer_wait_their_turn() -> None:
    transport, app = serve(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" * 2 + b"GET /other HTTP/1.1\r\nHost: a\r\n\r\n")
    answers = transport.written.split(b"HTTP/1.1 200 OK\r\n")[1:]
    assert answers[0].endswith(b"\r\n\r\nhi\n")
    assert answers[1].endswith(b"\r\n\r\nasgi") and answers[2].endswith(b"\r\n\r\nasgi")
    assert app.called == ["/", "/other"]  # in order, after the first answer completed


def test_the_core_says_close_when_the_client_asked_for_it() -> None:
    transport, _ = serve(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert transport.written.endswith(b"content-length: 3\r\nconnection: close\r\n\r\nhi\n")
    assert transport.closed


def test_an_app_failing_in_respond_now_is_a_500() -> None:
    transport, app = serve(b"GET /boom HTTP/1.1\r\nHost: a\r\n\r\n")
    assert transport.written.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert app.called == []
