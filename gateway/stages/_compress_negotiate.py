"""Choosing a content coding from Accept-Encoding, and matching media types, for the compress stage.

RFC 9110 §12.5.3: each coding carries a weight (q, default 1); q=0 means
"not acceptable"; `*` stands for every coding not listed by name; `identity`
is acceptable unless refused. Among codings of equal weight the server's
order decides (the `algorithms` list). A client that rates identity above
every coding we offer gets identity. A request without Accept-Encoding gets
identity too: RFC 9110 allows any coding then, but old clients that send
none are exactly the ones that cannot decode one (nginx and Caddy agree).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ALIASES = {b"x-gzip": b"gzip"}  # §12.5.3: x-gzip is gzip
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9a-z]+"
_PATTERN = re.compile(rf"(\*/\*|{_TOKEN}/\*|{_TOKEN}/\*\+{_TOKEN}|{_TOKEN}/{_TOKEN})")


def negotiate(accept_encoding: bytes, algorithms: tuple[str, ...]) -> str | None:
    """The coding to answer with (one of algorithms), or None for identity."""
    weights: dict[bytes, float] = {}
    for item in accept_encoding.split(b","):
        name, _, params = item.partition(b";")
        name = name.strip(b" \t").lower()
        if name:
            weights[_ALIASES.get(name, name)] = _qvalue(params)
    anything = weights.get(b"*", 0.0)
    best, best_weight = None, 0.0
    for algorithm in algorithms:
        weight = weights.get(algorithm.encode(), anything)
        if weight > best_weight:
            best, best_weight = algorithm, weight
    identity = weights.get(b"identity")
    if identity is not None and identity > best_weight:
        return None
    return best


def _qvalue(params: bytes) -> float:
    """The q parameter's weight; an unreadable or out-of-range weight counts as a refusal."""
    for param in params.split(b";"):
        key, _, value = param.partition(b"=")
        if key.strip(b" \t").lower() == b"q":
            try:
                weight = float(value.strip(b" \t"))
            except ValueError:
                return 0.0
            return weight if 0.0 <= weight <= 1.0 else 0.0
    return 1.0


def pattern_problem(pattern: object) -> str | None:
    """Why pattern is not a media type pattern (None when it is one)."""
    if not isinstance(pattern, str) or not _PATTERN.fullmatch(pattern.lower()):
        return f'expected a media type such as "text/html", "text/*" or "application/*+json", got {pattern!r}'
    return None


class MediaTypes:
    """A set of media type patterns ("text/html", "text/*", "application/*+json", "*/*"), matched without regexes."""

    __slots__ = ("anything", "exact", "majors", "suffixes")

    def __init__(self, patterns: Iterable[str]) -> None:
        exact: set[bytes] = set()
        majors: set[bytes] = set()
        suffixes: list[tuple[bytes, bytes]] = []
        self.anything = False
        for pattern in patterns:
            major, _, minor = pattern.lower().encode().partition(b"/")
            if major == b"*":
                self.anything = True
            elif minor == b"*":
                majors.add(major)
            elif minor.startswith(b"*+"):
                suffixes.append((major, minor[1:]))
            else:
                exact.add(major + b"/" + minor)
        self.exact = frozenset(exact)
        self.majors = frozenset(majors)
        self.suffixes = tuple(suffixes)

    def __contains__(self, content_type: bytes) -> bool:
        """Whether a Content-Type value (parameters and case ignored) matches a pattern."""
        media = content_type.partition(b";")[0].strip(b" \t").lower()
        major, slash, minor = media.partition(b"/")
        if not slash or not minor:
            return False
        if self.anything or media in self.exact or major in self.majors:
            return True
        return any(major == m and minor.endswith(suffix) for m, suffix in self.suffixes)
