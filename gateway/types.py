"""The shared ASGI vocabulary every module of gateway speaks."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from gateway.config.schema import Limits

if TYPE_CHECKING:
    from gateway.http.cycle import RequestCycle

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
# Scope key the rewrite stage sets on its first rewrite: the client's (raw_path, query_string).
# client_target() reads it: the access log, REQUEST_URI (CGI, FastCGI) and Digest auth see the client's target.
ORIGINAL_TARGET = "gateway.original_target"
# Scope key of an HTTP request's connection (the HttpProtocol): the limits stage's apply_limits(), the
# WSGI worker's "has the client gone" check; an error document's internal GET has none.
CONNECTION_KEY = "gateway.connection"
# Scope key the router sets when the request's vhost has an error document for 504: past request_timeout
# the core then cancels the app's task with TIMEOUT_CANCEL as the message and gives it TIMEOUT_GRACE
# seconds to send that document (stages/errors.py) before it writes its own plain 504.
TIMEOUT_PAGE_KEY = "gateway.timeout_page"
# Scope key the rewrite stage counts a route's rewrites in (the request is routed again each time).
PASSES_KEY = "gateway.rewrites"
TIMEOUT_CANCEL = "gateway: request_timeout"
# The message of the core's own cancel past request_timeout (its 504 is written, or the connection cut).
TIMEOUT_CUT = "gateway: request_timeout passed"
TIMEOUT_GRACE = 2.0


def client_target(scope: Scope) -> str:
    """The request target as the client sent it (origin form, query included), before any rewrite.

    The access log's request (Apache's %r), REQUEST_URI (nginx's $request_uri) and the target a Digest
    client signed; its bytes as latin-1.
    """
    original = scope.get(ORIGINAL_TARGET)
    raw: bytes | None = original[0] if original else scope.get("raw_path")
    path = raw.decode("latin-1") if raw is not None else str(scope["path"]).encode("utf-8").decode("latin-1")
    query: bytes = original[1] if original else scope["query_string"]
    return f"{path}?{query.decode('latin-1')}" if query else path


# The core's one extension to ASGI, for speed (gateway/http/whole.py): an app
# may carry a `gateway_respond_now(scope)` attribute, a plain function the core
# calls for a request without a body before it starts a task. It returns a
# Whole (status, header lines as bytes each ending in CRLF and holding
# Content-Length, body), which the core writes at once, or None to be called
# the usual ASGI way with the scope untouched. The static handler answers its
# cached small files this way; the router passes it on for routes no stage
# wraps (a stage must see every response, so it hides the attribute; the
# ranges stage, on by default, passes it on for a GET without Range, which it
# lets through untouched).
#
# An app whose answer comes from another callback (a FastCGI server's reply)
# may return a Later instead: the core makes the request's cycle, hands it to
# begin(), and the app finishes it with cycle.respond(status, headers, body)
# (or respond_lines() with the header lines built) or carries on as an ASGI
# app in a task with cycle.hand_over(app). cancel() is what a request_timeout
# or a shutdown calls, as they cancel a task.
Whole = tuple[int, bytes, bytes]


class Later(Protocol):
    """A request an app has taken to answer from a callback, without a task (see above)."""

    def begin(self, cycle: RequestCycle) -> None: ...

    def cancel(self) -> None: ...


RespondNow = Callable[[Scope], "Whole | Later | None"]


class HandlerContext:
    """What a handler knows of where it sits: for paths in its options and for its messages."""

    __slots__ = ("config_dir", "dispatch", "limits", "mount", "runtime_dir", "where")

    def __init__(self, config_dir: Path, where: str, mount: str, runtime_dir: Path | None = None) -> None:
        self.config_dir = config_dir  # relative paths in options resolve against this
        self.where = where  # "vhost[0] (example.com) route[1] '/api/'": for error messages
        self.mount = mount  # the route's prefix ("/api") for root_path/SCRIPT_NAME, "" when none
        self.runtime_dir = runtime_dir or config_dir / ".gateway"  # sockets of pools the handler runs
        # The whole server's app (the router), set once it is built: a CGI local redirect
        # (RFC 3875 §6.2.2) serves another path as if the client had asked for it.
        self.dispatch: ASGIApp | None = None
        self.limits = Limits()  # the server's [limits]: what a route's own limits replace

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        return (self.config_dir / path).resolve() if not Path(path).is_absolute() else Path(path)

    def folder_problem(self, path: str) -> str | None:
        """Why a handler's `root` cannot serve (missing, not a folder, not readable by us), or None."""
        root = self.resolve(path)
        if not root.exists():
            return f"{str(root)!r} does not exist"
        if not root.is_dir():
            return f"{str(root)!r} is not a directory"
        if not os.access(root, os.R_OK | os.X_OK):
            return f"{str(root)!r} cannot be read by this server (check its permissions)"
        return None


class Handler(Protocol):
    """A backend kind (`handler = "..."` in a route), one module in adapters/.

    Options is a frozen dataclass whose fields are the handler's config keys
    (their metadata "doc" is the README's reference). The constructor is cheap
    (no I/O). problems() reports what `gateway check` and startup refuse
    (missing roots, failed imports) as (option key, message) pairs; startup()/aclose() run pools, processes
    and the app's lifespan.
    """

    Options: ClassVar[type[Any]]

    def __init__(self, options: Any, context: HandlerContext) -> None: ...
    def problems(self) -> list[tuple[str, str]]: ...
    def app(self) -> ASGIApp: ...
    async def startup(self) -> None: ...
    async def aclose(self) -> None: ...
