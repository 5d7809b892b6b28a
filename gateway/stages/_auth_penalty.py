"""The per-client penalty for failed logins, as Appweb's defence does it.

Rules:
- A client (by address) may fail `free` times at no cost; each further
  failure waits base · 2^(n-1) seconds, capped at `cap`, before its 401 goes
  out. The count lasts until the client has been quiet for `window` seconds. The caller sleeps with
  asyncio.sleep, so only that request waits: other clients are untouched.
- A success clears the client's record while it is within its free
  failures (a user who mistyped); past them, only a quiet window does: an
  attacker who owns one account cannot log in between guesses to reset it.
- The table holds at most `max_clients` addresses, the least recently
  failing pushed out first, so a spray of addresses cannot grow memory.
"""

from __future__ import annotations

from collections import OrderedDict


class Penalty:
    """Failure counts per client address, and the delay each new failure has earned."""

    def __init__(
        self, free: int = 5, window: float = 60.0, base: float = 0.25, cap: float = 4.0, max_clients: int = 10_000
    ) -> None:
        self.free, self.window, self.base, self.cap = free, window, base, cap
        self.max_clients = max_clients
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()  # client → (last failure, count)

    def __len__(self) -> int:
        return len(self._failures)

    def failed(self, client: str, now: float) -> float:
        """Record a failure; the seconds to wait before answering it."""
        last, count = self._failures.pop(client, (now, 0))
        if now - last > self.window:
            count = 0
        count += 1
        self._failures[client] = (now, count)
        while len(self._failures) > self.max_clients:
            self._failures.popitem(last=False)
        excess = count - self.free
        return 0.0 if excess <= 0 else min(self.cap, self.base * 2 ** min(excess - 1, 16))

    def succeeded(self, client: str) -> None:
        record = self._failures.get(client)
        if record is not None and record[1] <= self.free:
            del self._failures[client]


# One table for the process: an attacker gains nothing by moving between routes.
SHARED = Penalty()
