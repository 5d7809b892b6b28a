"""TLS test helpers: certificates made at test time (trustme) and a gateway on a plain and a TLS listener.

run_listeners() binds its loopback sockets itself, like run_gateway(), but
names them in the config (`listen = ["fd:N", { address = "fd:M", tls = ... }]`)
instead of replacing the config's list with --listen, so a listener can be
marked TLS. The config text gets {plain} and {tls} (the fd:N addresses).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import trustme

from tests.support.server import ROOT, Gateway, _stop, _wait_ready, read_one_response


class Pki:
    """A test CA that issues certificate/key files into a folder; clients trust it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ca = trustme.CA()

    def issue(self, stem: str, *names: str) -> tuple[Path, Path]:
        """stem.crt and stem.key for these names (written over, for reload tests)."""
        issued = self.ca.issue_cert(*names)
        cert, key = self.folder / f"{stem}.crt", self.folder / f"{stem}.key"
        # Written to a new file then renamed, as certbot does: a reader never sees half a file.
        for path, pem in (
            (cert, b"".join(blob.bytes() for blob in issued.cert_chain_pems)),
            (key, issued.private_key_pem.bytes()),
        ):
            part = path.with_suffix(".part")
            part.write_bytes(pem)
            part.replace(path)
        return cert, key

    def client(self) -> ssl.SSLContext:
        """A client context that trusts the CA and checks names, offering ALPN h2 and http/1.1 as browsers do."""
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        context.set_alpn_protocols(["h2", "http/1.1"])
        return context


@dataclass
class TlsGateway:
    """A gateway with a plain and a TLS listener."""

    gateway: Gateway
    plain_port: int
    tls_port: int

    def connect(self, server_name: str | None, context: ssl.SSLContext, timeout: float = 5.0) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=timeout)
        try:
            return context.wrap_socket(raw, server_hostname=server_name)
        except BaseException:
            raw.close()
            raise


@contextlib.contextmanager
def run_listeners(config_text: str, *, expect_exit: int | None = 0) -> Iterator[TlsGateway]:
    """`gateway serve` a config naming {plain} and {tls}: two loopback sockets bound here and inherited."""
    workdir = Path(tempfile.mkdtemp(prefix="gateway-tls-test-"))
    sockets = [_loopback_listener(), _loopback_listener()]
    plain, tls = (f"fd:{sock.fileno()}" for sock in sockets)
    config = workdir / "gateway.toml"
    config.write_text(config_text.replace("{plain}", plain).replace("{tls}", tls))
    command = [sys.executable, "-m", "gateway", "serve", str(config)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open(workdir / "stdout.log", "wb") as out, open(workdir / "stderr.log", "wb") as err:
        fds = [sock.fileno() for sock in sockets]
        proc = subprocess.Popen(command, cwd=ROOT, pass_fds=fds, stdout=out, stderr=err, env=env)
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    gateway = Gateway(proc, "127.0.0.1", ports[0], workdir)
    try:
        _wait_ready(gateway, 15.0)
        yield TlsGateway(gateway, ports[0], ports[1])
    finally:
        _stop(gateway, expect_exit)


def _loopback_listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def get(sock: socket.socket, host: str, path: str = "/") -> tuple[int, dict[bytes, bytes], bytes]:
    """One keep-alive GET on an open connection."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return read_one_response(sock)


def served_names(sock: ssl.SSLSocket) -> list[str]:
    """The DNS names of the certificate the server presented."""
    cert = sock.getpeercert()
    assert cert is not None
    return [value for kind, value in cert.get("subjectAltName", ()) if kind == "DNS"]


def serial(sock: ssl.SSLSocket) -> str:
    cert = sock.getpeercert()
    assert cert is not None
    return str(cert["serialNumber"])
