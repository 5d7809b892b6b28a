"""ASGI apps for tests/e2e/test_protocol.py, all behind one dispatcher (`app`).

One server process serves every protocol test, so `app` routes on the first
path segment. Apps that must be observed from the test while the client is
away (disconnects, backpressure) write what they saw to a file named by the
``log`` query parameter: the test reads it from its own process.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any
from urllib.parse import parse_qs

from tests.support import apps

Scope = dict[str, Any]
LIFESPAN_STATE_KEY = "protocol_apps_ready"


def _params(scope: Scope) -> dict[str, str]:
    query = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    return {name: values[-1] for name, values in query.items()}


def _log(path: str, line: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(line + "\n")


async def _respond(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers or []})
    await send({"type": "http.response.body", "body": body})


async def _read_all(receive: Any) -> tuple[bytes, int]:
    """The whole body and how many http.request messages carried it."""
    parts = []
    messages = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected while sending the body")
        messages += 1
        parts.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(parts), messages


async def fixed(scope: Scope, receive: Any, send: Any) -> None:
    """11 bytes in one body message, whatever the method (HEAD included)."""
    await _respond(send, 200, b"hello world", [(b"content-type", b"text/plain")])


async def blob(scope: Scope, receive: Any, send: Any) -> None:
    """?size= bytes (default 1 MiB) in one body message; each call appends a line to ?log=."""
    params = _params(scope)
    _log(params.get("log", ""), "served")
    await _respond(send, 200, b"b" * int(params.get("size", str(1024 * 1024))), [(b"content-type", b"text/plain")])


async def parts(scope: Scope, receive: Any, send: Any) -> None:
    """?n= body messages "part0", "part1", ... with no Content-Length."""
    count = int(_params(scope).get("n", "3"))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for index in range(count):
        await send({"type": "http.response.body", "body": b"part%d" % index, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def sized(scope: Scope, receive: Any, send: Any) -> None:
    """Declares content-length: 10 itself and sends it in two messages."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]})
    await send({"type": "http.response.body", "body": b"01234", "more_body": True})
    await send({"type": "http.response.body", "body": b"56789"})


