"""htpasswd, htdigest and htgroup files as Apache's own tools write them, read and verified without a server."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from gateway.stages._htcrypt import md5_crypt, parse_md5_crypt, parse_sha_crypt, sha_crypt
from gateway.stages._htpasswd import FileProblem, classify, read_htdigest, read_htgroup, read_htpasswd
from tests.conftest import require_program

PASSWORDS = ["secret", "", "x" * 80, "pässwörd with spaces", "colon:inside"]

# htpasswd's flags for each format it writes (-2 is SHA-256 crypt, -5 SHA-512 crypt).
FORMATS = {"bcrypt": "-B", "sha256-crypt": "-2", "sha512-crypt": "-5", "apr1": "-m", "sha1": "-s"}


def htpasswd_line(flag: str, user: str, password: str, *extra: str) -> str:
    htpasswd = require_program("htpasswd")
    done = subprocess.run(
        [htpasswd, "-ni" + flag.lstrip("-"), *extra, user],
        input=password,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("kind", FORMATS)
def test_every_htpasswd_format_verifies(kind: str, password: str) -> None:
    line = htpasswd_line(FORMATS[kind], "alice", password)
    user, stored = line.split(":", 1)
    hashed = classify(stored)
    assert user == "alice"
    assert hashed.verify(password.encode())
    if kind != "bcrypt" or len(password) < 72:  # bcrypt reads 72 bytes: see the next test
        assert not hashed.verify(password.encode() + b"!")
    assert not hashed.verify(b"wrong")


@pytest.mark.parametrize("flag", ["-2", "-5"])
def test_sha_crypt_with_explicit_rounds(flag: str) -> None:
    stored = htpasswd_line(flag, "alice", "secret", "-r", "1234").split(":", 1)[1]
    assert "$rounds=1234$" in stored
    assert classify(stored).verify(b"secret")


def test_bcrypt_reads_72_bytes_as_apache_does() -> None:
    stored = htpasswd_line("-B", "alice", "y" * 72).split(":", 1)[1]
    assert classify(stored).verify(b"y" * 72 + b"ignored beyond 72 bytes")


@pytest.mark.parametrize(
    ("args", "password"),
    [
        (["-5", "-salt", "saltsalt"], "secret"),
        (["-6", "-salt", "abc"], "secret"),
        (["-6", "-salt", "0123456789abcdefXYZ"], "a longer password than most"),  # salt cut to 16
        (["-apr1", "-salt", "DA2vr0wJ"], "secret"),
        (["-1", "-salt", "abcdefgh"], "md5 crypt"),
    ],
)
def test_openssl_passwd_vectors(args: list[str], password: str) -> None:
    openssl = require_program("openssl")
    stored = subprocess.run(
        [openssl, "passwd", *args, password], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert classify(stored).verify(password.encode())


def test_published_sha_crypt_vectors() -> None:
    # From Drepper's specification (openssl passwd -5/-6 gives the same); rounds=10 is clamped to 1000.
    assert sha_crypt(b"Hello world!", "5", "saltstring") == "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
    assert sha_crypt(b"Hello world!", "6", "saltstringsaltstring", 10000) == (
        "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v."
    )
    assert sha_crypt(b"the minimum number is still observed", "5", "roundstoolow", 10) == (
        "$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC"
    )
    assert parse_sha_crypt("$5$rounds=1000$roundstoolow$yfvwcWrQ8l/K0DAWyuPMDNHpIVlTQebY9l/gL972bIC") == (
        "5",
        1000,
        "roundstoolow",
    )


def test_md5_crypt_roundtrip_parse() -> None:
    stored = md5_crypt(b"secret", "$apr1$", "DA2vr0wJ")
    assert parse_md5_crypt(stored) == ("$apr1$", "DA2vr0wJ")
    assert md5_crypt(b"secret", "$1$", "DA2vr0wJ") != stored


@pytest.mark.parametrize(
    ("stored", "words"),
    [
        ("secret", "plain text"),
        ("hunter2hunter2", "plain text"),
        ("ab01FAX.bQRSU", "DES crypt"),
        ("$2y$05$tooShort", "malformed bcrypt"),
        ("$6$salt$tooshort", "malformed SHA-crypt"),
        ("$apr1$salt$short", "malformed MD5-crypt"),
        ("{SHA}notbase64!!", "malformed {SHA}"),
        ("{SHA}YWJj", "malformed {SHA}"),
        ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", "unknown hash format 'argon2id'"),
        ("$5$rounds=5000000$salt$" + "a" * 43, "5000000 rounds"),
    ],
)
def test_unusable_hashes_are_refused(stored: str, words: str) -> None:
    with pytest.raises(FileProblem, match=r"(?i)" + words.replace("{", r"\{").replace("$", r"\$")):
        classify(stored)


def test_plaintext_line_names_file_line_and_user(tmp_path: Path) -> None:
    users = tmp_path / ".htpasswd"
    good = htpasswd_line("-B", "alice", "secret")
    users.write_text(f"# staff\n{good}\n\nbob:hunter2\n")
    with pytest.raises(FileProblem) as caught:
        read_htpasswd(users)
    message = str(caught.value)
    assert f"{users} line 4 (user 'bob')" in message
    assert "plain text" in message
    assert "gateway passwd" in message


def test_htpasswd_file_reading(tmp_path: Path) -> None:
    users = tmp_path / ".htpasswd"
    lines = [htpasswd_line(flag, f"user{flag}", "pw") for flag in FORMATS.values()]
    users.write_text("\r\n".join(lines) + "\r\n")
    table = read_htpasswd(users)
    assert sorted(table) == sorted(f"user{flag}" for flag in FORMATS.values())
    assert all(stored.verify(b"pw") for stored in table.values())


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "holds no users"),
        ("alice\n", "line 1: expected user:hash"),
        (":$2y$\n", "line 1: expected user:hash"),
        ("alice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\nalice:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n", "appears twice"),
    ],
)
def test_bad_htpasswd_files(tmp_path: Path, text: str, words: str) -> None:
    users = tmp_path / ".htpasswd"
    users.write_text(text)
    with pytest.raises(FileProblem, match=words):
        read_htpasswd(users)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(FileProblem, match="does not exist"):
        read_htpasswd(tmp_path / "nope")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(FileProblem, match="not UTF-8"):
        read_htpasswd(tmp_path / "bin")
    with pytest.raises(FileProblem, match="cannot read"):
        read_htpasswd(tmp_path)  # a directory


def htdigest_file(path: Path, realm: str, user: str, password: str) -> None:
    """Apache's htdigest only prompts; feed it the password twice on a pseudo-terminal-free stdin."""
    htdigest = require_program("htdigest")
    flags = ["-c"] if not path.exists() else []
    subprocess.run(
        [htdigest, *flags, str(path), realm, user],
        input=f"{password}\n{password}\n",
        capture_output=True,
        text=True,
        check=True,
    )


