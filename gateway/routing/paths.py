"""Route paths: "/prefix" (segment-aware), "=/exact" and "~regex", compiled once at load."""

from __future__ import annotations

import re
from typing import Any

PREFIX, EXACT, REGEX = "prefix", "exact", "regex"


def parse_path(spec: str) -> tuple[str, str]:
    """(kind, pattern) of a route path; ValueError says what is wrong."""
    if spec.startswith("="):
        if not spec[1:].startswith("/"):
            raise ValueError(f"an exact path starts with '=/', as in '=/health', got {spec!r}")
        return EXACT, spec[1:]
    if spec.startswith("~"):
        try:
            re.compile(spec[1:])
        except re.error as exc:
            raise ValueError(f"{spec!r} is not a valid regular expression: {exc}") from None
        return REGEX, spec[1:]
    if not spec.startswith("/"):
        raise ValueError(f"a path starts with '/' (prefix), '=/' (exact) or '~' (regex), got {spec!r}")
    return PREFIX, spec


class PathMatcher:
    """Matches request paths for one route; `mount` is the prefix a mounted app sits under."""

    __slots__ = ("everything", "kind", "mount", "pattern", "prefix", "regex", "spec")

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.kind, self.pattern = parse_path(spec)
        self.prefix = self.pattern.rstrip("/") if self.kind == PREFIX else ""
        self.mount = self.prefix
        self.regex = re.compile(self.pattern) if self.kind == REGEX else None
        self.everything = self.kind == PREFIX and not self.prefix  # "/": the hot path skips calling match()

    def match(self, path: str) -> Any:
        """Truthy when the path is this route's: True, or the re.Match of a regex route."""
        if self.kind == PREFIX:
            prefix = self.prefix
            return not prefix or path == prefix or (path.startswith(prefix) and path[len(prefix)] == "/")
        if self.kind == EXACT:
            return path == self.pattern
        assert self.regex is not None
        return self.regex.search(path)

    def covers(self, other: PathMatcher) -> bool:
        """True when every path `other` matches is matched here first (a shadowed route)."""
        if self.kind != PREFIX:
            return self.kind == EXACT and other.kind == EXACT and self.pattern == other.pattern
        if other.kind == REGEX:
            return not self.prefix
        target = other.prefix if other.kind == PREFIX else other.pattern
        return bool(self.match(target)) and (other.kind == EXACT or len(target) >= len(self.prefix))

    def describe(self) -> str:
        return {PREFIX: "prefix", EXACT: "exact", REGEX: "regex"}[self.kind]
