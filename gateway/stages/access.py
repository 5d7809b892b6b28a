"""The access stage: `allow` / `deny` lists of addresses and CIDR blocks; and trusted proxies' forwarded headers.

Rules (as nginx's allow/deny, with "deny wins" as the issue asks):
- a client in any `deny` block → 403; else, when there is an `allow` list, a
  client in none of its blocks → 403; else the request goes on;
- "all" stands for every IPv4 and IPv6 address, "unix" for clients on a Unix
  socket (which have no address: without "unix" in `allow` they are refused
  whenever an allow list exists);
- an IPv4-mapped IPv6 address (::ffff:10.0.0.1) is checked as the IPv4 one.
Decisions are cached per client address (bounded), so a request costs one
dict lookup.

Forwarded headers (`trusted_proxies` in [server]) are applied by the router
before any stage, with forwarded_rewriter(): only when the peer is a trusted
proxy, the client address becomes the rightmost address of
X-Forwarded-For/Forwarded that is not itself a trusted proxy (nginx's
real_ip_recursive), and the scheme comes from X-Forwarded-Proto /
Forwarded proto=. From anyone else these headers change nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.stages import Report
from gateway.stages.errors import plain_response
from gateway.types import ASGIApp, HandlerContext, Receive, Scope, Send

KEYS = ("allow", "deny")
ORDER = 10
CACHE_MAX = 4096
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ALL = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
FORBIDDEN_BODY = b"403 Forbidden\nYour address may not access this site.\n"


@dataclass(frozen=True, slots=True)
class AccessOptions:
    allow: tuple[Network, ...]
    deny: tuple[Network, ...]
    allow_unix: bool
    has_allow: bool


def parse_networks(value: Any, key: str, report: Report) -> tuple[list[Network], bool]:
    """CIDR blocks from a list of strings, and whether "unix" was among them; problems reported by index."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        report(key, 'expected a list of addresses or CIDR blocks, as in ["10.0.0.0/8", "::1"]')
        return [], False
    networks: list[Network] = []
    unix = False
    for index, item in enumerate(value):
        if item == "all":
            networks += ALL
        elif item == "unix":
            unix = True
        elif isinstance(item, str):
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                report(f"{key}[{index}]", f'{item!r} is not an address or CIDR block (as "192.168.0.0/16" or "::1")')
        else:
            report(f"{key}[{index}]", f"expected a string, got {item!r}")
    return networks, unix


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> AccessOptions | None:
    allow, allow_unix = parse_networks(values.get("allow", []), "allow", report)
    deny, _ = parse_networks(values.get("deny", []), "deny", report)
    if not allow and not deny and not allow_unix:
        return None
    return AccessOptions(tuple(allow), tuple(deny), allow_unix, "allow" in values and values["allow"] != [])


def wrap(options: AccessOptions, app: ASGIApp) -> ASGIApp:
    return AccessControl(options, app)


