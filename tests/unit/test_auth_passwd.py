"""`gateway passwd`: files Apache's tools and the auth stage both accept, edited in place and atomically."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gateway.cli import cli
from gateway.stages._htpasswd import read_htdigest, read_htpasswd
from tests.conftest import require_program


def passwd(*args: str, input: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["passwd", *args], input=input)
    return result.exit_code, result.output


def test_basic_add_update_delete(tmp_path: Path) -> None:
    users = tmp_path / ".htpasswd"
    assert passwd("--password-stdin", str(users), "alice", input="secret\n") == (0, f"Added user alice in {users}\n")
    assert passwd("--password-stdin", str(users), "bob", input="hunter2\n")[0] == 0
    assert stat.S_IMODE(users.stat().st_mode) == 0o640
    table = read_htpasswd(users)
    assert table["alice"].kind == "bcrypt" and table["alice"].value.startswith("$2b$10$")
    assert table["alice"].verify(b"secret") and table["bob"].verify(b"hunter2")
    htpasswd = require_program("htpasswd")
    check = subprocess.run([htpasswd, "-vbB", str(users), "alice", "secret"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr  # Apache's own tool accepts what we wrote

    os.chmod(users, 0o600)
    code, output = passwd("--password-stdin", str(users), "alice", input="changed\r\n")
    assert (code, output) == (0, f"Updated user alice in {users}\n")
    assert [line.split(":")[0] for line in users.read_text().splitlines()] == ["alice", "bob"]  # order kept
    assert read_htpasswd(users)["alice"].verify(b"changed")
    assert stat.S_IMODE(users.stat().st_mode) == 0o600  # the file's mode kept

    assert passwd("--delete", str(users), "alice") == (0, f"Deleted user alice from {users}\n")
    assert list(read_htpasswd(users)) == ["bob"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".htpasswd"]  # no temporary files left


def test_other_lines_and_comments_are_kept(tmp_path: Path) -> None:
    users = tmp_path / ".htpasswd"
    users.write_text("# managed by hand\nzed:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ=\n")
    assert passwd("--password-stdin", str(users), "alice", input="pw\n")[0] == 0
    lines = users.read_text().splitlines()
    assert lines[:2] == ["# managed by hand", "zed:{SHA}5en6G6MezRroT3XKqkdPOmY/BfQ="]
    assert lines[2].startswith("alice:$2b$")


def test_prompt_asks_twice(tmp_path: Path) -> None:
    users = tmp_path / ".htpasswd"
    code, output = passwd(str(users), "alice", input="one\ntwo\nsecret\nsecret\n")
    assert code == 0, output
    assert "do not match" in output
    assert read_htpasswd(users)["alice"].verify(b"secret")


def test_digest_md5_matches_htdigest(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    assert passwd("--digest", "--realm", "admin", "--password-stdin", str(ours), "alice", input="secret\n")[0] == 0
    htdigest = require_program("htdigest")
    subprocess.run(
        [htdigest, "-c", str(theirs), "admin", "alice"], input=b"secret\nsecret\n", capture_output=True, check=True
    )
    assert ours.read_text() == theirs.read_text()


def test_digest_sha256_and_both(tmp_path: Path) -> None:
    users = tmp_path / ".htdigest"
    args = ["--digest", "--realm", "admin", "--password-stdin"]
    assert passwd(*args, "--algorithm", "SHA-256", str(users), "alice", input="secret\n")[0] == 0
    assert users.read_text() == f"alice:admin:{hashlib.sha256(b'alice:admin:secret').hexdigest()}\n"
    both = [*args, "--algorithm", "MD5", "--algorithm", "SHA-256"]
    assert passwd(*both, str(users), "alice", input="new\n") == (0, f"Updated user alice (realm 'admin') in {users}\n")
    table = read_htdigest(users, "admin")
    assert table["MD5"]["alice"] == hashlib.md5(b"alice:admin:new").hexdigest()
    assert table["SHA-256"]["alice"] == hashlib.sha256(b"alice:admin:new").hexdigest()
    # Another realm's lines for the same user stay; changing the password replaces every algorithm's line.
    assert passwd("--digest", "--realm", "other", "--password-stdin", str(users), "alice", input="x\n")[0] == 0
    assert passwd(*args, str(users), "alice", input="third\n")[0] == 0
    table = read_htdigest(users, "admin")
    assert table["SHA-256"] == {} and table["MD5"]["alice"] == hashlib.md5(b"alice:admin:third").hexdigest()
    assert read_htdigest(users, "other")["MD5"]["alice"] == hashlib.md5(b"alice:other:x").hexdigest()
    assert passwd("--digest", "--realm", "other", "--delete", str(users), "alice")[0] == 0
    assert "other" not in users.read_text()


@pytest.mark.parametrize(
    ("args", "stdin", "words"),
    [
        (["--digest", "F", "alice"], "x\n", "--digest and --realm go together"),
        (["--realm", "r", "F", "alice"], "x\n", "--digest and --realm go together"),
        (["--algorithm", "MD5", "F", "alice"], "x\n", "--algorithm needs them"),
        (["--digest", "--realm", "r", "--algorithm", "SHA-512", "--password-stdin", "F", "a"], "x\n", "unknown algo"),
        (["--password-stdin", "F", "al:ice"], "x\n", "without ':'"),
        (["--password-stdin", "F", "#admin"], "x\n", "the line would be a comment"),
        (["--password-stdin", "F", "a\u2028b"], "x\n", "without ':', line breaks"),  # str.splitlines() breaks there
        (["--password-stdin", "F", "a\tb"], "x\n", "without ':', line breaks"),
        (["--digest", "--realm", "a:b", "--password-stdin", "F", "alice"], "x\n", "without ':'"),
        (["--password-stdin", "F", "alice"], "\n", "the password is empty"),
        (["--password-stdin", "F", "alice"], "é" * 40 + "\n", "at most 72 bytes"),
        (["--delete", "F", "alice"], "", "does not exist"),
    ],
)
def test_misuse_exits_2(tmp_path: Path, args: list[str], stdin: str, words: str) -> None:
    args = [str(tmp_path / "F") if arg == "F" else arg for arg in args]
    code, output = passwd(*args, input=stdin)
    assert code == 2
    assert words in output
    assert not (tmp_path / "F").exists()


def test_mixing_file_kinds_is_refused(tmp_path: Path) -> None:
    users = tmp_path / "users"
    assert passwd("--password-stdin", str(users), "alice", input="x\n")[0] == 0
    code, output = passwd("--digest", "--realm", "r", "--password-stdin", str(users), "bob", input="x\n")
    assert code == 2 and "holds basic lines" in output
    code, output = passwd("--delete", str(users), "nobody")
    assert code == 2 and "has no user 'nobody'" in output


def test_unwritable_folder(tmp_path: Path) -> None:
    code, output = passwd("--password-stdin", str(tmp_path / "missing" / "f"), "alice", input="x\n")
    assert code == 2 and "cannot write in" in output


def test_a_symlinked_file_is_written_through(tmp_path: Path) -> None:
    """As htpasswd does: the file the server reads (the link's target) is the one that changes."""
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "users"
    assert passwd("--password-stdin", str(target), "alice", input="x\n")[0] == 0
    link = tmp_path / "users.link"
    link.symlink_to(target)
    assert passwd("--password-stdin", str(link), "bob", input="y\n")[0] == 0
    assert link.is_symlink()
    assert sorted(read_htpasswd(target)) == ["alice", "bob"]


def test_algorithm_names_in_any_case(tmp_path: Path) -> None:
    users = tmp_path / "users.htdigest"
    args = ["--digest", "--realm", "r", "--algorithm", "sha-256", "--password-stdin", str(users), "alice"]
    assert passwd(*args, input="x\n")[0] == 0
    assert len(users.read_text().split(":")[2].strip()) == 64


def test_a_file_the_server_would_refuse_is_not_edited(tmp_path: Path) -> None:
    users = tmp_path / "users"
    users.write_text("alice:$2b$10$abcdefghijklmnopqrstuv\ngarbage line\n")
    code, output = passwd("--password-stdin", str(users), "bob", input="x\n")
    assert code == 2 and "line 2 is neither user:hash nor user:realm:HA1" in output
    assert "bob" not in users.read_text()
