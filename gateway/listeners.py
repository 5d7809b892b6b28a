"""Listening sockets from `listen` strings: "host:port", "[v6]:port", "unix:/path", "fd:N"."""

from __future__ import annotations

import contextlib
import os
import socket
import stat

from gateway.errors import StartupError


def parse_address(spec: str) -> tuple[str, str | int | tuple[str, int]]:
    """Split a listen string into (kind, address); raises ValueError with a readable message."""
    if spec.startswith("unix:"):
        path = spec[5:]
        if not path:
            raise ValueError("a unix listener needs a path, as in 'unix:/run/gateway.sock'")
        return "unix", path
    if spec.startswith("fd:"):
        if not spec[3:].isdigit():
            raise ValueError("an inherited socket is 'fd:N' with N a file descriptor number")
        return "fd", int(spec[3:])
    host, sep, port = spec.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected 'host:port', '[ipv6]:port', 'unix:/path' or 'fd:N'")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write an IPv6 address in brackets, as in '[::1]:8080'")
    return "tcp", (host or "0.0.0.0", int(port))


def bind(spec: str, backlog: int) -> socket.socket:
    """A bound, listening, non-blocking socket for one listen string."""
    try:
        kind, address = parse_address(spec)
    except ValueError as exc:
        raise StartupError(f"cannot listen on {spec!r}: {exc}") from None
    try:
        if kind == "fd":
            assert isinstance(address, int)
            sock = socket.socket(fileno=address)
        elif kind == "unix":
            assert isinstance(address, str)
            sock = _bind_unix(address)
        else:
            assert isinstance(address, tuple)
            sock = _bind_tcp(address)
        sock.listen(backlog)
    except OSError as exc:
        raise StartupError(f"cannot listen on {spec!r}: {exc.strerror or exc}{_hint(exc)}") from None
    sock.setblocking(False)
    sock.set_inheritable(False)  # an inherited fd:N is inheritable; CGI scripts and php-cgi must not hold it
    return sock


def _bind_tcp(address: tuple[str, int]) -> socket.socket:
    host, port = address
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _bind_unix(path: str) -> socket.socket:
    """Bind a Unix socket, replacing a stale socket file but never a live one or a regular file."""
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(17, f"{path} exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
        else:
            raise OSError(98, "another server is already listening on it")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
    except OSError:
        sock.close()
        raise
    return sock


def _hint(exc: OSError) -> str:
    if exc.errno == 98:
        return " (is another server using this address? pick another port or stop it)"
    if exc.errno == 13:
        return " (ports below 1024 need root; use a higher port)"
    if exc.errno == 99:
        return " (this machine has no such address; use 127.0.0.1 or 0.0.0.0)"
    return ""


def describe(sock: socket.socket, scheme: str = "http") -> str:
    """A URL-ish name for the log line that says where we listen."""
    address = sock.getsockname()
    if sock.family == socket.AF_UNIX:
        return f"unix:{address}" if scheme == "http" else f"{scheme}+unix:{address}"
    host, port = address[0], address[1]
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
