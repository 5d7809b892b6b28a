"""Custom error documents per vhost: `errors = { 404 = "/errors/404.html" }`, `intercept_errors = true`.

The router wraps a request's send with ErrorPages.send_for() when its vhost
has error documents. An error response is replaced by the document when:
- the gateway made it: the router's own 404/405, and every refusal of a
  stage or built-in answer marked GATEWAY_MADE in its http.response.start
  (403 access, 413/429/503 limits, a missing static file, 502/504 from a
  FastCGI or CGI backend that failed), or
- `intercept_errors = true`, for any response with that status, whoever
  made it (an app's own 500 page, say);
- an app raised before its response began: the gateway's 500 (run()).
The document is fetched with an internal GET of its path through the same
vhost (usually a static route) and sent with the original status; of the
original response's headers, a gateway-made one keeps all but those that
describe its body (a route's headers stage, Retry-After, WWW-Authenticate),
an app's only those the client needs (WWW-Authenticate, Allow, Retry-After).
If the document itself cannot be served, the original plain answer goes
out, so an error page never hides an error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from gateway.errors import ResponseAborted
from gateway.http.responses import APP_FAILED
from gateway.stages import Report
from gateway.types import (
    CONNECTION_KEY,
    PASSES_KEY,
    TIMEOUT_CANCEL,
    TIMEOUT_PAGE_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)

Headers = list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...]

logger = logging.getLogger("gateway.error")
GATEWAY_MADE = "gateway.made"  # a key of http.response.start: the gateway, not an app, wrote this answer
DOCUMENT_KEY = "gateway.error_document"  # set on the internal request for a document: never intercepted again
# Failures the core answers in its own way (a client gone, a backend that broke mid-response).
NOT_APP_FAILURES = (OSError, ResponseAborted)
# What describes the document's body rather than the error: the document's own, never the original's.
DOCUMENT_FIELDS = frozenset(
    {b"content-type", b"content-length", b"content-encoding", b"etag", b"last-modified", b"accept-ranges", b"vary"}
)
KEPT_HEADERS = frozenset({b"www-authenticate", b"allow", b"retry-after", b"content-range", b"location"})


class ErrorPages:
    """A vhost's error documents."""

    def __init__(self, pages: dict[int, str], intercept: bool) -> None:
        self.pages = pages
        self.intercept = intercept

    def wants(self, message: Message) -> bool:
        status = message.get("status", 200)
        return status in self.pages and (self.intercept or bool(message.get(GATEWAY_MADE)))

    def send_for(self, scope: Scope, send: Send, dispatch: ASGIApp) -> Send:
        """The request's send, replacing error responses by their document."""
        if scope.get(DOCUMENT_KEY):
            return send
        held: list[Message] = []  # the original error response, kept in case the document fails

        async def error_send(message: Message) -> None:
            if held:
                held.append(message)
                if message["type"] == "http.response.pathsend" or (
                    message["type"] == "http.response.body" and not message.get("more_body", False)
                ):
                    await self.serve(scope, held, send, dispatch)
                return
            if message["type"] == "http.response.start" and self.wants(message):
                held.append(message)
                return
            await send(message)

        return error_send

    async def run(self, app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
        """app with send_for()'s send; an app that raises before its response began gets the 500 document.

        The core would answer it with its plain 500 after the stage had gone:
        here it is a gateway-made 500 (logged as the core logs it), so the
        vhost's page for 500 replaces it.
        """
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await app(scope, receive, watched)
        except asyncio.CancelledError as exc:
            if started or exc.args != (TIMEOUT_CANCEL,):
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # the cancel was the core's request to answer: the document's fetch may await
            logger.error("%s %s: no answer within request_timeout", scope.get("method"), scope.get("path"))
            await plain_response(send, 504, "504 Gateway Timeout\nThe application did not answer in time.\n")
        except Exception as exc:
            if started or scope["type"] != "http" or 500 not in self.pages or isinstance(exc, NOT_APP_FAILURES):
                raise
            logger.exception("Exception in app while serving %s %s", scope.get("method"), scope.get("path"))
            await plain_response(send, 500, f"500 Internal Server Error\n{APP_FAILED}\n")

    async def serve(self, scope: Scope, original: list[Message], send: Send, dispatch: ASGIApp) -> None:
        start = original[0]
        status = start["status"]
        document = await fetch(scope, self.pages[status], dispatch)
        if document is None:
            for message in original:
                await send(message)
            return
        headers, body = document
        fields: Headers = start.get("headers", [])
        if start.get(GATEWAY_MADE):  # every field is the gateway's or a stage's (CORS, security headers)
            kept = [(name, value) for name, value in fields if name.lower() not in DOCUMENT_FIELDS]
        else:  # an app's own error response: only what the client needs of it
            kept = [(name, value) for name, value in fields if name.lower() in KEPT_HEADERS]
        await send({"type": "http.response.start", "status": status, "headers": headers + kept, GATEWAY_MADE: True})
        await send({"type": "http.response.body", "body": body})


async def fetch(scope: Scope, path: str, dispatch: ASGIApp) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
    """The document at path as (content headers, body), fetched through the router; None if it is not a 200."""
    inner = dict(scope)
    inner.update(
        {
            "type": "http",  # a refused WebSocket handshake's document is fetched as a page
            "method": "GET",
            "path": path,
            "raw_path": path.encode("utf-8"),
            "query_string": b"",
            "root_path": "",
            DOCUMENT_KEY: True,
            "headers": [(n, v) for n, v in scope["headers"] if n in (b"host", b"user-agent", b"accept-language")],
        }
    )
    inner.pop("gateway.route_match", None)
    inner.pop(CONNECTION_KEY, None)  # a bodyless GET of our own: the request's body limits and deadline are not its
    inner.pop(PASSES_KEY, None)  # routed afresh: the vhost's rewrites apply to it
    inner.pop(TIMEOUT_PAGE_KEY, None)
    got: dict[str, Any] = {"status": 0, "headers": [], "body": []}

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def collect(message: Message) -> None:
        if message["type"] == "http.response.start":
            got["status"] = message["status"]
            got["headers"] = [(n, v) for n, v in message.get("headers", []) if n.lower() == b"content-type"]
        elif message["type"] == "http.response.body":
            got["body"].append(message.get("body", b""))
        elif message["type"] == "http.response.pathsend":
            got["body"].append(_read(message["path"]))

    try:
        await dispatch(inner, receive, collect)
    except Exception:
        logger.exception("error document %s could not be served", path)
        return None
    if got["status"] != 200:
        logger.error("error document %s answered %s; sent the plain error instead", path, got["status"])
        return None
    return got["headers"], b"".join(got["body"])


def _read(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read(1024 * 1024)  # an error page, not a download


def parse_error_pages(table: Any, intercept: Any, report: Report) -> ErrorPages | None:
    """The vhost's `errors` and `intercept_errors` keys; problems reported by key."""
    if table is None:
        if intercept is not None:
            report("intercept_errors", "has no effect without an errors table")
        return None
    if not isinstance(table, dict):
        report("errors", 'expected a table of status = path, as in { 404 = "/errors/404.html" }')
        return None
    pages: dict[int, str] = {}
    for key, path in table.items():
        if not (isinstance(key, str) and key.isdigit() and 400 <= int(key) <= 599):
            report(f"errors.{key}", "expected an error status from 400 to 599 as the key")
        elif not isinstance(path, str) or not path.startswith("/"):
            report(f"errors.{key}", f"expected a path on this site starting with '/', got {path!r}")
        else:
            pages[int(key)] = path
    if intercept is not None and not isinstance(intercept, bool):
        report("intercept_errors", f"expected true or false, got {intercept!r}")
        intercept = False
    return ErrorPages(pages, bool(intercept)) if pages else None


async def plain_response(send: Send, status: int, text: str | bytes, headers: Headers = ()) -> None:
    """A small text/plain answer the gateway itself makes (a refusal), marked so error documents apply."""
    body = text.encode() if isinstance(text, str) else text
    start = [(b"content-type", b"text/plain; charset=utf-8"), *headers]
    await send({"type": "http.response.start", "status": status, "headers": start, GATEWAY_MADE: True})
    await send({"type": "http.response.body", "body": body})
