"""WebSockets end to end: the websockets client against the real gateway, and through its proxy to uvicorn.

One gateway serves tests/e2e/ws_apps.py (Starlette) behind every kind of
route a handshake can meet: plain, auth, allow, rate, handlers that speak no
WebSocket, and a proxy to uvicorn serving the same app. Its limits are small
(64 KiB messages, pings every second) so the tests see them act quickly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import socket
import struct
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
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.processes import rss_kib
from tests.support.server import ROOT, Gateway, read_one_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]
APP = "tests.e2e.ws_apps:app"
KEY = base64.b64encode(b"0123456789abcdef").decode()
CONFIG = """
[server]
ws_max_message_size = "64KiB"
ws_ping_interval = 1
ws_ping_timeout = 1
access_log_format = "json"

[[vhost]]
names = ["localhost"]
errors = {{ 429 = "/files/page.txt" }}
  [[vhost.route]]
  path = "/auth/"
  handler = "asgi"
  app = "{app}"
  auth = {{ type = "basic", realm = "chat", users = "{folder}/users" }}
  [[vhost.route]]
  path = "/private/"
  handler = "asgi"
  app = "{app}"
  allow = ["10.0.0.0/8"]
  [[vhost.route]]
  path = "/rated/"
  handler = "asgi"
  app = "{app}"
  rate = {{ requests = 1, per = "1m" }}
  [[vhost.route]]
  path = "/files/"
  handler = "static"
  root = "{folder}"
  [[vhost.route]]
  path = "/wsgi/"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.apps:env"
  [[vhost.route]]
  path = "=/moved"
  handler = "redirect"
  to = "/echo"
  [[vhost.route]]
  path = "=/health"
  handler = "health"
  [[vhost.route]]
  path = "/upstream/"
  handler = "proxy"
  upstreams = ["http://127.0.0.1:{upstream}"]
  strip_prefix = true
  [[vhost.route]]
  path = "/gone/"
  handler = "proxy"
  upstreams = ["http://127.0.0.1:{closed}"]
  connect_timeout = 1
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "{app}"
  compress = true                  # output stages: WebSockets pass through them untouched
  security_headers = true
  headers = {{ set = {{ X-Site = "ws" }} }}
"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    """uvicorn serving the same Starlette app: the proxy's upstream, another server's WebSocket implementation."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", APP, "--fd", str(listener.fileno()), "--log-level", "warning"]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(command, cwd=ROOT, pass_fds=[listener.fileno()], stdout=log, stderr=log)
        listener.close()
        try:
            deadline = time.monotonic() + 15
            while not _answers(port):
                assert proc.poll() is None and time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.05)
            yield port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def site(upstream: int) -> Iterator[Gateway]:
    folder = Path(tempfile.mkdtemp(prefix="gateway-ws-"))
    (folder / "users").write_text("ann:{SHA}" + base64.b64encode(hashlib.sha1(b"secret").digest()).decode())
    (folder / "page.txt").write_text("a file\n")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections to it are refused
    config = CONFIG.format(app=APP, folder=folder, upstream=upstream, closed=closed.getsockname()[1])
    with run_gateway(config_text=config) as gateway:
        yield gateway
    closed.close()


def ws_url(gateway: Gateway, path: str) -> str:
    return f"ws://{gateway.host}:{gateway.port}{path}"


def run(coroutine: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coroutine, 30))


