"""A CGI local redirect (RFC 3875 §6.2.2): the request again, for the path the script named.

The new request is what the client would have sent for that path: it goes
through the router again (vhost, route, access and auth stages), as a GET
without a body, the way Apache's mod_cgi does it (the original body was the
script's to read). The path is decoded and dot-segments removed as the core
does for a request line. A scope key counts the hops: past MAX_REDIRECTS a
chain (or a loop) of redirects is a RedirectError, which the caller answers
with 502 and a log line.
"""

from __future__ import annotations

from gateway.errors import HttpError
from gateway.http.parser import routing_path
from gateway.types import PASSES_KEY, Message, Receive, Scope

MAX_REDIRECTS = 5
HOPS = "gateway.cgi_redirects"
_BODY_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"content-type", b"expect"})
_NO_BODY: Message = {"type": "http.request", "body": b"", "more_body": False}


class RedirectError(Exception):
    """The redirect cannot be followed; the message says why, for the error log."""


def redirect_scope(scope: Scope, location: bytes) -> Scope:
    """The scope of a GET for location ("/path?query"), counted as one more hop."""
    hops = scope.get(HOPS, 0) + 1
    if hops > MAX_REDIRECTS:
        raise RedirectError(f"more than {MAX_REDIRECTS} local redirects in a row (a loop?)")
    raw_path, _, query = location.partition(b"#")[0].partition(b"?")
    try:
        path = routing_path(raw_path)
    except HttpError as exc:
        raise RedirectError(exc.detail) from None
    target = dict(scope)
    target.pop("gateway.route_match", None)
    target.pop("state", None)
    target.pop(PASSES_KEY, None)  # a new request: the vhost's rewrites apply to it again (Apache runs them again)
    target.update(
        method="GET",
        path=path,
        raw_path=raw_path,
        query_string=query,
        headers=[(name, value) for name, value in scope["headers"] if name not in _BODY_HEADERS],
    )
    target[HOPS] = hops
    return target


def redirect_receive(receive: Receive) -> Receive:
    """receive() for the redirected request: an empty body, then only the client's disconnect."""
    pending = True

    async def receive_redirected() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return dict(_NO_BODY)
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return message

    return receive_redirected
