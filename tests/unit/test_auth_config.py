"""auth's config problems: each one reported with its key path and a message a person can act on."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from gateway.stages import auth
from gateway.types import HandlerContext

BCRYPT_LINE = "alice:$2y$05$vq.IEYKyBESxcAreAWume.kURvytZcW87udPX.KSMW3jRKiXVl4u6\n"  # htpasswd -nbB alice secret


class Found(list[tuple[str, str]]):
    def append_pair(self, key: str, message: str) -> None:
        self.append((key, message))


def check(folder: Path, value: Any) -> tuple[auth.AuthOptions | None, list[tuple[str, str]]]:
    found = Found()
    options = auth.parse({"auth": value}, HandlerContext(folder, "vhost[0] route[0] '/'", ""), found.append_pair)
    if found:
        assert options is None
    return options, list(found)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / ".htpasswd").write_text(BCRYPT_LINE)
    ha1 = hashlib.md5(b"alice:admin:secret").hexdigest()
    (tmp_path / ".htdigest").write_text(f"alice:admin:{ha1}\n")
    (tmp_path / ".htgroup").write_text("admins: alice\n")
    return tmp_path


@pytest.mark.parametrize("value", [None, False])
def test_off(folder: Path, value: Any) -> None:
    assert check(folder, value) == (None, [])


def test_minimal_basic_and_digest(folder: Path) -> None:
    options, found = check(folder, {"type": "basic", "users": ".htpasswd"})
    assert found == [] and options is not None
    assert options.schemes[0].realm == "restricted" and options.where == "vhost[0] route[0] '/'"
    options, found = check(folder, {"type": "digest", "realm": "admin", "users": str(folder / ".htdigest")})
    assert found == [] and options is not None
    assert options.schemes[0].allowed is None


@pytest.mark.parametrize(
    ("value", "key", "words"),
    [
        (True, "auth", "expected a table"),
        ("basic", "auth", "expected a table"),
        ([], "auth", "expected a table"),
        ({"users": ".htpasswd"}, "auth.type", 'expected "basic" or "digest", missing'),
        ({"type": "basci", "users": ".htpasswd"}, "auth.type", "got 'basci' (did you mean 'basic'?)"),
        ({"type": "basic", "users": ".htpasswd", "relm": "x"}, "auth.relm", "unknown key (did you mean 'realm'?)"),
        ({"type": "basic"}, "auth.users", "expected the path of an htpasswd or htdigest file, missing"),
        ({"type": "basic", "users": "missing"}, "auth.users", "missing does not exist"),
        ({"type": "basic", "users": ".htpasswd", "realm": 'a"b\n'}, "auth.realm", "printable ASCII"),
        ({"type": "basic", "users": ".htpasswd", "realm": ""}, "auth.realm", "non-empty"),
        ({"type": "basic", "users": ".htpasswd", "algorithm": "MD5"}, "auth.algorithm", "only digest"),
        ({"type": "basic", "users": ".htpasswd", "pass_authorization": "yes"}, "auth.pass_authorization", "true or"),
        ({"type": "basic", "users": ".htpasswd", "require": [1]}, "auth.require", "expected a list of user names"),
        ({"type": "basic", "users": ".htpasswd", "require": ["alcie"]}, "auth.require", "(did you mean 'alice'?)"),
        ({"type": "basic", "users": ".htpasswd", "require": ["group:admins"]}, "auth.require", "needs groups ="),
        (
            {"type": "basic", "users": ".htpasswd", "require": ["group:admin"], "groups": ".htgroup"},
            "auth.require",
            "no group 'admin' in",
        ),
        (
            {"type": "basic", "users": ".htpasswd", "require": ["group:admins"], "groups": "nope"},
            "auth.groups",
            "does not exist",
        ),
        ({"type": "basic", "users": ".htpasswd", "groups": "nope"}, "auth.groups", "does not exist"),
        ({"type": "digest", "users": ".htdigest"}, "auth.realm", "missing: digest needs the realm"),
        ({"type": "digest", "users": ".htdigest", "realm": "a:b"}, "auth.realm", "cannot contain ':'"),
        ({"type": "digest", "users": ".htdigest", "realm": "staff"}, "auth.users", "no user in realm 'staff'"),
        (
            {"type": "digest", "users": ".htdigest", "realm": "admin", "algorithm": "SHA256"},
            "auth.algorithm",
            "unknown algorithm 'SHA256' (did you mean 'SHA-256'?)",
        ),
        (
            {"type": "digest", "users": ".htdigest", "realm": "admin", "algorithm": "SHA-256"},
            "auth.users",
            "no SHA-256 entries for realm 'admin' (htdigest writes MD5 only); add them with "
            "`gateway passwd --digest --realm 'admin' --algorithm SHA-256",
        ),
        (
            {"type": "digest", "users": ".htdigest", "realm": "admin", "nonce_lifetime": "soon"},
            "auth.nonce_lifetime",
            "expected seconds",
        ),
        ({"type": "digest", "users": ".htpasswd", "realm": "admin"}, "auth.users", "expected user:realm:HA1"),
        ({"type": "basic", "users": ".htdigest"}, "auth.users", "an htdigest line (user:realm:HA1); use it with type"),
    ],
)
def test_problems(folder: Path, value: Any, key: str, words: str) -> None:
    options, found = check(folder, value)
    assert options is None
    keys = [k for k, _ in found]
    assert key in keys, found
    message = dict(found)[key]
    assert words in message, message


def test_plaintext_refused_at_parse(folder: Path) -> None:
    (folder / ".htpasswd").write_text(BCRYPT_LINE + "bob:hunter2\n")
    options, found = check(folder, {"type": "basic", "users": ".htpasswd"})
    assert options is None
    assert found == [
        (
            "auth.users",
            f"{folder / '.htpasswd'} line 2 (user 'bob'): a password in plain text, which is refused; "
            "hash it with `gateway passwd FILE USER` (bcrypt) or `htpasswd -B FILE USER`",
        )
    ]


def test_list_form_key_paths_and_duplicates(folder: Path) -> None:
    options, found = check(
        folder,
        [{"type": "digest", "realm": "admin", "users": ".htdigest"}, {"type": "basic", "users": ".htpasswd"}],
    )
    assert found == [] and options is not None
    assert [scheme.name for scheme in options.schemes] == ["digest", "basic"]
    _, found = check(folder, [{"type": "basic", "users": ".htpasswd"}, {"type": "basic", "users": ".htpasswd"}])
    assert found == [("auth[1].type", "'basic' is configured twice; offer each scheme once")]
    _, found = check(folder, [{"type": "basic", "users": ".htpasswd"}, {"type": "digest", "users": ".htdigest"}])
    assert [key for key, _ in found] == ["auth[1].realm"]


def test_algorithms_accept_any_case_and_lists(folder: Path) -> None:
    ha1 = hashlib.sha256(b"alice:admin:secret").hexdigest()
    with (folder / ".htdigest").open("a") as out:
        out.write(f"alice:admin:{ha1}\n")
    options, found = check(
        folder, {"type": "digest", "realm": "admin", "users": ".htdigest", "algorithm": ["sha-256", "md5-SESS"]}
    )
    assert found == [] and options is not None
    assert options.schemes[0].algorithms == ("SHA-256", "MD5-sess")  # type: ignore[attr-defined]


def test_require_expands_groups_at_load(folder: Path) -> None:
    (folder / ".htgroup").write_text("admins: alice carol\nstaff: dave\n")
    options, found = check(
        folder, {"type": "basic", "users": ".htpasswd", "require": ["group:admins"], "groups": ".htgroup"}
    )
    assert found == [] and options is not None
    assert options.schemes[0].allowed == frozenset({"alice", "carol"})