def test_htdigest_file_from_apache(tmp_path: Path) -> None:
    users = tmp_path / ".htdigest"
    htdigest_file(users, "admin", "alice", "secret")
    htdigest_file(users, "admin", "bob", "hunter2")
    htdigest_file(users, "other", "carol", "x")
    table = read_htdigest(users, "admin")
    assert table["MD5"] == {
        "alice": hashlib.md5(b"alice:admin:secret").hexdigest(),
        "bob": hashlib.md5(b"bob:admin:hunter2").hexdigest(),
    }
    assert table["SHA-256"] == {}
    with pytest.raises(FileProblem, match=r"no user in realm 'nope' \(its realms: 'admin', 'other'\)"):
        read_htdigest(users, "nope")


def test_htdigest_sha256_lines_and_bad_lines(tmp_path: Path) -> None:
    users = tmp_path / ".htdigest"
    users.write_text("alice:admin:" + "a" * 32 + "\nalice:admin:" + "B" * 64 + "\n")
    table = read_htdigest(users, "admin")
    assert table == {"MD5": {"alice": "a" * 32}, "SHA-256": {"alice": "b" * 64}}
    users.write_text("alice:admin:plaintext\n")
    with pytest.raises(FileProblem, match="line 1: expected user:realm:HA1"):
        read_htdigest(users, "admin")


def test_htgroup(tmp_path: Path) -> None:
    groups = tmp_path / ".htgroup"
    groups.write_text("# groups\nadmins: alice bob\nstaff:carol\nadmins: dave\n")
    assert read_htgroup(groups) == {"admins": frozenset({"alice", "bob", "dave"}), "staff": frozenset({"carol"})}
    groups.write_text("no colon here\n")
    with pytest.raises(FileProblem, match=r"line 1: expected 'group: user user \.\.\.'"):
        read_htgroup(groups)
