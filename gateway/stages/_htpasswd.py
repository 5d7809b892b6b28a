"""Apache's user and group files, read once at config load: htpasswd, htdigest, htgroup.

Rules:
- Blank lines and lines starting with "#" are skipped; every other line must
  parse, or the file is refused with the line number (a config that loads
  half a user file would lock people out in ways nobody can see).
- htpasswd hashes gateway verifies: bcrypt ($2y$, $2b$, $2a$), SHA-crypt
  ($5$, $6$), MD5-crypt ($apr1$, $1$) and {SHA}. Plain text and DES crypt
  (htpasswd -p, -d) are refused at load: they are what an attacker reads.
- htdigest lines are user:realm:HA1 in hex. 32 hex digits are MD5 (what
  Apache's htdigest writes); 64 are SHA-256 (what `gateway passwd --digest
  --algorithm SHA-256` writes): the length says the algorithm, so one file
  can hold both for the same user.
- htgroup lines are "group: user user ..."; a group on several lines is the union.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from dataclasses import dataclass
from pathlib import Path

import bcrypt

from gateway.stages._htcrypt import md5_crypt, parse_md5_crypt, parse_sha_crypt, sha_crypt

# Pure-Python SHA-crypt costs ~4 µs a round: past this a single check takes seconds.
MAX_SHA_ROUNDS = 1_000_000
BCRYPT_MAX_PASSWORD = 72  # bytes bcrypt reads; Apache's htpasswd ignores the rest too
_BCRYPT_RE = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")
_DES_RE = re.compile(r"^[./0-9A-Za-z]{13}$")
_HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{64})$")
HASH_HINT = "hash it with `gateway passwd FILE USER` (bcrypt) or `htpasswd -B FILE USER`"


class FileProblem(Exception):
    """A user or group file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class StoredHash:
    """One htpasswd entry's hash, its kind decided at load so a check does not re-parse."""

    kind: str  # "bcrypt" | "sha-crypt" | "md5-crypt" | "sha1"
    value: str

    @property
    def slow(self) -> bool:
        """Whether checking it takes long enough to belong off the event loop."""
        return self.kind != "sha1"

    def verify(self, password: bytes) -> bool:
        """Whether password matches (constant-time comparison of the results)."""
        if self.kind == "bcrypt":
            return bcrypt.checkpw(password[:BCRYPT_MAX_PASSWORD], self.value.encode("ascii"))
        if self.kind == "sha1":
            computed = "{SHA}" + base64.b64encode(hashlib.sha1(password).digest()).decode("ascii")
        elif self.kind == "sha-crypt":
            ident, rounds, salt = parse_sha_crypt(self.value) or ("", None, "")
            computed = sha_crypt(password, ident, salt, rounds)
        else:
            magic, salt = parse_md5_crypt(self.value) or ("", "")
            computed = md5_crypt(password, magic, salt)
        return hmac.compare_digest(computed.encode("ascii"), self.value.encode("ascii"))


def classify(stored: str) -> StoredHash:
    """The StoredHash for an htpasswd hash field, or FileProblem saying what is wrong with it."""
    if stored.startswith(("$2y$", "$2b$", "$2a$")):
        if not _BCRYPT_RE.match(stored):
            raise FileProblem("a malformed bcrypt hash (expected $2y$NN$ and 53 characters)")
        return StoredHash("bcrypt", stored)
    if stored.startswith(("$5$", "$6$")):
        parsed = parse_sha_crypt(stored)
        if parsed is None:
            raise FileProblem("a malformed SHA-crypt hash")
        if parsed[1] is not None and parsed[1] > MAX_SHA_ROUNDS:
            raise FileProblem(f"SHA-crypt with {parsed[1]} rounds (at most {MAX_SHA_ROUNDS} are checked)")
        return StoredHash("sha-crypt", stored)
    if stored.startswith(("$apr1$", "$1$")):
        if parse_md5_crypt(stored) is None:
            raise FileProblem("a malformed MD5-crypt hash")
        return StoredHash("md5-crypt", stored)
    if stored.startswith("{SHA}"):
        try:
            raw = base64.b64decode(stored[5:], validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) != 20:
            raise FileProblem("a malformed {SHA} hash (expected base64 of 20 bytes)")
        return StoredHash("sha1", stored)
    if _DES_RE.match(stored):
        raise FileProblem(f"DES crypt (htpasswd -d), which is refused: it keeps only 8 characters; {HASH_HINT}")
    if stored.startswith("$"):
        raise FileProblem(f"an unknown hash format {stored.split('$')[1]!r}; {HASH_HINT}")
    raise FileProblem(f"a password in plain text, which is refused; {HASH_HINT}")


def _lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of the lines that are not blank or comments."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileProblem(f"{path} does not exist") from None
    except UnicodeDecodeError:
        raise FileProblem(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise FileProblem(f"cannot read {path}: {exc.strerror or exc}") from None
    return [
        (number, line.rstrip("\r"))
        for number, line in enumerate(text.split("\n"), 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def read_htpasswd(path: Path) -> dict[str, StoredHash]:
    """user → hash; FileProblem (with the line number) for the first line that cannot be used."""
    users: dict[str, StoredHash] = {}
    for number, line in _lines(path):
        user, sep, stored = line.partition(":")
        if not sep or not user:
            raise FileProblem(f"{path} line {number}: expected user:hash")
        if user in users:
            raise FileProblem(f"{path} line {number}: user {user!r} appears twice")
        if _HEX_RE.match(stored.rpartition(":")[2].strip()) and ":" in stored:
            raise FileProblem(f'{path} line {number}: an htdigest line (user:realm:HA1); use it with type = "digest"')
        try:
            users[user] = classify(stored.strip())
        except FileProblem as exc:
            raise FileProblem(f"{path} line {number} (user {user!r}): {exc}") from None
    if not users:
        raise FileProblem(f"{path} holds no users")
    return users


def read_htdigest(path: Path, realm: str) -> dict[str, dict[str, str]]:
    """{"MD5": {user: HA1}, "SHA-256": {user: HA1}} for realm; lines of other realms are skipped."""
    found: dict[str, dict[str, str]] = {"MD5": {}, "SHA-256": {}}
    realms: set[str] = set()
    for number, line in _lines(path):
        fields = line.split(":")
        if len(fields) != 3 or not fields[0] or not _HEX_RE.match(fields[2].strip()):
            raise FileProblem(f"{path} line {number}: expected user:realm:HA1 (32 hex digits for MD5, 64 for SHA-256)")
        user, line_realm, ha1 = fields[0], fields[1], fields[2].strip().lower()
        realms.add(line_realm)
        if line_realm != realm:
            continue
        table = found["MD5" if len(ha1) == 32 else "SHA-256"]
        if user in table:
            raise FileProblem(f"{path} line {number}: user {user!r} appears twice in realm {realm!r}")
        table[user] = ha1
    if not realms:
        raise FileProblem(f"{path} holds no users")
    if not found["MD5"] and not found["SHA-256"]:
        listed = ", ".join(repr(r) for r in sorted(realms))
        raise FileProblem(f"{path} has no user in realm {realm!r} (its realms: {listed})")
    return found


def read_htgroup(path: Path) -> dict[str, frozenset[str]]:
    """group → its members."""
    groups: dict[str, set[str]] = {}
    for number, line in _lines(path):
        name, sep, members = line.partition(":")
        if not sep or not name.strip():
            raise FileProblem(f"{path} line {number}: expected 'group: user user ...'")
        groups.setdefault(name.strip(), set()).update(members.split())
    return {name: frozenset(members) for name, members in groups.items()}
