"""SSLContexts with modern defaults, and the SNI choice of a vhost's certificate.

Rules:
- Every context is ssl.create_default_context(Purpose.CLIENT_AUTH) (no SSLv3,
  no compression, the ssl module's secure cipher list), TLS 1.2 or newer, no
  renegotiation, ALPN "http/1.1" (the core speaks HTTP/1.1 only).
- One context per certificate file pair, shared by every listener; each TLS
  listener's own certificate is its default, with an SNI callback that swaps
  in a vhost's context when the name the client asked for is one of that
  vhost's names (exact, then `*.` wildcard, as routing matches Host). An
  unknown name, or none, keeps the default.
- A CertificateSet is never changed once built: reload builds a new one and
  the acceptors take it for their next connections, so connections already
  open keep the certificate they were served with.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from gateway.config.schema import Config, TlsFiles
from gateway.routing.hosts import HostTable
from gateway.tls.files import EncryptedKey, load_pair, resolve

ALPN = ["http/1.1"]


class CertificateError(Exception):
    """A certificate or key could not be loaded; the message names the config key and the file."""


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for one certificate chain and key."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    context.set_alpn_protocols(ALPN)
    load_pair(context, cert, key)
    return context


class CertificateSet:
    """The contexts of every TLS listener of one process, built at once from the files on disk."""

    def __init__(self, config: Config, listeners: dict[str, TlsFiles]) -> None:
        """listeners: the listen spec this process serves (e.g. "fd:5") → its certificate files."""
        self.config_dir = config.config_dir
        self.loaded: dict[tuple[Path, Path], ssl.SSLContext] = {}
        self.by_name: HostTable[ssl.SSLContext | None] = HostTable(None)
        for vhost in config.vhosts:
            if vhost.tls is not None:
                context = self._context(vhost.tls)
                for name in vhost.names:
                    self.by_name.add(name, context)  # the first vhost keeps a name, as in routing
        self.defaults = {spec: self._context(files) for spec, files in listeners.items()}
        for context in self.defaults.values():
            context.sni_callback = self.choose

    def context_for(self, spec: str) -> ssl.SSLContext:
        return self.defaults[spec]

    @property
    def files(self) -> int:
        """How many certificate/key pairs were loaded (for the log line)."""
        return len(self.loaded)

    def choose(self, connection: ssl.SSLObject | ssl.SSLSocket, server_name: str | None, _: ssl.SSLContext) -> None:
        """SNI callback: the vhost's context for the name the client asked for, when it has its own."""
        if not server_name:
            return
        name = server_name.lower().removesuffix(".")
        context = self.by_name.lookup(name)[0]
        if context is not None:
            connection.context = context

    def _context(self, files: TlsFiles) -> ssl.SSLContext:
        cert, key = resolve(files, self.config_dir)
        context = self.loaded.get((cert, key))
        if context is None:
            try:
                context = server_context(cert, key)
            except (OSError, ssl.SSLError, EncryptedKey) as exc:
                raise CertificateError(f"{files.where}: cannot load {cert} with {key}: {exc}") from None
            self.loaded[(cert, key)] = context
        return context
