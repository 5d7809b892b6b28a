"""The request head sent upstream and the response headers sent back (sans-IO).

Hop-by-hop fields are removed both ways (RFC 9110 §7.6.1): Connection and
every field it names, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding
and Upgrade; Trailer too, since trailers are not relayed (ASGI carries
none) and announcing them would be false.

The request also loses:
- Host: the upstream's own host:port, or the client's with preserve_host;
- Expect: the core answers 100-continue itself and the body follows at once;
- Content-Length: written again from the request's framing (chunked when
  the client's body has no length);
- Proxy-Authorization: credentials meant for a proxy the client chose. To
  its clients the gateway is the origin server, so nothing past it may
  consume them and an upstream app must not see them. Proxy: "httpoxy",
  it would become HTTP_PROXY in a CGI or PHP upstream;
- X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Prefix: replaced by ours;
- any field whose name holds "_" (nginx's underscores_in_headers off): an
  upstream mapping names to CGI-style variables reads X_Forwarded_For as
  X-Forwarded-For, a client's spoof beside ours.

and gains X-Forwarded-For (the incoming list with the client's address
appended: the address after trusted_proxies, as nginx's
$proxy_add_x_forwarded_for), X-Forwarded-Proto, X-Forwarded-Host, an element
appended to Forwarded (RFC 7239: for, host, proto), X-Forwarded-Prefix when
strip_prefix removed a prefix, and Via (RFC 9110 §7.6.3 asks a gateway for it).

The response also loses Date and Server: the core writes its own, as nginx
does by default.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from gateway.http.parser import ENCODED_PATH_SAFE, PCHAR
from gateway.types import Headers, Scope

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade"}
)
_UNDERSCORE = b"_"  # in a name: not sent on (see the module's rules)
_REQUEST_DROPPED = HOP_BY_HOP | {
    b"host",
    b"expect",
    b"content-length",
    b"proxy-authorization",
    b"proxy",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    b"x-forwarded-prefix",
    b"forwarded",
    b"via",
}
_RESPONSE_DROPPED = HOP_BY_HOP | {b"date", b"server"}
# Bytes a request target may not hold (RFC 9112 §3.2): a space or line break would end the request line.
_NOT_IN_TARGET = re.compile(rb"[\x00-\x20\x7f-\xff]")
_URL_GOES_ON = (b"", b"/", b"?", b"#")  # what may follow an authority in a URL
# A WebSocket handshake's fields that belong to one hop: the proxy writes its own upstream.
_WEBSOCKET_OWN = frozenset(
    {b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions", b"sec-websocket-accept"}
)
_TCHAR = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})  # RFC 9110 §9.2.2


class RequestFraming:
    """How the request body travels upstream: a length, chunked, or no body."""

    __slots__ = ("chunked", "length")

    def __init__(self, length: int | None, chunked: bool) -> None:
        self.length = length
        self.chunked = chunked

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.length)


class RequestHeads:
    """Builds the head of each request sent upstream for one proxy route."""

    def __init__(self, preserve_host: bool, strip: str = "") -> None:
        self.preserve_host = preserve_host
        self.strip = strip.encode("latin-1")  # the route's prefix to remove ("/api"), or b""
        self.strip_depth = strip.count("/")

    def build(self, scope: Scope, upstream_host: bytes, keep_alive: bool) -> tuple[bytes, RequestFraming]:
        """The request line and headers, ending in the blank line; and the body's framing."""
        headers: Headers = scope["headers"]
        named = connection_named(headers)
        host = b""
        length: int | None = None
        chunked = False
        appended: dict[bytes, list[bytes]] = {b"x-forwarded-for": [], b"forwarded": [], b"via": []}
        parts = [scope["method"].encode("ascii"), b" ", self.target(scope), b" HTTP/1.1\r\n"]
        for name, value in headers:
            if name not in _REQUEST_DROPPED and name not in named and _UNDERSCORE not in name:
                parts += (name, b": ", value, b"\r\n")
            elif name == b"host":
                host = value
            elif name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = True
            elif name in appended:
                appended[name].append(value)
        parts += self._added(scope, host if self.preserve_host and host else upstream_host, appended, host)
        return finish_head(parts, length, chunked, keep_alive)

    def build_websocket(self, scope: Scope, upstream_host: bytes, key: bytes) -> bytes:
        """The handshake for the upstream from a websocket scope: the client's fields and subprotocols,
        the forwarding fields, our own key and version, no extension offered (compression is per hop)."""
        headers: Headers = scope["headers"]
        named = connection_named(headers)
        host = b""
        appended: dict[bytes, list[bytes]] = {b"x-forwarded-for": [], b"forwarded": [], b"via": []}
        parts = [b"GET ", self.target(scope), b" HTTP/1.1\r\n"]
        for name, value in headers:
            if (
                name not in _REQUEST_DROPPED
                and name not in named
                and name not in _WEBSOCKET_OWN
                and _UNDERSCORE not in name
            ):
                parts += (name, b": ", value, b"\r\n")
            elif name == b"host":
                host = value
            elif name in appended:
                appended[name].append(value)
        as_http = {**scope, "scheme": "https" if scope.get("scheme") == "wss" else "http"}  # X-Forwarded-Proto
        parts += self._added(as_http, host if self.preserve_host and host else upstream_host, appended, host)
        parts += (b"connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\n", b"sec-websocket-key: ")
        parts += (key, b"\r\n\r\n")
        return b"".join(parts)

    def _added(self, scope: Scope, sent_host: bytes, appended: dict[bytes, list[bytes]], host: bytes) -> list[bytes]:
        """Host and the forwarding fields; host is the client's Host ("" when it sent none)."""
        client = scope.get("client")
        address = client[0] if client else "unknown"
        proto = scope.get("scheme", "http").encode("ascii")
        added = [b"host: ", sent_host, b"\r\n"]
        forwarded_for = [*appended[b"x-forwarded-for"], address.encode("latin-1")]
        added += (b"x-forwarded-for: ", b", ".join(forwarded_for), b"\r\n")
        added += (b"x-forwarded-proto: ", proto, b"\r\n")
        if host:
            added += (b"x-forwarded-host: ", host, b"\r\n")
        if self.strip:
            added += (b"x-forwarded-prefix: ", self.strip, b"\r\n")
        element = b"for=%s;proto=%s" % (_node(address), proto)
        if host:
            element += b";host=" + _quoted(host)
        added += (b"forwarded: ", b", ".join([*appended[b"forwarded"], element]), b"\r\n")
        via = b"%s gateway" % scope.get("http_version", "1.1").encode("ascii")
        added += (b"via: ", b", ".join([*appended[b"via"], via]), b"\r\n")
        return added

    def target(self, scope: Scope) -> bytes:
        """The request target: the raw path (below the prefix with strip_prefix) and the query."""
        raw: bytes = scope.get("raw_path") or quote(scope["path"]).encode("ascii")
        if self.strip and (b"//" in raw or b"/." in raw or b"%2e" in raw.lower()):
            # Not the segments the route matched ("//api/x", "/x/../api/x" route as /api/x): strip from that path.
            raw = quote(scope["path"], safe=PCHAR).encode("ascii")
        if self.strip and raw.startswith(b"/"):
            rest = raw.split(b"/", self.strip_depth + 1)
            raw = b"/" + rest[self.strip_depth + 1] if len(rest) > self.strip_depth + 1 else b"/"
        query: bytes = scope.get("query_string", b"")
        target = raw + b"?" + query if query else raw
        if _NOT_IN_TARGET.search(target) is not None:  # an app's or a CGI redirect's unencoded path or query
            target = quote(target, safe=ENCODED_PATH_SAFE + "?").encode("ascii")
        return target


