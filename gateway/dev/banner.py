"""The start banner of `gateway dev`: every vhost as a URL a terminal makes clickable.

A vhost is shown by its first exact name; one with only wildcard names by an
example name (`*.example.com` → `http://www.example.com:8080/`). The other
names follow, and the default vhost (the one for unknown Host headers) is
marked. Names outside `.localhost` do not reach this machine by themselves,
so the banner says how to reach them when there are any.
"""

from __future__ import annotations

import ipaddress
import socket

from gateway.config.schema import Config
from gateway.dev.console import Paint
from gateway.listeners import describe

WILDCARD_EXAMPLE = "www"


def banner_lines(
    config: Config | None, listeners: list[socket.socket], paint: Paint, tls: frozenset[socket.socket] = frozenset()
) -> list[str]:
    """The lines under "ready": one per vhost, then where it listens; `tls`: the listeners that serve TLS."""
    tcp = [s for s in listeners if s.family in (socket.AF_INET, socket.AF_INET6)]
    port = tcp[0].getsockname()[1] if tcp else None
    scheme = "https" if tcp and tcp[0] in tls else "http"
    lines, far = [], []
    vhosts = config.vhosts if config is not None else ()
    default = next((v for v in vhosts if v.default), vhosts[0] if vhosts else None)
    for vhost in vhosts:
        host = shown_name(vhost.names)
        notes = ["default"] if vhost is default else []
        others = [name for name in vhost.names if name != host]
        if others:
            notes.append("also " + ", ".join(others))
        url = site_url(host, port, scheme)
        lines.append(f"  {paint(url, 'cyan', 'bold')}" + (f"  {paint(' · '.join(notes), 'dim')}" if notes else ""))
        if not reaches_loopback(host):
            far.append(host)
    if not vhosts and tcp:
        lines.append(f"  {paint(site_url(_listen_host(tcp[0]), port, scheme), 'cyan', 'bold')}")
    lines.append(f"  listening on {', '.join(describe(s) for s in listeners)}")
    if far and tcp:
        address = describe(tcp[0])
        lines.append(
            paint(
                f"  {', '.join(far)}: add to /etc/hosts, or: curl -H 'Host: {far[0]}' {address}/",
                "dim",
            )
        )
    for sock in listeners:
        if sock.family == socket.AF_UNIX:
            name = shown_name(default.names) if default else "localhost"
            lines.append(paint(f"  curl --unix-socket {sock.getsockname()} http://{name}/", "dim"))
    return lines


def shown_name(names: tuple[str, ...]) -> str:
    """The first exact name, else the first wildcard with an example label in place of '*'."""
    exact = [name for name in names if not name.startswith("*.")]
    if exact:
        return exact[0]
    return f"{WILDCARD_EXAMPLE}.{names[0][2:]}" if names else "localhost"


def site_url(host: str, port: int | None, scheme: str = "http") -> str:
    if port is None or port == {"http": 80, "https": 443}[scheme]:
        return f"{scheme}://{host}/"
    return f"{scheme}://{host}:{port}/"


def reaches_loopback(host: str) -> bool:
    """localhost, names under .localhost (RFC 6761) and address literals need no /etc/hosts line."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _listen_host(sock: socket.socket) -> str:
    host = str(sock.getsockname()[0])
    if host in ("0.0.0.0", "::"):
        return "localhost"
    return f"[{host}]" if ":" in host else host
