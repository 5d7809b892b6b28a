"""What a serving process asks of TLS: which of its listeners speak it, serving them, reloading, stopping.

A supervisor's worker inherits its listeners as `fd:N`; the supervisor says
in LISTEN_AS_ENV which address of the config each one is, so the worker
finds that address's certificate in the config it loads itself (a reload's
new generation therefore reads the new files).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import ssl

from gateway.config.schema import Config, TlsFiles
from gateway.errors import StartupError
from gateway.http.state import ServerState
from gateway.supervisor import LISTEN_AS_ENV
from gateway.tls.acceptor import TlsAcceptor
from gateway.tls.contexts import CertificateError, CertificateSet
from gateway.tls.files import check_files
from gateway.tls.redirect import HTTPS_PORTS

logger = logging.getLogger("gateway.server")


class TlsService:
    """The TLS listeners of one process and their current certificates."""

    def __init__(self, config: Config) -> None:
        self.config = config
        inherited = json.loads(os.environ.get(LISTEN_AS_ENV) or "{}")
        found = {spec: config.tls_listeners.get(inherited.get(spec, spec)) for spec in config.server.listen}
        self.listeners: dict[str, TlsFiles] = {spec: files for spec, files in found.items() if files is not None}
        self.certificates: CertificateSet | None = None
        self.reloading: asyncio.Task[None] | None = None

    def __bool__(self) -> bool:
        return bool(self.listeners)

    def is_tls(self, spec: str) -> bool:
        return spec in self.listeners

    def load(self) -> None:
        """Build the contexts before serving; StartupError names the file that cannot be used."""
        if self.listeners:
            try:
                self.certificates = load_checked(self.config, self.listeners)
            except CertificateError as exc:
                raise StartupError(str(exc)) from None

    def serve(self, sock: socket.socket, spec: str, state: ServerState) -> TlsAcceptor:
        """Start accepting TLS connections on a bound socket."""
        acceptor = TlsAcceptor(sock, lambda: self._context(spec), state)
        acceptor.start()
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            HTTPS_PORTS.found(sock.getsockname()[1])
        return acceptor

    def _context(self, spec: str) -> ssl.SSLContext:
        assert self.certificates is not None  # load() ran before serving
        return self.certificates.context_for(spec)

    def reload(self) -> None:
        """SIGHUP: read the certificate files again, off the event loop; a bad file keeps the current ones."""
        if self.reloading is not None and not self.reloading.done():
            logger.warning("SIGHUP: a certificate reload is already running")
            return
        self.reloading = asyncio.get_running_loop().create_task(self._reload())

    async def _reload(self) -> None:
        try:
            fresh = await asyncio.to_thread(load_checked, self.config, self.listeners)
        except CertificateError as exc:
            for problem in str(exc).splitlines():
                logger.error("certificate reload refused: %s", problem)
            logger.error("the current certificates stay in use")
            return
        self.certificates = fresh
        logger.info("certificates reloaded (%d certificate files); open connections keep theirs", fresh.files)

    def close(self) -> None:
        """The server stops: a reload still reading files is not needed any more."""
        if self.reloading is not None:
            self.reloading.cancel()


def load_checked(config: Config, listeners: dict[str, TlsFiles]) -> CertificateSet:
    """A new CertificateSet, or CertificateError with one line per file problem (blocking: file reads)."""
    every = {*listeners.values(), *(vhost.tls for vhost in config.vhosts if vhost.tls is not None)}
    problems = [
        f"{files.where}.{key}: {message}"
        for files in sorted(every, key=lambda files: files.where)
        for key, message in check_files(files, config.config_dir)
    ]
    if problems:
        raise CertificateError("\n".join(problems))
    return CertificateSet(config, listeners)
