"""Virtual host lookup: exact names in a dict, `*.` wildcards by suffix, then the default.

The cost of a lookup depends on the number of dots in the host, never on the
number of virtual hosts; the router also caches raw Host header bytes → vhost.
"""

from __future__ import annotations

import re
from typing import Generic, TypeVar

T = TypeVar("T")
_NAME = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*|\[[0-9a-f:.]+\]")


def normalize_host(raw: bytes | str) -> str:
    """Lower-case, port stripped, trailing dot removed; "[::1]:8080" → "[::1]"."""
    host = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end > 0 else host
    host = host.partition(":")[0]
    return host[:-1] if host.endswith(".") else host


def check_name(name: str) -> str | None:
    """Why a configured vhost name is unusable, or None when it is fine."""
    if not name:
        return "a name cannot be empty"
    if name != name.lower():
        return f"write {name!r} in lower case ({name.lower()!r}); host matching ignores case"
    bare = name[2:] if name.startswith("*.") else name
    if "*" in bare:
        return f"{name!r}: only a leading '*.' wildcard is supported, as in '*.example.com'"
    if bare.count(":") > 1 and not bare.startswith("["):  # ::1, fe80::1: an IPv6 literal, not a port
        return f"{name!r}: write an IPv6 address in brackets, as the Host header carries it: '[{bare}]'"
    if ":" in bare and not bare.startswith("["):
        return f"{name!r}: leave the port out; a vhost answers on every listener"
    if bare and not bare.isascii():
        return f"{name!r}: write an internationalized name as browsers send it, in punycode: {_punycode(name)!r}"
    if not bare or not _NAME.fullmatch(bare):
        return (
            f"{name!r} is not a host name a request could carry: use letters, digits, '-' and '.', "
            "as in 'example.com' or '*.example.com'"
        )
    return None


def _punycode(name: str) -> str:
    """The name's ASCII form (IDNA, Python's codec), or a pointer to a converter when it has none."""
    wildcard, bare = ("*.", name[2:]) if name.startswith("*.") else ("", name)
    try:
        return wildcard + bare.encode("idna").decode("ascii")
    except UnicodeError:
        return "its xn-- form (any IDNA converter gives it)"


class HostTable(Generic[T]):
    """Maps host names to values (vhosts): exact, then longest wildcard suffix, then default."""

    def __init__(self, default: T) -> None:
        self.default = default
        self.exact: dict[str, T] = {}
        self.wildcards: dict[str, T] = {}  # ".example.com" for "*.example.com"

    def add(self, name: str, value: T) -> bool:
        """Register a name; False when an earlier vhost already has it (the first one wins)."""
        table, key = (self.wildcards, name[1:]) if name.startswith("*.") else (self.exact, name)
        if key in table:
            return False
        table[key] = value
        return True

    def lookup(self, host: str) -> tuple[T, str]:
        """The value for a normalized host, and how it matched (for `gateway explain`)."""
        value = self.exact.get(host)
        if value is not None:
            return value, f"exact name {host!r}"
        if self.wildcards:
            dot = host.find(".")
            while dot >= 0:
                value = self.wildcards.get(host[dot:])
                if value is not None:
                    return value, f"wildcard '*{host[dot:]}'"
                dot = host.find(".", dot + 1)
        return self.default, "no name matched: the default vhost"
