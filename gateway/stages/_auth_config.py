"""`auth = {...}` (or a list of them) from the config to ready schemes, reading the user files once.

Every problem is reported with its key path and what to do about it; a
scheme with problems is left out (the config is refused anyway).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.config.units import parse_duration
from gateway.config.validate import did_you_mean
from gateway.stages import Report
from gateway.stages._auth_schemes import BasicScheme, DigestScheme, Scheme
from gateway.stages._digest import ALGORITHMS, BASE_ALGORITHM
from gateway.stages._htpasswd import FileProblem, read_htdigest, read_htgroup, read_htpasswd
from gateway.types import HandlerContext

T = TypeVar("T")
KNOWN_KEYS = ("type", "realm", "users", "algorithm", "require", "groups", "pass_authorization", "nonce_lifetime")
TYPES = ("basic", "digest")
DEFAULT_REALM = "restricted"
_EXAMPLE = '{ type = "basic", realm = "staff", users = "path/.htpasswd" }'


def parse_schemes(value: object, context: HandlerContext, report: Report) -> list[Scheme] | None:
    """The schemes of one route's `auth`; None when auth is off (false or absent) or broken."""
    if value is None or value is False:
        return None
    if isinstance(value, dict):
        entries, prefixes = [value], ["auth"]
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        entries, prefixes = value, [f"auth[{i}]" for i in range(len(value))]
    else:
        report("auth", f"expected a table such as {_EXAMPLE}, a list of them, or false")
        return None
    schemes: list[Scheme] = []
    broken = False
    for entry, prefix in zip(entries, prefixes, strict=True):
        scheme = _parse_entry(entry, prefix, context, report)
        if scheme is None:
            broken = True
        elif any(other.name == scheme.name for other in schemes):
            report(f"{prefix}.type", f"{scheme.name!r} is configured twice; offer each scheme once")
            broken = True
        else:
            schemes.append(scheme)
    return None if broken else schemes


def _parse_entry(entry: dict[str, Any], prefix: str, context: HandlerContext, report: Report) -> Scheme | None:
    problems: list[tuple[str, str]] = []

    def problem(key: str, message: str) -> None:
        problems.append((key, message))
        report(f"{prefix}.{key}", message)

    for key in entry:
        if key not in KNOWN_KEYS:
            problem(key, f"unknown key{did_you_mean(key, KNOWN_KEYS)}; known keys: {', '.join(KNOWN_KEYS)}")
    kind = entry.get("type")
    if kind not in TYPES:
        got = "missing" if kind is None else f"got {kind!r}"
        hint = did_you_mean(kind, TYPES) if isinstance(kind, str) else ""
        problem("type", f'expected "basic" or "digest", {got}{hint}')
        return None
    realm = _realm(entry, kind, problem)
    users_path = _path(entry, "users", context, problem)
    require = _strings(entry, "require", problem)
    groups_path = _path(entry, "groups", context, problem) if "groups" in entry else None
    passing = entry.get("pass_authorization", False)
    if not isinstance(passing, bool):
        problem("pass_authorization", f"expected true or false, got {passing!r}")
    algorithms: tuple[str, ...] = ()
    lifetime = 300.0
    if kind == "digest":
        algorithms = _algorithms(entry, problem)
        lifetime = _lifetime(entry, problem)
    else:
        for key in ("algorithm", "nonce_lifetime"):
            if key in entry:
                problem(key, "only digest has this key; basic takes type, realm, users, require, groups")
    if problems or realm is None or users_path is None:
        return None
    if kind == "basic":
        basic_users = _read(lambda: read_htpasswd(users_path), problem)
        if basic_users is None:
            return None
        allowed = _allowed(require, groups_path, set(basic_users), problem)
        basic = None if problems else BasicScheme(realm, basic_users, allowed, passing)
        return _identified(basic, users_path)
    ha1s = _read(lambda: read_htdigest(users_path, realm), problem)
    if ha1s is None:
        return None
    _check_algorithms(ha1s, algorithms, realm, users_path, problem)
    known = {user for table in ha1s.values() for user in table}
    allowed = _allowed(require, groups_path, known, problem)
    digest = None if problems else DigestScheme(realm, algorithms, ha1s, allowed, passing, lifetime)
    return _identified(digest, users_path)


def _identified(scheme: Scheme | None, users_path: Path) -> Scheme | None:
    """Who this scheme's checks vouch for: its kind, realm and user file (two routes may share one)."""
    if scheme is not None:
        scheme.identity = (scheme.name, scheme.realm, str(users_path))
    return scheme


