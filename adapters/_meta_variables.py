"""CGI meta-variables (RFC 3875 §4.1) from an ASGI scope: for WSGI's environ, CGI and FastCGI.

Rules:
- Strings are "bytes as latin-1" (as PEP 3333 says for WSGI): a path's bytes
  survive the trip to a CGI environment or FastCGI params exactly
  (encode_variables turns them back into bytes).
- Headers become HTTP_* (§4.1.18). A `Proxy` header never becomes HTTP_PROXY
  (CVE-2016-5385, "httpoxy"), `Proxy-Authorization` is a proxy's to read and
  never passes (as under Apache), and names with an underscore are dropped, as
  nginx, Apache and gunicorn do: "X-Auth_User" must not pass as "X-Auth-User".
  Repeated headers are joined with ", " (RFC 9110 §5.3), Cookie with "; "
  (RFC 6265 §5.4).
- SERVER_NAME and SERVER_PORT come from Host when there is one, else from the
  socket the request arrived on.
- REMOTE_HOST is REMOTE_ADDR: §4.1.9 allows it, and a DNS lookup per request
  is what no one wants.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

from gateway import __version__
from gateway.http.parser import clean_path
from gateway.types import Scope, client_target

SERVER_SOFTWARE = f"gateway/{__version__}"
_HEADER_KEYS: dict[bytes, str] = {
    b"content-type": "CONTENT_TYPE",
    b"content-length": "CONTENT_LENGTH",
    b"proxy": "",  # "" = dropped
    b"proxy-authorization": "",  # credentials for a proxy, not for this server's programs (Apache drops it too)
}
_HEADER_CACHE_MAX = 512  # names seen beyond this many are converted each time, not remembered
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_PERCENT, _UNDERSCORE = ord("%"), ord("_")  # ints: `b"%" in raw` costs a caught TypeError in CPython 3.11


def add_request_variables(variables: dict[str, Any], scope: Scope) -> None:
    """The variables every gateway to a program shares: method, query, protocol, headers, server, client, user."""
    scheme: str = scope.get("scheme", "http")
    variables["REQUEST_METHOD"] = scope["method"]
    variables["QUERY_STRING"] = scope["query_string"].decode("latin-1")
    variables["SERVER_PROTOCOL"] = "HTTP/" + scope["http_version"]
    _add_headers(variables, scope["headers"])
    host = variables.get("HTTP_HOST")
    if host:
        variables["SERVER_NAME"], variables["SERVER_PORT"] = split_host(host, scheme)
    else:
        server = scope.get("server")
        port = server[1] if server else None
        if server and port is not None:
            variables["SERVER_NAME"], variables["SERVER_PORT"] = server[0], str(port)
        else:  # a Unix socket, or an ASGI server that did not say
            variables["SERVER_NAME"], variables["SERVER_PORT"] = "localhost", _DEFAULT_PORTS.get(scheme, "80")
    client = scope.get("client")
    if client:
        variables["REMOTE_ADDR"] = client[0]
        variables["REMOTE_PORT"] = str(client[1])
    add_user_variables(variables, scope)


def add_user_variables(variables: dict[str, Any], scope: Scope) -> None:
    """REMOTE_USER and AUTH_TYPE when the auth stage let a user in (scope["user"], scope["auth_type"])."""
    user = scope.get("user")
    if isinstance(user, str):
        variables["REMOTE_USER"] = user.encode("utf-8").decode("latin-1")  # the name's UTF-8 bytes, as CGI carries them
        auth_type = scope.get("auth_type")
        if isinstance(auth_type, str):
            variables["AUTH_TYPE"] = auth_type


def cgi_variables(
    scope: Scope, script_name: str, path_info: str, script_filename: str, document_root: str
) -> dict[str, str]:
    """The full CGI/1.1 set for a program at script_filename (all values latin-1 strings of bytes).

    script_name and path_info split the decoded request path (the caller
    resolved which file runs); PATH_TRANSLATED is path_info under the document
    root, and only present with a path_info, as Apache does.
    """
    variables: dict[str, str] = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": SERVER_SOFTWARE,
        "SCRIPT_NAME": script_name,
        "SCRIPT_FILENAME": script_filename,
        "PATH_INFO": path_info,
        "DOCUMENT_ROOT": document_root,
        "REQUEST_URI": client_target(scope),
    }
    if path_info:
        variables["PATH_TRANSLATED"] = document_root + path_info
    add_request_variables(variables, scope)
    if "REMOTE_ADDR" in variables:
        variables["REMOTE_HOST"] = variables["REMOTE_ADDR"]
    scheme = scope.get("scheme", "http")
    variables["REQUEST_SCHEME"] = scheme  # as Apache and nginx's fastcgi_params give them
    server = scope.get("server")
    if server and server[1] is not None:
        variables["SERVER_ADDR"] = server[0]
    if scheme == "https":
        variables["HTTPS"] = "on"
    return variables


def encode_variables(variables: dict[str, str]) -> dict[bytes, bytes]:
    """Back to the client's bytes, for a process environment or FastCGI params."""
    return {name.encode("latin-1"): value.encode("latin-1") for name, value in variables.items()}


def decoded_path(scope: Scope) -> str:
    """The percent-decoded request path, its bytes as latin-1 (so "%2F" is "/": callers that care check raw_path).

    Cleaned as the routing path is (dot segments, repeated slashes): the app
    must see the path its route and stages were chosen by, or /admin/../x,
    routed as /x past the /admin route's deny, would reach the admin view.
    """
    raw: bytes | None = scope.get("raw_path")
    if raw is None:
        return str(scope["path"]).encode("utf-8").decode("latin-1")
    return clean_path(unquote_to_bytes(raw).decode("latin-1") if _PERCENT in raw else raw.decode("latin-1"))


def split_host(host: str, scheme: str) -> tuple[str, str]:
    """(SERVER_NAME, SERVER_PORT) from a Host value: "a.example:8080", "[::1]:8080", "a.example"."""
    if host.startswith("["):
        end = host.find("]")
        if end > 0:
            name, rest = host[: end + 1], host[end + 1 :]
            return name, rest[1:] if rest.startswith(":") and rest[1:] else _DEFAULT_PORTS.get(scheme, "80")
    name, _, port = host.partition(":")
    return name, port or _DEFAULT_PORTS.get(scheme, "80")


def _add_headers(variables: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        key = _HEADER_KEYS.get(name)
        if key is None:
            key = header_key(name)
        if not key:
            continue
        text = value.decode("latin-1")
        if key in variables:
            text = variables[key] + ("; " if key == "HTTP_COOKIE" else ", ") + text
        variables[key] = text


def header_key(name: bytes) -> str:
    """HTTP_X_FOO for b"x-foo"; "" for names that must not reach the program."""
    lower = name.lower()
    if lower in _HEADER_KEYS:
        key = _HEADER_KEYS[lower]
    elif _UNDERSCORE in lower:
        key = ""
    else:
        key = "HTTP_" + lower.decode("latin-1").upper().replace("-", "_")
    if len(_HEADER_KEYS) < _HEADER_CACHE_MAX:
        _HEADER_KEYS[name] = key
    return key