def finish_head(
    parts: list[bytes], length: int | None, chunked: bool, keep_alive: bool
) -> tuple[bytes, RequestFraming]:
    """The head's framing fields and blank line added to its parts, joined; and the body's framing."""
    if chunked:
        parts.append(b"transfer-encoding: chunked\r\n")
    elif length is not None:
        parts.append(b"content-length: %d\r\n" % length)
    parts.append(b"\r\n" if keep_alive else b"connection: close\r\n\r\n")
    return b"".join(parts), RequestFraming(None if chunked else length, chunked)


def connection_named(headers: Headers) -> frozenset[bytes]:
    """The field names a Connection header lists (hop-by-hop for this message only)."""
    names: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            names.update(token.strip().lower() for token in value.split(b","))
    names.discard(b"")
    return frozenset(names)


def relocator(upstream_host: bytes, scope: Scope, prefix: bytes) -> Callable[[Headers], Headers] | None:
    """A Location rewrite for the upstream's redirects to itself, as nginx's `proxy_redirect default` does.

    The upstream was sent its own Host, so an absolute redirect it builds from
    it ("http://127.0.0.1:8001/login") names an address the client cannot
    reach: it becomes the client's scheme and Host, plus the route's prefix
    when strip_prefix took it off. None when the client sent no Host.
    """
    host = next((value for name, value in scope["headers"] if name == b"host"), b"")
    if not host:
        return None
    ours = b"http://" + upstream_host
    public = b"%s://%s%s" % (scope.get("scheme", "http").encode("ascii"), host, prefix)
    cut = len(ours)

    def relocate(fields: Headers) -> Headers:
        return [(name, public + value[cut:] if _names(name, value, ours) else value) for name, value in fields]

    return relocate


def _names(name: bytes, value: bytes, ours: bytes) -> bool:
    """Whether a field is a Location naming the upstream's own base URL."""
    cut = len(ours)
    return name == b"location" and value[:cut].lower() == ours and value[cut : cut + 1] in _URL_GOES_ON


def response_headers(fields: Headers) -> Headers:
    """The upstream's response headers as the client gets them."""
    named = connection_named(fields)
    return [(name, value) for name, value in fields if name not in _RESPONSE_DROPPED and name not in named]


def accept_headers(fields: Headers) -> Headers:
    """The headers of an upstream's 101 the client's own 101 carries (the handshake's fields are the core's)."""
    return [
        (name, value)
        for name, value in response_headers(fields)
        if name not in _WEBSOCKET_OWN and name != b"sec-websocket-protocol"
    ]


def upgrade_requested(headers: Headers) -> bool:
    """True for a request to switch protocols (WebSocket, say); an offer of h2c alone may be ignored (§7.8)."""
    offered: list[bytes] = []
    connection_upgrade = False
    for name, value in headers:
        if name == b"upgrade":
            offered += (token.strip().lower() for token in value.split(b",") if token.strip())
        elif name == b"connection":
            connection_upgrade = connection_upgrade or b"upgrade" in connection_named([(name, value)])
    return connection_upgrade and any(not protocol.startswith(b"h2c") for protocol in offered)


def _node(address: str) -> bytes:
    """A Forwarded `for=` node (RFC 7239 §6): IPv6 in quoted brackets."""
    return b'"[%s]"' % address.encode("ascii") if ":" in address else address.encode("latin-1")


def _quoted(value: bytes) -> bytes:
    """A Forwarded parameter value: a token as is, anything else quoted."""
    if all(byte in _TCHAR for byte in value):
        return value
    return b'"' + value.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'