def _realm(entry: dict[str, Any], kind: str, problem: Report) -> str | None:
    realm = entry.get("realm", DEFAULT_REALM if kind == "basic" else None)
    if realm is None:
        problem("realm", "missing: digest needs the realm its users file was made for (htdigest FILE REALM USER)")
        return None
    if not isinstance(realm, str) or not realm or not all(" " <= c <= "~" for c in realm):
        problem("realm", f"expected a non-empty string of printable ASCII (it travels in a header), got {realm!r}")
        return None
    if kind == "digest" and ":" in realm:
        problem("realm", "a digest realm cannot contain ':' (htdigest lines are user:realm:hash)")
        return None
    return realm


def _path(entry: dict[str, Any], key: str, context: HandlerContext, problem: Report) -> Path | None:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        what = "an htpasswd or htdigest file" if key == "users" else "an htgroup file"
        got = "missing" if value is None else f"got {value!r}"
        problem(key, f"expected the path of {what}, {got} (make one with `gateway passwd FILE USER`)")
        return None
    return context.resolve(value)


def _strings(entry: dict[str, Any], key: str, problem: Report) -> tuple[str, ...]:
    value = entry.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        problem(key, f'expected a list of user names and "group:NAME" entries, got {value!r}')
        return ()
    return tuple(value)


def _algorithms(entry: dict[str, Any], problem: Report) -> tuple[str, ...]:
    value = entry.get("algorithm", "MD5")
    names = [value] if isinstance(value, str) else value
    by_lower = {name.lower(): name for name in ALGORITHMS}
    if not isinstance(names, list) or not names or not all(isinstance(name, str) for name in names):
        problem("algorithm", f"expected one of {', '.join(map(repr, ALGORITHMS))} or a list of them, got {value!r}")
        return ()
    chosen: list[str] = []
    for name in names:
        known = by_lower.get(name.lower())
        if known is None:
            hint = did_you_mean(name, ALGORITHMS)
            problem("algorithm", f"unknown algorithm {name!r}{hint}; known: {', '.join(ALGORITHMS)}")
        elif known not in chosen:
            chosen.append(known)
    return tuple(chosen)


def _lifetime(entry: dict[str, Any], problem: Report) -> float:
    try:
        lifetime = parse_duration(entry.get("nonce_lifetime", 300))
    except ValueError as exc:
        problem("nonce_lifetime", str(exc))
        return 300.0
    if lifetime < 1:
        problem("nonce_lifetime", "must be at least 1 second")
    return lifetime


def _read(read: Callable[[], T], problem: Report) -> T | None:
    try:
        return read()
    except FileProblem as exc:
        problem("users", str(exc))
        return None


def _check_algorithms(
    ha1s: dict[str, dict[str, str]], algorithms: tuple[str, ...], realm: str, path: Path, problem: Report
) -> None:
    """Each offered algorithm needs HA1s of its hash: htdigest writes MD5 only."""
    for base in sorted({BASE_ALGORITHM[name] for name in algorithms}):
        if not ha1s[base]:
            problem(
                "users",
                f"{path} has no {base} entries for realm {realm!r} (htdigest writes MD5 only); add them with "
                f"`gateway passwd --digest --realm {realm!r} --algorithm {base} {path} USER`",
            )


def _allowed(
    require: tuple[str, ...], groups_path: Path | None, known: set[str], problem: Report
) -> frozenset[str] | None:
    """The users `require` lets in (groups expanded now, so a request does one set lookup); None: anyone valid."""
    groups: dict[str, frozenset[str]] = {}
    if groups_path is not None:  # read even when unused, so a wrong path shows now
        try:
            groups = read_htgroup(groups_path)
        except FileProblem as exc:
            problem("groups", str(exc))
            return None
    if not require:
        return None
    if groups_path is None and any(item.startswith("group:") for item in require):
        problem("require", 'names a group, so it needs groups = "path/.htgroup"')
        return None
    allowed: set[str] = set()
    for item in require:
        if item.startswith("group:"):
            name = item[len("group:") :]
            if name not in groups:
                problem("require", f"no group {name!r} in {groups_path}{did_you_mean(name, groups)}")
            allowed |= groups.get(name, frozenset())
        elif item not in known:
            problem("require", f"user {item!r} is not in the users file{did_you_mean(item, known)}")
        else:
            allowed.add(item)
    return frozenset(allowed)