async def declared(scope: Scope, receive: Any, send: Any) -> None:
    """Declares content-length: ?length= and sends ?body= in one message: a length the body may belie.

    ?status= answers with that status instead of 200.
    """
    params = _params(scope)
    headers = [(b"content-length", params["length"].encode())]
    status = int(params.get("status", "200"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": params["body"].encode()})


async def status(scope: Scope, receive: Any, send: Any) -> None:
    """/status/<code>: that status, with a body the server must not send for 204/304."""
    code = int(scope["path"].rsplit("/", 1)[1])
    await _respond(send, code, b"must not be sent", [(b"etag", b'"v1"')])


BAD_FIELDS = {
    "space": (b"content-length ", b"100"),  # a lenient proxy would read another length
    "colon": (b"x-a: b", b"c"),
    "empty": (b"", b"c"),
    "nul": (b"x-a", b"a\x00b"),
    "length": (b"content-length", b"abc"),
}


async def bad_field(scope: Scope, receive: Any, send: Any) -> None:
    """/bad-field?kind=: a header field no server may send (BAD_FIELDS)."""
    await _respond(send, 200, b"must not be sent", [BAD_FIELDS[_params(scope)["kind"]]])


async def close(scope: Scope, receive: Any, send: Any) -> None:
    """Asks for the connection to close with its own Connection header."""
    await _respond(send, 200, b"bye", [(b"connection", b"close"), (b"content-type", b"text/plain")])


async def digest(scope: Scope, receive: Any, send: Any) -> None:
    """Length and SHA-256 of the request body, and how many messages carried it."""
    hasher = hashlib.sha256()
    length = messages = largest = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        hasher.update(chunk)
        length += len(chunk)
        largest = max(largest, len(chunk))
        messages += 1
        more = message.get("more_body", False)
    body = json.dumps({"length": length, "sha256": hasher.hexdigest(), "messages": messages, "largest": largest})
    await _respond(send, 200, body.encode(), [(b"content-type", b"application/json")])


async def slowread(scope: Scope, receive: Any, send: Any) -> None:
    """Reads the body slowly: ?delay= seconds before each receive(); logs bytes so far."""
    params = _params(scope)
    delay, log = float(params.get("delay", "0.05")), params.get("log", "")
    hasher = hashlib.sha256()
    length = 0
    more = True
    while more:
        await asyncio.sleep(delay)
        message = await receive()
        if message["type"] == "http.disconnect":
            _log(log, "disconnect")
            return
        chunk = message.get("body", b"")
        hasher.update(chunk)
        length += len(chunk)
        _log(log, str(length))
        more = message.get("more_body", False)
    body = json.dumps({"length": length, "sha256": hasher.hexdigest()}).encode()
    await _respond(send, 200, body, [(b"content-type", b"application/json")])


async def noread(scope: Scope, receive: Any, send: Any) -> None:
    """Answers at once without ever calling receive()."""
    await _respond(send, 200, b"not reading your body", [(b"content-type", b"text/plain")])


async def read_once(scope: Scope, receive: Any, send: Any) -> None:
    """Takes one http.request message of the body, then answers without reading the rest."""
    message = await receive()
    await _respond(send, 200, b"read %d" % len(message.get("body", b"")))


async def late_read(scope: Scope, receive: Any, send: Any) -> None:
    """Waits ?delay= seconds, logs "receive", then reads the body and answers its length."""
    params = _params(scope)
    await asyncio.sleep(float(params.get("delay", "0.5")))
    _log(params.get("log", ""), "receive")
    body, _ = await _read_all(receive)
    await _respond(send, 200, b"got %d" % len(body))


async def wait_disconnect(scope: Scope, receive: Any, send: Any) -> None:
    """Reads the body, logs "waiting", then waits on receive() and logs what it returned.

    The wait is bounded by ?max= seconds (logs "timeout" and answers 200), so a server
    that never reports the disconnect fails the test instead of hanging its shutdown.
    """
    params = _params(scope)
    log, limit = params.get("log", ""), float(params.get("max", "2"))
    try:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                _log(log, "disconnect-during-body")
                return
            more = message.get("more_body", False)
        _log(log, "waiting")
        try:
            message = await asyncio.wait_for(receive(), limit)
        except TimeoutError:
            _log(log, "timeout")
            await _respond(send, 200, b"nobody told me")
            return
        _log(log, message["type"])
    except asyncio.CancelledError:
        _log(log, "cancelled")
        raise


async def sleep_send(scope: Scope, receive: Any, send: Any) -> None:
    """Sleeps ?s= seconds, then logs each receive() result up to http.disconnect (or "timeout"
    after ?max= seconds), then tries to answer and logs "sent" or the exception's type."""
    params = _params(scope)
    log, limit = params.get("log", ""), float(params.get("max", "2"))
    await asyncio.sleep(float(params.get("s", "0.5")))
    for _ in range(3):
        try:
            message = await asyncio.wait_for(receive(), limit)
        except TimeoutError:
            _log(log, "timeout")
            break
        _log(log, message["type"])
        if message["type"] == "http.disconnect":
            break
    try:
        await _respond(send, 200, b"late")
    except OSError as exc:
        _log(log, f"send raised {type(exc).__name__} (OSError)")
    else:
        _log(log, "sent")


class _Counter:
    """A fixed-width count rewritten in place in a file (or nowhere, without a path)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if path else -1

    def set(self, text: str) -> None:
        if self.fd >= 0:
            os.pwrite(self.fd, text.encode("ascii"), 0)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)


async def senders(scope: Scope, receive: Any, send: Any) -> None:
    """?k= tasks each send ?n= pieces of 64 KiB at once (as a broadcast does); the body ends when all are done."""
    params = _params(scope)
    tasks, count = int(params.get("k", "3")), int(params.get("n", "50"))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})

    async def sender(letter: bytes) -> None:
        for _ in range(count):
            await send({"type": "http.response.body", "body": letter * 65536, "more_body": True})

    await asyncio.gather(*(sender(bytes([ord("a") + index])) for index in range(tasks)))
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def produce(scope: Scope, receive: Any, send: Any) -> None:
    """?n= chunks of ?size= bytes; after each send() returns, the count is written to ?log= (fixed width)."""
    params = _params(scope)
    count, size = int(params.get("n", "10")), int(params.get("size", "65536"))
    chunk = b"x" * size
    counter = _Counter(params.get("log", ""))
    try:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for index in range(count):
            try:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except OSError:
                counter.set(f"{index:010d} disconnected")
                return
            counter.set(f"{index + 1:010d}")
        await send({"type": "http.response.body", "body": b""})
        counter.set(f"{count:010d} done")
    finally:
        counter.close()


async def raises(scope: Scope, receive: Any, send: Any) -> None:
    """/raises/before and /raises/after: tests.support.apps.raises under its own paths."""
    inner = dict(scope)
    inner["path"] = scope["path"].removeprefix("/raises")
    await apps.raises(inner, receive, send)


ROUTES = {
    "echo": apps.echo,
    "stream": apps.stream,
    "sendfile": apps.sendfile,
    "slow": apps.slow,
    "raises": raises,
    "fixed": fixed,
    "blob": blob,
    "parts": parts,
    "sized": sized,
    "declared": declared,
    "status": status,
    "close": close,
    "bad-field": bad_field,
    "digest": digest,
    "slowread": slowread,
    "noread": noread,
    "read-once": read_once,
    "late-read": late_read,
    "wait-disconnect": wait_disconnect,
    "sleep-send": sleep_send,
    "produce": produce,
    "senders": senders,
}


async def app(scope: Scope, receive: Any, send: Any) -> None:
    """Routes /<name>/... to ROUTES[name]; also speaks lifespan (puts a key in the state)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"][LIFESPAN_STATE_KEY] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    name = scope["path"].split("/", 2)[1]
    handler = ROUTES.get(name)
    if handler is None:
        await _respond(send, 404, b"no such test app: " + name.encode())
        return
    await handler(scope, receive, send)