def stats(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/stats", timeout=5).json()


# The ASGI messages ------------------------------------------------------------------


def test_echo_text_bytes_subprotocol_and_close_code(site: Gateway) -> None:
    async def scenario() -> ConnectionClosed:
        async with connect(ws_url(site, "/echo"), subprotocols=["chat.v2", "chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert ws.response.headers["x-echo"] == "yes"
            assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff" * 1000)
            assert await ws.recv() == b"\x00\xff" * 1000
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value

    closed = run(scenario())
    assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4000, "bye")
    line = site.wait_for_log('"target": "/echo"', stream="stdout").splitlines()[-1]
    entry = json.loads(line)
    assert entry["status"] == 101 and entry["method"] == "GET" and entry["duration_ms"] > 0
    scope = stats(site.url)["scopes"][-1]
    assert scope == {"scheme": "ws", "path": "/echo", "root_path": "", "subprotocols": ["chat.v2", "chat.v1"]}


def test_denial_response_reaches_the_client(site: Gateway) -> None:
    async def scenario() -> None:
        async with connect(ws_url(site, "/deny")):
            pass

    with pytest.raises(InvalidStatus) as refused:
        run(scenario())
    response = refused.value.response
    assert response.status_code == 401 and response.body == b"members only\n"
    assert response.headers["www-authenticate"] == 'Bearer realm="x"'


def test_close_before_accept_is_a_403(site: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        run(_open_and_close(site, "/reject"))
    assert refused.value.response.status_code == 403


async def _open_and_close(site: Gateway, path: str, **options: Any) -> None:
    async with connect(ws_url(site, path), open_timeout=10, **options):
        pass


# Stages on the handshake ------------------------------------------------------------


def test_auth_refuses_the_handshake_with_401_and_admits_a_user(site: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        run(_open_and_close(site, "/auth/echo"))
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["www-authenticate"].startswith('Basic realm="chat"')

    async def as_ann() -> Any:
        header = {"Authorization": "Basic " + base64.b64encode(b"ann:secret").decode()}
        async with connect(ws_url(site, "/auth/echo"), additional_headers=header) as ws:
            await ws.send("whoami")
            return json.loads(await ws.recv())

    assert run(as_ann()) == {"user": "ann", "client": "127.0.0.1"}


def test_access_and_rate_refuse_the_handshake(site: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        run(_open_and_close(site, "/private/echo"))
    assert refused.value.response.status_code == 403
    run(_open_and_close(site, "/rated/echo"))  # the one handshake a minute
    with pytest.raises(InvalidStatus) as limited:
        run(_open_and_close(site, "/rated/echo"))
    assert limited.value.response.status_code == 429 and "retry-after" in limited.value.response.headers
    assert limited.value.response.body == b"a file\n", "the vhost's error document for 429 applies to handshakes too"


@pytest.mark.parametrize(
    ("path", "handler"),
    [("/files/page.txt", "static"), ("/wsgi/", "wsgi"), ("/moved", "redirect"), ("/health", "health")],
)
def test_handlers_without_websocket_refuse_the_handshake(site: Gateway, path: str, handler: str) -> None:
    with pytest.raises(InvalidStatus) as refused:
        run(_open_and_close(site, path))
    response = refused.value.response
    assert response.status_code == 400 and f"'{handler}' handler" in response.body.decode()
    assert httpx.get(site.url + "/files/page.txt").text == "a file\n"  # plain HTTP there is untouched


def test_malformed_handshakes_are_refused_before_the_app(site: Gateway) -> None:
    for extra, status in (
        (b"", 400),
        (b"Sec-WebSocket-Key: " + KEY.encode() + b"\r\nSec-WebSocket-Version: 8\r\n", 426),
    ):
        with site.connect() as sock:
            sock.sendall(
                b"GET /echo HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + extra
                + b"\r\n"
            )
            got, headers, _ = read_one_response(sock)
        assert got == status
        if status == 426:
            assert headers[b"sec-websocket-version"] == b"13"


# Limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_a_message_over_ws_max_message_size_closes_with_1009(site: Gateway, compression: str | None) -> None:
    async def scenario() -> ConnectionClosed:
        async with connect(ws_url(site, "/echo"), compression=compression) as ws:
            await ws.send(b"\0" * 65536)  # the limit itself passes
            assert len(await ws.recv()) == 65536
            await ws.send(b"\0" * (1024 * 1024))  # deflated, this is a thousand bytes on the wire
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value

    closed = run(scenario())
    assert closed.rcvd is not None and closed.rcvd.code == 1009


def test_a_slow_reader_holds_the_app_back_and_memory_stays_bounded(site: Gateway) -> None:
    rss_before = rss_kib(site.proc.pid)

    async def scenario() -> tuple[int, int, int]:
        async with connect(ws_url(site, "/flood"), compression=None, max_size=None, max_queue=4) as ws:
            await asyncio.sleep(1.5)  # read nothing: the app must stall
            stalled = stats(site.url)["flood_sent"]
            rss = rss_kib(site.proc.pid)
            got = 0
            async for message in ws:
                got += len(message)
            return stalled, rss, got

    stalled, rss, got = run(scenario())
    total = 4096 * 16384
    assert stalled * 16384 < 24 * 1024 * 1024, f"the app sent {stalled} messages to a client reading none"
    assert rss - rss_before < 48 * 1024, f"the gateway grew by {(rss - rss_before) // 1024} MiB"
    assert got == total and stats(site.url)["flood_done"]


def test_a_client_that_vanishes_gives_the_app_a_disconnect(site: Gateway) -> None:
    before = len(stats(site.url)["disconnects"])
    sock = handshake(site, "/watch")
    sock.close()  # no Close frame

    async def polite() -> None:
        async with connect(ws_url(site, "/watch")) as ws:
            await ws.close(4001, "done")

    run(polite())
    deadline = time.monotonic() + 5
    while len(stats(site.url)["disconnects"]) < before + 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    got = stats(site.url)["disconnects"][before:]
    assert sorted(d["code"] for d in got) == [1006, 4001]
    assert {"code": 4001, "reason": "done"} in got


def test_a_client_that_never_answers_pings_is_dropped(site: Gateway) -> None:
    before = len(stats(site.url)["disconnects"])
    sock = handshake(site, "/watch")
    started = time.monotonic()
    frames = b""
    while chunk := sock.recv(4096):  # pings arrive; we answer none; the server drops us
        frames += chunk
    elapsed = time.monotonic() - started
    sock.close()
    assert frames[:1] == b"\x89" and elapsed < 6  # a ping frame, then the end within interval + timeout + sweep
    deadline = time.monotonic() + 5
    while len(stats(site.url)["disconnects"]) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stats(site.url)["disconnects"][before]["code"] == 1006


MASK = b"\x01\x02\x03\x04"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x81\x82" + MASK + bytes(b ^ MASK[i] for i, b in enumerate(b"\xff\xfe")), 1007),  # text, not UTF-8
        (b"\x81\x02hi", 1002),  # a client frame without a mask
    ],
)
def test_a_frame_rfc_6455_refuses_closes_with_its_code(site: Gateway, frame: bytes, code: int) -> None:
    sock = handshake(site, "/watch")
    sock.sendall(frame)
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    sock.close()
    assert answer[:1] == b"\x88" and struct.unpack("!H", answer[2:4])[0] == code  # a Close frame with the code


def handshake(site: Gateway, path: str) -> socket.socket:
    """A raw WebSocket handshake (no client library to answer pings or send a Close)."""
    sock = site.connect(timeout=10)
    request = f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
    sock.sendall(f"{request}Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101 ")
    return sock


# Through the proxy --------------------------------------------------------------------


def test_the_proxy_relays_a_websocket_to_its_upstream(site: Gateway, upstream: int) -> None:
    async def scenario() -> ConnectionClosed:
        async with connect(ws_url(site, "/upstream/echo"), subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1" and ws.response.headers["x-echo"] == "yes"
            await ws.send("through")
            assert await ws.recv() == "through"
            await ws.send(b"\x01" * 50000)
            assert await ws.recv() == b"\x01" * 50000
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value

    closed = run(scenario())
    assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4000, "bye")

    async def leave() -> None:
        async with connect(ws_url(site, "/upstream/watch")) as ws:
            await ws.close(4002, "leaving")

    run(leave())
    deadline = time.monotonic() + 5
    upstream_url = f"http://127.0.0.1:{upstream}"
    while {"code": 4002, "reason": "leaving"} not in stats(upstream_url)["disconnects"]:
        assert time.monotonic() < deadline, stats(upstream_url)
        time.sleep(0.05)


def test_the_proxy_passes_a_close_without_a_code_as_one(site: Gateway, upstream: int) -> None:
    """RFC 6455 §7.1.5: no code is 1005 for the other end too, not a made-up 1000."""
    sock = handshake(site, "/upstream/watch")
    sock.sendall(b"\x88\x80" + MASK)  # a Close frame with no payload
    with contextlib.suppress(OSError):
        while sock.recv(4096):
            pass
    sock.close()
    upstream_url = f"http://127.0.0.1:{upstream}"
    deadline = time.monotonic() + 5
    while not stats(upstream_url)["disconnects"] or stats(upstream_url)["disconnects"][-1]["code"] != 1005:
        assert time.monotonic() < deadline, stats(upstream_url)
        time.sleep(0.05)


def test_an_upstream_that_breaks_the_protocol_gets_the_client_a_1011() -> None:
    """Not wsproto's 1002 'client received unexpected masked frame': the client did nothing wrong."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def broken_upstream() -> None:
        conn, _ = listener.accept()
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                head += conn.recv(4096)
            key = next(
                v
                for k, _, v in (line.partition(b": ") for line in head.split(b"\r\n"))
                if k.lower() == b"sec-websocket-key"
            )
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
            conn.sendall(b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            conn.sendall(b"\x81\x82" + MASK + bytes(b ^ MASK[i] for i, b in enumerate(b"hi")))  # masked: a client's
            with contextlib.suppress(OSError):
                while conn.recv(4096):
                    pass

    server = threading.Thread(target=broken_upstream, daemon=True)
    server.start()
    port = listener.getsockname()[1]
    config = '[[vhost]]\nnames = ["localhost"]\n  [[vhost.route]]\n  path = "/"\n  handler = "proxy"\n'
    config += f'  upstreams = ["http://127.0.0.1:{port}"]\n'
    with run_gateway(config_text=config) as gateway:
        sock = handshake(gateway, "/")
        answer = b""
        with contextlib.suppress(OSError):
            while chunk := sock.recv(4096):
                answer += chunk
        sock.close()
        assert answer[:1] == b"\x88" and struct.unpack("!H", answer[2:4])[0] == 1011, answer
        gateway.wait_for_log("the upstream broke the WebSocket protocol")
    server.join(5)
    listener.close()


def test_the_proxy_passes_a_slow_readers_backpressure_to_the_upstream(site: Gateway, upstream: int) -> None:
    upstream_url = f"http://127.0.0.1:{upstream}"

    async def scenario() -> tuple[int, int]:
        async with connect(ws_url(site, "/upstream/flood"), compression=None, max_size=None, max_queue=4) as ws:
            await asyncio.sleep(1.5)  # read nothing: the upstream's app must stall too
            stalled = stats(upstream_url)["flood_sent"]
            got = 0
            async for message in ws:
                got += len(message)
            return stalled, got

    stalled, got = run(scenario())
    assert stalled * 16384 < 24 * 1024 * 1024, f"the upstream sent {stalled} messages to a client reading none"
    assert got == 4096 * 16384 and stats(upstream_url)["flood_done"]


def test_the_proxy_relays_refusals_and_failures_as_the_handshake_response(site: Gateway) -> None:
    with pytest.raises(InvalidStatus) as refused:
        run(_open_and_close(site, "/upstream/deny"))
    assert refused.value.response.status_code == 401 and refused.value.response.body == b"members only\n"
    with pytest.raises(InvalidStatus) as failed:
        run(_open_and_close(site, "/gone/echo"))
    assert failed.value.response.status_code == 502
    assert "cannot connect" in site.wait_for_log("proxy WebSocket /gone/echo")


# Timers and stopping --------------------------------------------------------------------


def test_idle_timeout_handshake_timeout_and_server_stop() -> None:
    config = "[server]\nws_idle_timeout = 1\nws_ping_interval = 0\n[limits]\nrequest_timeout = 1\n"
    config += '[[vhost]]\nnames = ["a"]\n'
    config += f'  [[vhost.route]]\n  path = "/"\n  handler = "asgi"\n  app = "{APP}"\n'
    with run_gateway(config_text=config) as gateway:

        async def idle() -> ConnectionClosed:
            async with connect(ws_url(gateway, "/watch")) as ws:
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                return closed.value

        started = time.monotonic()
        closed = run(idle())
        assert closed.rcvd is not None and closed.rcvd.code == 1001 and time.monotonic() - started < 4

        async def stopped() -> ConnectionClosed:
            async with connect(ws_url(gateway, "/echo")) as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
                gateway.proc.send_signal(15)
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                return closed.value

        with pytest.raises(InvalidStatus) as late:  # an app that never answers the handshake
            run(_open_and_close(gateway, "/hang"))
        assert late.value.response.status_code == 504

        closed = run(stopped())
        assert closed.rcvd is not None and closed.rcvd.code == 1012
        gateway.proc.wait(timeout=10)
    assert gateway.proc.returncode == 0


@pytest.mark.parametrize("workers", [1, 2])  # 2: from a worker through the pool host to the app process
def test_an_isolated_asgi_app_gets_websockets_through_its_pool(workers: int) -> None:
    config = f"""
[server]
workers = {workers}
[[vhost]]
names = ["iso.test"]
  [[vhost.route]]
  path = "/chat/"
  handler = "asgi"
  app = "{APP}"
  isolation = "process"
  pool = {{ min = 1, max = 1 }}
  [[vhost.route]]
  path = "/old/"
  handler = "wsgi"
  app = "tests.e2e.wsgi_apps.apps:env"
  isolation = "process"
  pool = {{ min = 1, max = 1 }}
"""
    with run_gateway(config_text=config) as gateway:

        async def chat() -> tuple[Any, ConnectionClosed]:
            async with connect(ws_url(gateway, "/chat/echo"), subprotocols=["v1"], open_timeout=20) as ws:
                assert ws.subprotocol == "v1" and ws.response.headers["x-echo"] == "yes"
                await ws.send("whoami")
                seen = json.loads(await ws.recv())
                await ws.send("close")
                with pytest.raises(ConnectionClosed) as closed:
                    await ws.recv()
                return seen, closed.value

        seen, closed = run(chat())
        assert seen == {"user": None, "client": "127.0.0.1"}, "the app process sees the client, not the front"
        assert closed.rcvd is not None and (closed.rcvd.code, closed.rcvd.reason) == (4000, "bye")
        with pytest.raises(InvalidStatus) as refused:
            run(_open_and_close(gateway, "/old/"))
        assert refused.value.response.status_code == 400 and "'wsgi' handler" in refused.value.response.body.decode()
