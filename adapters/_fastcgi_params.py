"""A request's FastCGI params, built straight as encoded bytes: the PHP hot path.

The variables and their rules are _meta_variables.py's (cgi_variables); here
they are produced without an intermediate dict of strings: what is the same
for every request of a route (GATEWAY_INTERFACE, SERVER_SOFTWARE,
DOCUMENT_ROOT, REDIRECT_STATUS, the route's `params`) is encoded once, what
is the same for a script (SCRIPT_NAME, SCRIPT_FILENAME, PATH_INFO) once per
resolution, and header names map to HTTP_* through a cache. A test compares
the result with cgi_variables() for the same scopes.

PATH_TRANSLATED is never sent: php-cgi with cgi.fix_pathinfo=0 would run
that file instead of SCRIPT_FILENAME (as nginx's fastcgi_params, we leave it out).
"""

from __future__ import annotations

from typing import Any

from adapters._fastcgi_records import encode_pair, params_records
from adapters._meta_variables import SERVER_SOFTWARE, header_key, split_host
from gateway.types import ORIGINAL_TARGET, Scope

_HEADER_KEYS: dict[bytes, bytes] = {}
_HEADER_CACHE_MAX = 512
_PAIR_CACHE_MAX = 4096
_HEADER_BLOCKS_MAX = 256  # header lists hold cookies: fewer of them
_PROTOCOLS = {version: encode_pair(b"SERVER_PROTOCOL", f"HTTP/{version}".encode()) for version in ("1.0", "1.1", "2")}
_HTTPS = encode_pair(b"HTTPS", b"on")


def script_pairs(script_name: str, filename: str, path_info: str) -> bytes:
    """What is the same for every request to one script: computed when the script is resolved.

    An empty PATH_INFO is left out (RFC 3875 §4.1.5 allows it): php-cgi with
    cgi.fix_pathinfo=0 makes PHP_SELF of a PATH_INFO that is there at all.
    """
    pairs = encode_pair(b"SCRIPT_NAME", script_name.encode("latin-1"))
    pairs += encode_pair(b"SCRIPT_FILENAME", filename.encode("latin-1"))
    return pairs + encode_pair(b"PATH_INFO", path_info.encode("latin-1")) if path_info else pairs


