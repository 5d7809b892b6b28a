"""HTTP → HTTPS: the 308 a plain-HTTP request gets on a vhost with `https_redirect`, and the port it names.

The port is the first TLS listener this process serves (known only once its
socket is bound, so the server reports it here), unless the config names one
(`https_redirect = 8443`, for a port mapped elsewhere, as in a container);
without either it is 443, left out of the URL. A request that already came
over TLS, or through a trusted proxy that says it did (X-Forwarded-Proto),
is served as usual.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from gateway.http.parser import ENCODED_PATH_SAFE
from gateway.routing.hosts import normalize_host
from gateway.types import Scope

PATH_SAFE = ENCODED_PATH_SAFE  # what a request target may already hold, so it is not encoded twice
QUERY_SAFE = PATH_SAFE + "?"
_HOST = re.compile(r"[a-z0-9_.-]+|\[[0-9a-f:.]+\]")


class HttpsPorts:
    """The port of this process's first TLS listener, once it is bound."""

    def __init__(self) -> None:
        self.port: int | None = None

    def found(self, port: int) -> None:
        if self.port is None:
            self.port = port


HTTPS_PORTS = HttpsPorts()


def https_url(scope: Scope, port: int | None) -> str:
    """The https:// URL of this request: its host (the Host header, else the address it came to) and target."""
    host = ""
    for name, value in scope["headers"]:
        if name == b"host":
            host = normalize_host(value)
            break
    if not _HOST.fullmatch(host):
        server = scope.get("server")
        host = str(server[0]) if server else "localhost"
        host = f"[{host}]" if ":" in host else host
    port = port or HTTPS_PORTS.port or 443
    authority = host if port == 443 else f"{host}:{port}"
    target = quote(scope["raw_path"], safe=PATH_SAFE)  # bytes: what is not ASCII is escaped, once
    query = scope["query_string"]
    if query:
        target += "?" + quote(query, safe=QUERY_SAFE)
    return f"https://{authority}{target}"
