"""SHA-crypt ($5$, $6$) and MD5-crypt ($1$, $apr1$) as htpasswd writes them.

Python's crypt module is gone in 3.13 and passlib is unmaintained, so these
are the published algorithms written out: Ulrich Drepper's "Unix crypt using
SHA-256 and SHA-512" (the spec glibc and Apache's apr follow) and Poul-Henning
Kamp's MD5-crypt (apr1 is the same with the magic "$apr1$"). The tests check
them against hashes made by the real `htpasswd` and `openssl passwd`.

Both are slow loops over hashlib by design; callers run them off the event loop.
"""

from __future__ import annotations

import hashlib
import re

_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Drepper's spec: rounds default to 5000 and clamp to [1000, 999999999].
SHA_ROUNDS_DEFAULT = 5000
SHA_ROUNDS_MIN = 1000
SHA_ROUNDS_MAX = 999_999_999

_SHA_RE = re.compile(
    r"^\$(?P<id>[56])\$(?:rounds=(?P<rounds>[0-9]+)\$)?(?P<salt>[^$]{0,16})[^$]*\$(?P<hash>[./0-9A-Za-z]+)$"
)
_MD5_RE = re.compile(r"^(?P<magic>\$1\$|\$apr1\$)(?P<salt>[^$]{0,8})[^$]*\$(?P<hash>[./0-9A-Za-z]{22})$")
_SHA_LENGTHS = {"5": 43, "6": 86}

# The byte order in which each algorithm spreads its digest over the output characters.
_SHA256_ORDER = ((0, 10, 20), (21, 1, 11), (12, 22, 2), (3, 13, 23), (24, 4, 14),
                 (15, 25, 5), (6, 16, 26), (27, 7, 17), (18, 28, 8), (9, 19, 29))  # fmt: skip
_SHA512_ORDER = ((0, 21, 42), (22, 43, 1), (44, 2, 23), (3, 24, 45), (25, 46, 4),
                 (47, 5, 26), (6, 27, 48), (28, 49, 7), (50, 8, 29), (9, 30, 51),
                 (31, 52, 10), (53, 11, 32), (12, 33, 54), (34, 55, 13), (56, 14, 35),
                 (15, 36, 57), (37, 58, 16), (59, 17, 38), (18, 39, 60), (40, 61, 19),
                 (62, 20, 41))  # fmt: skip
_MD5_ORDER = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))


def _b64(b2: int, b1: int, b0: int, count: int) -> str:
    word = (b2 << 16) | (b1 << 8) | b0
    out = []
    for _ in range(count):
        out.append(_ALPHABET[word & 0x3F])
        word >>= 6
    return "".join(out)


def _repeat(block: bytes, length: int) -> bytes:
    """block repeated and cut to length bytes (the spec's P and S sequences)."""
    return (block * (length // len(block) + 1))[:length]


def parse_sha_crypt(stored: str) -> tuple[str, int | None, str] | None:
    """("5"|"6", rounds as written or None, salt) of a well-formed SHA-crypt hash, else None."""
    match = _SHA_RE.match(stored)
    if match is None or len(match["hash"]) != _SHA_LENGTHS[match["id"]]:
        return None
    rounds = int(match["rounds"]) if match["rounds"] is not None else None
    return match["id"], rounds, match["salt"]


def sha_crypt(password: bytes, ident: str, salt: str, rounds: int | None = None) -> str:
    """The full "$5$..." or "$6$..." string for password (Drepper's algorithm, steps 1-22)."""
    name = "sha256" if ident == "5" else "sha512"
    salt_bytes = salt.encode("ascii")[:16]
    count = SHA_ROUNDS_DEFAULT if rounds is None else min(max(rounds, SHA_ROUNDS_MIN), SHA_ROUNDS_MAX)
    size = hashlib.new(name).digest_size
    alternate = hashlib.new(name, password + salt_bytes + password).digest()
    a = hashlib.new(name, password + salt_bytes)
    a.update(_repeat(alternate, len(password)))
    n = len(password)
    while n:
        a.update(alternate if n & 1 else password)
        n >>= 1
    digest = a.digest()
    p = _repeat(hashlib.new(name, password * len(password)).digest(), len(password))
    s = _repeat(hashlib.new(name, salt_bytes * (16 + digest[0])).digest(), len(salt_bytes))
    for i in range(count):
        h = hashlib.new(name, p if i & 1 else digest)
        if i % 3:
            h.update(s)
        if i % 7:
            h.update(p)
        h.update(digest if i & 1 else p)
        digest = h.digest()
    encoded = "".join(_b64(digest[x], digest[y], digest[z], 4) for x, y, z in _sha_order(size))
    encoded += _b64(0, digest[31], digest[30], 3) if size == 32 else _b64(0, 0, digest[63], 2)
    prefix = f"${ident}$" + (f"rounds={count}$" if rounds is not None else "")
    return f"{prefix}{salt_bytes.decode('ascii')}${encoded}"


def _sha_order(size: int) -> tuple[tuple[int, int, int], ...]:
    return _SHA256_ORDER if size == 32 else _SHA512_ORDER


def parse_md5_crypt(stored: str) -> tuple[str, str] | None:
    """(magic, salt) of a well-formed "$1$" or "$apr1$" hash, else None."""
    match = _MD5_RE.match(stored)
    return None if match is None else (match["magic"], match["salt"])


def md5_crypt(password: bytes, magic: str, salt: str) -> str:
    """The full "$apr1$salt$hash" (or "$1$...") string for password (Kamp's MD5-crypt)."""
    salt_bytes = salt.encode("ascii")[:8]
    alternate = hashlib.md5(password + salt_bytes + password).digest()
    ctx = hashlib.md5(password + magic.encode("ascii") + salt_bytes)
    ctx.update(_repeat(alternate, len(password)))
    n = len(password)
    while n:
        ctx.update(b"\0" if n & 1 else password[:1])
        n >>= 1
    digest = ctx.digest()
    for i in range(1000):
        h = hashlib.md5(password if i & 1 else digest)
        if i % 3:
            h.update(salt_bytes)
        if i % 7:
            h.update(password)
        h.update(digest if i & 1 else password)
        digest = h.digest()
    encoded = "".join(_b64(digest[x], digest[y], digest[z], 4) for x, y, z in _MD5_ORDER)
    return f"{magic}{salt_bytes.decode('ascii')}${encoded}{_b64(0, 0, digest[11], 2)}"
