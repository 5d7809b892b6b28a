"""The validated configuration: frozen dataclasses, built once at load time.

Field names are the TOML keys of ../DESIGN.md (a public interface); the
metadata "doc" of each field is what the README's reference tables say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from gateway.pools.options import IsolationOptions

MiB = 1024 * 1024


def _doc(text: str, kind: str = "") -> dict[str, str]:
    """Field metadata: the README's description, and "size"/"duration" for unit parsing."""
    return {"doc": text, "kind": kind}


def _size(text: str) -> dict[str, str]:
    return _doc(text, "size")


def _secs(text: str) -> dict[str, str]:
    return _doc(text, "duration")


@dataclass(frozen=True, slots=True)
class Limits:
    """Limits enforced by the HTTP core while it parses, before any app runs."""

    max_request_line: int = field(default=8190, metadata=_size("bytes in the request line; beyond → 414"))
    max_header_size: int = field(default=8190, metadata=_size("bytes in one header field line; beyond → 431"))
    max_header_count: int = field(default=100, metadata=_doc("header fields in a request; beyond → 431"))
    max_body_size: int = field(
        default=10 * MiB, metadata=_size("request body bytes (Content-Length or chunked); beyond → 413")
    )
    header_timeout: float = field(
        default=10.0, metadata=_secs("seconds to receive the whole request head; beyond → 408")
    )
    body_timeout: float = field(default=30.0, metadata=_secs("seconds of silence while reading a body; beyond → 408"))
    keepalive_timeout: float = field(default=5.0, metadata=_secs("seconds an idle keep-alive connection stays open"))
    send_timeout: float = field(
        default=60.0, metadata=_secs("seconds a client may take none of a response waiting for it; beyond → closed")
    )
    keepalive_requests: int = field(default=1000, metadata=_doc("requests served on one connection before it closes"))
    max_connections: int = field(default=1024, metadata=_doc("open connections per worker; beyond → 503"))
    max_connections_per_client: int = field(
        default=64, metadata=_doc("open connections per client IP, per worker; beyond → 503")
    )
    request_timeout: float = field(
        default=300.0, metadata=_secs("seconds a handler may take to start its response; beyond → 504")
    )


AccessLogFormat = Literal["combined", "json"]
LoopName = Literal["auto", "uvloop", "asyncio"]


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The [server] table."""

    listen: tuple[str, ...] = field(
        default=("127.0.0.1:8080",),
        metadata=_doc(
            '"host:port", "[::1]:8080", "unix:/path.sock" or "fd:N"; '
            'a TLS listener is { address = "0.0.0.0:8443", tls = { cert = "...", key = "..." } }'
        ),
    )
    workers: int = field(
        default=1, metadata=_doc("front processes; 1 serves in this process, 0 = one per CPU, more run a supervisor")
    )
    runtime_dir: str = field(default=".gateway", metadata=_doc("sockets, pid file, pool state"))
    pid_file: str = field(default="gateway.pid", metadata=_doc("the supervisor's pid, in runtime_dir unless absolute"))
    max_requests: int = field(default=0, metadata=_doc("requests a worker serves before it is replaced; 0 = never"))
    max_requests_jitter: int = field(
        default=0, metadata=_doc("up to this many more, at random per worker, so workers do not recycle together")
    )
    max_memory: int = field(
        default=0, metadata=_doc("a worker's RSS beyond which it is replaced gracefully; 0 = no limit", "size")
    )
    access_log: str = field(default="-", metadata=_doc('path (relative to the config file), "-" (stdout) or "off"'))
    access_log_format: AccessLogFormat = field(default="combined", metadata=_doc('"combined" or "json"'))
    shutdown_timeout: float = field(default=30.0, metadata=_secs("seconds in-flight requests get to finish on SIGTERM"))
    loop: LoopName = field(default="auto", metadata=_doc('"auto" (uvloop when installed), "uvloop" or "asyncio"'))
    server_header: str = field(default="gateway", metadata=_doc('value of the Server response header; "" sends none'))
    backlog: int = field(default=2048, metadata=_doc("listen() backlog of each listener"))
    trusted_proxies: tuple[str, ...] = field(
        default=(),
        metadata=_doc("addresses/CIDR blocks whose Forwarded and X-Forwarded-For/-Proto headers are believed"),
    )
    ws_max_message_size: int = field(
        default=16 * MiB, metadata=_size("bytes in one incoming WebSocket message; beyond, closed with 1009")
    )
    ws_ping_interval: float = field(
        default=20.0, metadata=_secs("seconds between pings to an open WebSocket's client; 0 = none")
    )
    ws_ping_timeout: float = field(
        default=20.0, metadata=_secs("seconds a client has to answer a ping; beyond, the connection is dropped")
    )
    ws_idle_timeout: float = field(
        default=0.0, metadata=_secs("seconds without a message either way before a WebSocket is closed; 0 = never")
    )
    ws_per_message_deflate: bool = field(
        default=True, metadata=_doc("accept a client's offer of permessage-deflate compression")
    )


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """A certificate chain and its private key (`tls = { cert, key }` on a listener or a vhost); gateway/tls/."""

    cert: str  # as written: relative paths are the config folder's, like every path in the config
    key: str | None  # None: the key is in the cert file
    where: str  # "server.listen[1].tls" or "vhost[0].tls": for messages
    source: str  # the file that says so


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One [[vhost.route]]: the common keys, and the handler's own options."""

    path: str
    handler: str
    methods: tuple[str, ...]
    options: Any
    where: str  # "vhost[0].route[1]": where it stands in the config, for messages
    stages: dict[str, Any] = field(default_factory=dict)  # stage keys as written (auth, allow...), for the stages
    isolation: IsolationOptions = field(default_factory=IsolationOptions)  # asgi/wsgi: inline or a process pool


@dataclass(frozen=True, slots=True)
class VhostConfig:
    """One [[vhost]]."""

    names: tuple[str, ...]
    default: bool
    routes: tuple[RouteConfig, ...]
    where: str
    source: str  # the file it came from (an include, or the main config)
    access_log: str | None = None  # this vhost's own access log: path, "-" or "off"
    stages: dict[str, Any] = field(default_factory=dict)  # stage keys every route inherits unless it sets its own
    errors: Any = None  # `errors` and `intercept_errors` as written; stages/errors.py reads them
    intercept_errors: Any = None
    tls: TlsFiles | None = None  # the certificate SNI picks for these names on TLS listeners


@dataclass(frozen=True, slots=True)
class Config:
    """A whole configuration: where it came from and what it says."""

    source: str = "<command line>"
    server: ServerSettings = field(default_factory=ServerSettings)
    limits: Limits = field(default_factory=Limits)
    app: str | None = None
    vhosts: tuple[VhostConfig, ...] = ()
    config_dir: Path = field(default_factory=Path.cwd)
    tls_listeners: dict[str, TlsFiles] = field(default_factory=dict)  # listen address as written → its default cert

    @property
    def runtime_path(self) -> Path:
        """runtime_dir, relative to the config's folder: pool sockets, the pid file, the admin socket."""
        return self.config_dir / self.server.runtime_dir
