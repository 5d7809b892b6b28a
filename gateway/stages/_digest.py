"""HTTP Digest (RFC 7616) without I/O: header parsing, responses, nonces, nonce counts.

Rules:
- Only qop=auth is offered and accepted (RFC 7616 §3.4.1); RFC 2069's
  qop-less form is refused, as it has no cnonce and no nonce count.
- A nonce is base64url(issued-at ns ‖ 8 random bytes ‖ HMAC-SHA256(secret,
  those 16 bytes ‖ realm)[:16]). The secret is made per process (again after
  a fork), so a nonce is only good where it was minted, and its nonce counts
  are only ever tracked there: a replay cannot succeed in another worker.
- A nonce whose MAC fails or whose age passed the lifetime is "stale": the
  caller answers 401 with stale=true when the response was otherwise right,
  and the client retries with a fresh nonce without asking the user again.
- Nonce counts: per nonce the highest nc seen plus a 64-bit window below it,
  as IPsec's anti-replay window, so parallel requests may arrive out of order
  but no count is accepted twice. The table is bounded; a nonce pushed out of
  it (or one older than the oldest pushed out) is treated as stale, so a
  flood can cost clients a round trip, never let a replay through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import struct
from collections import OrderedDict

# algorithm token → (hashlib name, is a -sess variant)
ALGORITHMS: dict[str, tuple[str, bool]] = {
    "MD5": ("md5", False),
    "MD5-sess": ("md5", True),
    "SHA-256": ("sha256", False),
    "SHA-256-sess": ("sha256", True),
}
BASE_ALGORITHM = {"MD5": "MD5", "MD5-sess": "MD5", "SHA-256": "SHA-256", "SHA-256-sess": "SHA-256"}

# One auth-param and its comma, after any empty list elements (RFC 9110 §5.6.1: "a, , b" is "a, b").
_PARAM_RE = re.compile(r'(?:\s*,)*\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|$)')
_NC_RE = re.compile(r"^[0-9a-fA-F]{8}$")
_NONCE_BYTES = 32  # 8 time + 8 random + 16 MAC
_WINDOW = 64

_secret_pid = -1
_secret = b""
_SHARED: dict[tuple[str, float], Nonces] = {}


def process_secret() -> bytes:
    """A random key for this process; a forked child makes its own on first use."""
    global _secret, _secret_pid
    if _secret_pid != os.getpid():
        _secret, _secret_pid = secrets.token_bytes(32), os.getpid()
    return _secret


def parse_params(text: str) -> dict[str, str] | None:
    """The auth-params of a credentials string (RFC 9110 §11.2), names lower-cased; None if malformed."""
    params: dict[str, str] = {}
    position = 0
    while position < len(text):
        if not text[position:].strip(" \t,"):
            break  # empty elements at the end
        match = _PARAM_RE.match(text, position)
        if match is None or match.end() == position:
            return None
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if name in params:
            return None
        params[name] = value
        position = match.end()
    return params


def quote(value: str) -> str:
    """A quoted-string for a challenge parameter."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def hash_hex(algorithm: str, data: str, encoding: str = "utf-8") -> str:
    return hashlib.new(ALGORITHMS[algorithm][0], data.encode(encoding)).hexdigest()


def ha1(algorithm: str, user: str, realm: str, password: str) -> str:
    """H(user:realm:password), what a users file stores (never the -sess form)."""
    return hash_hex(BASE_ALGORITHM[algorithm], f"{user}:{realm}:{password}")


def response(algorithm: str, stored_ha1: str, nonce: str, nc: str, cnonce: str, qop: str, method: str, uri: str) -> str:
    """The request-digest of RFC 7616 §3.4.1 from the stored HA1.

    The header's values are latin-1 text of the bytes the client sent (as
    every header is here), so they are hashed as those same bytes: a raw
    UTF-8 uri or cnonce then hashes as the client hashed it.
    """
    session_ha1 = stored_ha1
    if ALGORITHMS[algorithm][1]:
        session_ha1 = hash_hex(algorithm, f"{stored_ha1}:{nonce}:{cnonce}", "latin-1")
    ha2 = hash_hex(algorithm, f"{method}:{uri}", "latin-1")
    return hash_hex(algorithm, f"{session_ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}", "latin-1")


def shared_nonces(realm: str, lifetime: float) -> Nonces:
    """The process's one Nonces for a realm and lifetime: every route of that realm shares its nonce counts,
    so a header seen on one vhost cannot be replayed to the same path on another (a route with another
    lifetime takes none of these nonces: see Nonces)."""
    key = (realm, lifetime)
    nonces = _SHARED.get(key)
    if nonces is None:
        nonces = _SHARED[key] = Nonces(realm, lifetime)
    return nonces


class Nonces:
    """Mints and checks the nonces of one realm, and remembers which nonce counts were used."""

    def __init__(self, realm: str, lifetime: float, max_tracked: int = 10_000) -> None:
        # A nonce names its realm and lifetime in its MAC: one minted for another table's lifetime is not
        # this table's (its nonce counts are not tracked here), so it cannot be replayed through it.
        self._realm = realm.encode("utf-8") + struct.pack(">d", lifetime)
        self._lifetime_ns = int(lifetime * 1e9)
        self._max_tracked = max_tracked
        self._seen: OrderedDict[str, tuple[int, int, int]] = OrderedDict()  # nonce → (issued, high, window)
        self._forgotten_before = 0  # issued-at of the newest nonce pushed out of _seen

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(process_secret(), body + self._realm, hashlib.sha256).digest()[:16]

    def mint(self, now_ns: int) -> str:
        body = struct.pack(">Q", now_ns) + secrets.token_bytes(8)
        return base64.urlsafe_b64encode(body + self._mac(body)).decode("ascii")

    def issued_at(self, nonce: str, now_ns: int) -> int | None:
        """When a nonce of ours was minted, or None if it is not ours or is past its lifetime."""
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            return None
        if len(raw) != _NONCE_BYTES or not hmac.compare_digest(raw[16:], self._mac(raw[:16])):
            return None
        (issued,) = struct.unpack(">Q", raw[:8])
        return issued if 0 <= now_ns - issued <= self._lifetime_ns else None

    def use(self, nonce: str, issued: int, nc_text: str, now_ns: int) -> bool:
        """Record nonce count nc for nonce; False if it was used before (a replay) or cannot be known."""
        if not _NC_RE.match(nc_text):
            return False
        nc = int(nc_text, 16)
        entry = self._seen.get(nonce)
        if entry is None:
            if issued <= self._forgotten_before or nc == 0:
                return False
            self._remember(nonce, (issued, nc, 1), now_ns)
            return True
        _, high, window = entry
        if nc > high:
            shift = nc - high
            window = ((window << shift) | 1) & ((1 << _WINDOW) - 1) if shift < _WINDOW else 1
            self._seen[nonce] = (issued, nc, window)
            return True
        offset = high - nc
        if offset >= _WINDOW or window & (1 << offset):
            return False
        self._seen[nonce] = (issued, high, window | (1 << offset))
        return True

    def _remember(self, nonce: str, entry: tuple[int, int, int], now_ns: int) -> None:
        seen = self._seen
        seen[nonce] = entry
        while seen:  # expired nonces are refused by age anyway: drop them without losing anything
            oldest = next(iter(seen.values()))
            if now_ns - oldest[0] <= self._lifetime_ns and len(seen) <= self._max_tracked:
                break
            _, (issued, _, _) = seen.popitem(last=False)
            if now_ns - issued <= self._lifetime_ns:
                self._forgotten_before = max(self._forgotten_before, issued)