def address_of(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def contains(networks: tuple[Network, ...], address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(address.version == net.version and address in net for net in networks)


class AccessControl:
    """The ASGI app in front of a route's handler."""

    def __init__(self, options: AccessOptions, app: ASGIApp) -> None:
        self.options = options
        self.app = app
        self.decisions: dict[str, bool] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or self.allowed(scope.get("client")):
            await self.app(scope, receive, send)
        else:  # a WebSocket handshake too: the router sends it as the handshake's response
            await plain_response(send, 403, FORBIDDEN_BODY)

    def allowed(self, client: tuple[str, int] | None) -> bool:
        if not client:
            return self.options.allow_unix or not self.options.has_allow
        host = client[0]
        decision = self.decisions.get(host)
        if decision is None:
            decision = self.decide(host)
            if len(self.decisions) >= CACHE_MAX:
                self.decisions.clear()
            self.decisions[host] = decision
        return decision

    def decide(self, host: str) -> bool:
        address = address_of(host)
        if address is None:
            return False
        if contains(self.options.deny, address):
            return False
        return not self.options.has_allow or contains(self.options.allow, address)


# Trusted proxies -----------------------------------------------------------------


def peer_trust(trusted: tuple[str, ...]) -> Callable[[str], bool]:
    """Whether a peer's address is one of trusted_proxies (answers remembered, up to CACHE_MAX)."""
    networks, _ = parse_networks(list(trusted), "trusted_proxies", _ignore)
    blocks = tuple(networks)
    trust: dict[str, bool] = {}

    def trusted_peer(host: str) -> bool:
        known = trust.get(host)
        if known is None:
            address = address_of(host)
            known = address is not None and contains(blocks, address)
            if len(trust) < CACHE_MAX:
                trust[host] = known
        return known

    return trusted_peer


def forwarded_rewriter(trusted: tuple[str, ...]) -> Callable[[Scope], None] | None:
    """A function the router calls on each scope to apply forwarded headers from trusted peers; None if none."""
    networks, unix = parse_networks(list(trusted), "trusted_proxies", _ignore)
    if not networks and not unix:
        return None
    trusted_peer = peer_trust(trusted)

    def rewrite(scope: Scope) -> None:
        client = scope.get("client")
        if not (trusted_peer(client[0]) if client else unix):
            return
        hops, proto = _forwarded(scope["headers"])
        for node, hop_proto in reversed(hops):
            proto = hop_proto or proto  # how this hop's client reached the (trusted) proxy that wrote it
            address = address_of(node) if node else None
            if address is None:
                break
            scope["client"] = (str(address), 0)
            if not trusted_peer(str(address)):
                break
        if proto in ("http", "https"):
            scope["scheme"] = proto if scope.get("type") == "http" else {"http": "ws", "https": "wss"}[proto]

    return rewrite


Hop = tuple[str | None, str | None]  # (the client's address or None, the protocol it used or None)


def _forwarded(headers: list[tuple[bytes, bytes]]) -> tuple[list[Hop], str | None]:
    """The hops (nearest last) from Forwarded (RFC 7239) or X-Forwarded-For/-Proto, and a protocol for them all.

    A Forwarded element describes one hop: its `for` and `proto` (either may
    be missing). X-Forwarded-Proto pairs with X-Forwarded-For hop by hop when
    both list as many; otherwise its last value stands for the whole chain.
    """
    chain: list[str] = []
    protos: list[str] = []
    standard: list[Hop] = []
    for name, value in headers:
        if name == b"x-forwarded-for":
            chain += [part.strip() for part in value.decode("latin-1").split(",") if part.strip()]
        elif name == b"x-forwarded-proto":
            protos += [part.strip().lower() for part in value.decode("latin-1").split(",") if part.strip()]
        elif name == b"forwarded":
            standard += [_forwarded_element(element) for element in value.decode("latin-1").split(",")]
    if standard:
        return standard, None
    if len(protos) == len(chain):
        return list(zip(chain, protos, strict=True)), None
    return [(node, None) for node in chain], protos[-1] if protos else None


def _forwarded_element(element: str) -> Hop:
    node: str | None = None
    proto: str | None = None
    for pair in element.split(";"):
        key, _, item = pair.strip().partition("=")
        item = item.strip().strip('"')
        if key.lower() == "for":
            node = _forwarded_node(item)
        elif key.lower() == "proto":
            proto = item.lower()
    return node, proto


def _forwarded_node(node: str) -> str:
    """The address of a Forwarded `for=` node: "[2001:db8::1]:4711" → "2001:db8::1", "1.2.3.4:80" → "1.2.3.4"."""
    if node.startswith("["):
        return node[1:].partition("]")[0]
    return node.partition(":")[0] if node.count(":") == 1 else node


def _ignore(key: str, message: str) -> None:
    """trusted_proxies is checked when the config is loaded (see check_trusted_proxies)."""


def check_trusted_proxies(trusted: tuple[str, ...]) -> list[tuple[str, str]]:
    """Problems with [server].trusted_proxies, as (key, message)."""
    found: list[tuple[str, str]] = []
    parse_networks(list(trusted), "trusted_proxies", lambda key, message: found.append((key, message)))
    return found