class ParamsBuilder:
    """Builds the BEGIN_REQUEST and PARAMS records of one route's requests."""

    def __init__(self, document_root: str, extra: dict[str, str]) -> None:
        constant = [
            (b"GATEWAY_INTERFACE", b"CGI/1.1"),
            (b"SERVER_SOFTWARE", SERVER_SOFTWARE.encode()),
            (b"DOCUMENT_ROOT", document_root.encode("latin-1")),
            (b"REDIRECT_STATUS", b"200"),  # php-cgi's force-cgi-redirect check
        ]
        constant += [(name.encode("latin-1"), value.encode("latin-1")) for name, value in extra.items()]
        self.constant = b"".join(encode_pair(name, value) for name, value in constant)
        self.methods: dict[str, bytes] = {}
        # Keep-alive clients send request after request from one address and port with the same
        # headers, and a site's pages are asked for again and again: their pairs are encoded
        # once (bounded caches, emptied when full).
        self.clients: dict[tuple[str, int], bytes] = {}
        self.listeners: dict[tuple[str, int], bytes] = {}  # the listening address: SERVER_ADDR
        self.targets: dict[tuple[bytes, bytes], bytes] = {}  # (raw path, query) -> QUERY_STRING and REQUEST_URI
        self.header_blocks: dict[tuple[tuple[tuple[bytes, bytes], ...], str], tuple[bytes, bool, bool]] = {}

    def build(self, request_id: int, scope: Scope, script: bytes, content_length: int) -> bytes:
        """The PARAMS stream for one request; script is script_pairs() of the script that runs."""
        method: str = scope["method"]
        method_pair = self.methods.get(method)
        if method_pair is None:
            method_pair = self.methods[method] = encode_pair(b"REQUEST_METHOD", method.encode("latin-1"))
        query: bytes = scope["query_string"]
        original = scope.get(ORIGINAL_TARGET)
        if original is None:
            raw_path: bytes = scope["raw_path"]
            target = self.targets.get((raw_path, query))
            if target is None:
                target = _remember(self.targets, (raw_path, query), _target_pairs(query, raw_path, query))
        else:  # rewritten: the script's query is the new one, REQUEST_URI the client's
            target = _target_pairs(query, *original)
        parts = [
            self.constant,
            script,
            method_pair,
            target,
            _PROTOCOLS.get(scope["http_version"]) or encode_pair(b"SERVER_PROTOCOL", b"HTTP/1.1"),
        ]
        key = (tuple(scope["headers"]), scope.get("scheme", "http"))
        block = self.header_blocks.get(key)
        if block is None:
            block = self._header_block(scope)
            if block[2]:
                if len(self.header_blocks) >= _HEADER_BLOCKS_MAX:
                    self.header_blocks.clear()
                self.header_blocks[key] = block
        parts.append(block[0])
        if content_length or block[1]:
            parts.append(encode_pair(b"CONTENT_LENGTH", str(content_length).encode()))  # a chunked body's, counted
        client = scope.get("client")
        if client:
            pairs = self.clients.get(client)
            if pairs is None:
                pairs = _remember(self.clients, client, _client_pairs(client))
            parts.append(pairs)
        server = scope.get("server")
        if server and server[1] is not None:  # a TCP listener (nginx's $server_addr)
            pair = self.listeners.get(server)
            if pair is None:
                pair = _remember(self.listeners, server, encode_pair(b"SERVER_ADDR", server[0].encode("latin-1")))
            parts.append(pair)
        if scope.get("scheme") == "https":
            parts.append(_HTTPS)
        user = scope.get("user")
        if isinstance(user, str):
            parts.append(encode_pair(b"REMOTE_USER", user.encode("utf-8")))
            auth_type = scope.get("auth_type")
            if isinstance(auth_type, str):
                parts.append(encode_pair(b"AUTH_TYPE", auth_type.encode("latin-1")))
        return params_records(request_id, b"".join(parts))

    def _header_block(self, scope: Scope) -> tuple[bytes, bool, bool]:
        """The HTTP_* and SERVER_* pairs of a header list, whether it declared a Content-Length, and if it may be kept.

        A block depends on the headers and the scheme alone when there is a
        Host: such blocks are kept (a keep-alive client sends the same
        headers request after request), the others depend on the listener.
        """
        headers = _header_variables(scope["headers"])
        declared = headers.pop(b"CONTENT_LENGTH", None) is not None
        pairs = [encode_pair(name, value) for name, value in headers.items()]
        host = headers.get(b"HTTP_HOST")
        pairs.append(_server(scope, host))
        return b"".join(pairs), declared, bool(host)


def _target_pairs(query: bytes, asked_path: bytes, asked_query: bytes) -> bytes:
    """QUERY_STRING (the script's) and REQUEST_URI (the client's, as it asked)."""
    uri = asked_path + b"?" + asked_query if asked_query else asked_path
    return encode_pair(b"QUERY_STRING", query) + encode_pair(b"REQUEST_URI", uri)


def _client_pairs(client: tuple[str, int]) -> bytes:
    address = client[0].encode("latin-1")
    return (
        encode_pair(b"REMOTE_ADDR", address)
        + encode_pair(b"REMOTE_HOST", address)
        + encode_pair(b"REMOTE_PORT", str(client[1]).encode())
    )


def _remember(cache: dict[Any, bytes], key: Any, value: bytes) -> bytes:
    if len(cache) >= _PAIR_CACHE_MAX:
        cache.clear()
    cache[key] = value
    return value


def _header_variables(headers: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for name, value in headers:
        key = _HEADER_KEYS.get(name)
        if key is None:
            key = header_key(name).encode("latin-1")
            if len(_HEADER_KEYS) < _HEADER_CACHE_MAX:
                _HEADER_KEYS[name] = key
        if not key:
            continue
        if key in found:
            value = found[key] + (b"; " if key == b"HTTP_COOKIE" else b", ") + value
        found[key] = value
    return found


def _server(scope: Scope, host: bytes | None) -> bytes:
    scheme: str = scope.get("scheme", "http")
    if host:
        name, port = split_host(host.decode("latin-1"), scheme)
    else:
        server = scope.get("server")
        if server and server[1] is not None:
            name, port = server[0], str(server[1])
        else:
            name, port = "localhost", "443" if scheme == "https" else "80"
    return (
        encode_pair(b"SERVER_NAME", name.encode("latin-1"))
        + encode_pair(b"SERVER_PORT", port.encode())
        + encode_pair(b"REQUEST_SCHEME", scheme.encode("latin-1"))
    )
