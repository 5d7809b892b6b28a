"""The upstream the proxy tests forward to: an ASGI app served by a second gateway (UPSTREAM_NAME names it).

Paths:
  /health            200, or 503 after /health/fail (back to 200 after /health/ok)
  /download?size=N&chunk=C&length=1   N bytes (a repeating pattern) in pieces of C; with length=1 a Content-Length
  /stream?n=N&delay=D                 N pieces of 1000 bytes, D seconds apart
  /slow?s=S                           answers after S seconds
  /cut                                promises 1 MB, sends 1000 bytes, then fails (the connection is cut)
  /cookies                            three Set-Cookie headers
  anything else                       JSON: the request as seen here, with the body's length and sha256
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from typing import Any

NAME = os.environ.get("UPSTREAM_NAME", "upstream").encode()
PATTERN = bytes(range(256)) * 4096  # 1 MiB
HEALTH = {"ok": True}
Scope = dict[str, Any]


def pattern(size: int) -> bytes:
    """The first size bytes of the download (tests compute the same to compare digests)."""
    whole, rest = divmod(size, len(PATTERN))
    return PATTERN * whole + PATTERN[:rest]


def _params(scope: Scope) -> dict[str, str]:
    query = scope["query_string"].decode()
    return dict(part.split("=", 1) for part in query.split("&") if "=" in part)


async def _answer(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    start_headers = [(b"content-type", b"application/json"), (b"x-upstream", NAME), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.startswith("/health"):
        await health(path, send)
    elif path == "/download":
        await download(_params(scope), send)
    elif path == "/stream":
        await stream(_params(scope), send)
    elif path == "/slow":
        await asyncio.sleep(float(_params(scope).get("s", "1")))
        await _answer(send, 200, b'"slept"')
    elif path == "/cut":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000000")]})
        await send({"type": "http.response.body", "body": b"x" * 1000, "more_body": True})
        raise RuntimeError("the upstream fails in the middle of its response (on purpose)")
    elif path.endswith("/redirect"):  # an absolute redirect built from the Host it was sent, as frameworks do
        host = next((v for n, v in scope["headers"] if n == b"host"), b"")
        await _answer(send, 302, b"", [(b"location", b"http://" + host + b"/target?x=1")])
    elif path == "/cookies":
        cookies = [(b"set-cookie", b"a=1; Path=/"), (b"set-cookie", b"b=2; Path=/"), (b"set-cookie", b"c=3")]
        await _answer(send, 200, b"{}", cookies)
    else:
        await echo(scope, receive, send)


async def health(path: str, send: Any) -> None:
    if path == "/health/fail":
        HEALTH["ok"] = False
    elif path == "/health/ok":
        HEALTH["ok"] = True
    await _answer(send, 200 if HEALTH["ok"] else 503, b"{}")


async def echo(scope: Scope, receive: Any, send: Any) -> None:
    digest = hashlib.sha256()
    length = 0
    first = b""
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        digest.update(chunk)
        length += len(chunk)
        if len(first) < 1000:
            first += chunk[:1000]
        more = message.get("more_body", False)
    described = {
        "upstream": NAME.decode(),
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]],
        "client": scope["client"],
        "body_start": first[:1000].decode("latin-1"),
        "body_length": length,
        "body_sha256": digest.hexdigest(),
    }
    await _answer(send, 200, json.dumps(described).encode())


async def download(params: dict[str, str], send: Any) -> None:
    size, chunk = int(params.get("size", "1000")), int(params.get("chunk", "65536"))
    headers = [(b"content-type", b"application/octet-stream"), (b"x-upstream", NAME)]
    if params.get("length"):
        headers.append((b"content-length", str(size).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    sent = 0
    block = PATTERN * (2 + chunk // len(PATTERN))
    while sent < size:
        piece = min(chunk, size - sent)
        offset = sent % len(PATTERN)
        await send({"type": "http.response.body", "body": block[offset : offset + piece], "more_body": True})
        sent += piece
    await send({"type": "http.response.body", "body": b""})


async def stream(params: dict[str, str], send: Any) -> None:
    count, delay = int(params.get("n", "3")), float(params.get("delay", "0.5"))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    for index in range(count):
        if index:
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": bytes([65 + index % 26]) * 1000, "more_body": True})
    await send({"type": "http.response.body", "body": b""})
