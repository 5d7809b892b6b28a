"""The `redirect` handler: answer every request of the route with a redirect.

`to` may use $1, $2 ... (groups of a `~regex` route path), {path} (the path
below the route's prefix) and {query} (the query string, with its "?").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, unquote

from gateway.http.parser import PCHAR
from gateway.types import ASGIApp, HandlerContext, Receive, Scope, Send

_PLACEHOLDER = re.compile(r"\$(\d)|\{(path|query)\}")
SEGMENT_SAFE = PCHAR.replace("/", "")
QUERY_SAFE = PCHAR + "/?%"  # a query's own characters (RFC 3986 §3.4); escapes the client sent stay as they are


@dataclass(frozen=True, slots=True)
class RedirectOptions:
    to: str = field(default="", metadata={"doc": "target URL; $1.. from a regex path, {path}, {query}"})
    status: Literal[301, 302, 307, 308] = field(default=302, metadata={"doc": "301, 302, 307 or 308"})


class RedirectHandler:
    """Redirects; the target is built from the request with precompiled placeholders."""

    Options = RedirectOptions

    def __init__(self, options: RedirectOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context

    def problems(self) -> list[tuple[str, str]]:
        if self.options.to:
            return []
        return [("to", 'missing; the URL to send clients to, as in to = "https://example.com{path}"')]

    def app(self) -> ASGIApp:
        to, status, mount = self.options.to, self.options.status, self.context.mount
        needs_match = _PLACEHOLDER.search(to) is not None

        async def redirect(scope: Scope, receive: Receive, send: Send) -> None:
            target = _expand(to, scope, mount) if needs_match else to
            body = f"Redirecting to {target}\n".encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(b"location", target.encode("utf-8")), (b"content-type", b"text/plain; charset=utf-8")],
                }
            )
            await send({"type": "http.response.body", "body": body})

        return redirect

    async def startup(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def _expand(template: str, scope: Scope, mount: str) -> str:
    """Fill the placeholders; request-derived parts are percent-encoded again (no raw bytes,
    no CR/LF can reach the Location header)."""
    match: re.Match[str] | None = scope.get("gateway.route_match")

    def substitute(found: re.Match[str]) -> str:
        if found.group(1) is not None:
            index = int(found.group(1))
            groups = match.groups() if match is not None else ()
            return quote(str(groups[index - 1] or ""), safe=PCHAR) if 0 < index <= len(groups) else ""
        if found.group(2) == "path":
            return _below(scope["raw_path"], mount)
        query: str = scope["query_string"].decode("latin-1")
        return "?" + quote(query, safe=QUERY_SAFE, encoding="latin-1") if query else ""

    return _PLACEHOLDER.sub(substitute, template)


def _below(raw_path: bytes, mount: str) -> str:
    """The path below the mount, segment by segment as routes see it, encoded again.

    Never the raw path: "/go//evil.example" must not become "//evil.example",
    which a browser reads as another host, nor "/x/../go/b" keep its dots.
    Empty and dot segments go as the routing path's rules drop them; each
    segment is decoded and encoded again on its own, so an encoded slash stays
    one, and as latin-1, so bytes that are not UTF-8 (a legacy "caf%E9") keep.
    """
    parts = raw_path.decode("latin-1").split("/")[1:]
    kept: list[str] = []
    for part in parts:
        segment = unquote(part, encoding="latin-1") if "%" in part else part
        if segment == "..":
            if kept:
                kept.pop()
        elif segment not in ("", "."):
            kept.append(quote(segment, safe=SEGMENT_SAFE, encoding="latin-1"))
    trailing = "/" if parts and unquote(parts[-1]) in ("", ".", "..") else ""
    rest = kept[mount.count("/") :] if mount else kept
    return "/" + "/".join(rest) + trailing if rest else trailing
