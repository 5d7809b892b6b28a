"""Answers to "what does this request path name on disk?", kept for a second per raw path.

A stat and a realpath per request would be most of a small script's cost in
the gateway; a file that appears, goes or changes is seen within REVALIDATE
seconds. The table is bounded: when full it is emptied, which costs one
lookup per path again, never memory.
"""

from __future__ import annotations

from collections.abc import Callable
from time import monotonic
from typing import Generic, TypeVar

T = TypeVar("T")
REVALIDATE = 1.0
ENTRIES = 10_000


class LookupCache(Generic[T]):
    """lookup(raw_path) results, each trusted for REVALIDATE seconds."""

    def __init__(self, lookup: Callable[[bytes], T]) -> None:
        self.lookup = lookup
        self.entries: dict[bytes, tuple[float, T]] = {}

    def get(self, raw_path: bytes) -> T:
        now = monotonic()
        cached = self.entries.get(raw_path)
        if cached is not None and now - cached[0] < REVALIDATE:
            return cached[1]
        answer = self.lookup(raw_path)
        if len(self.entries) >= ENTRIES:
            self.entries.clear()
        self.entries[raw_path] = (now, answer)
        return answer
