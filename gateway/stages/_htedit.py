"""What `gateway passwd` does to a user file: add, replace or delete one user's lines.

Rules:
- Every other line (users, other realms, comments) is kept as it was.
- The file is replaced atomically: a temporary file beside it, fsync, rename;
  an existing file keeps its mode (and owner, where we may set it); a new
  one is created 0640, since the hashes are worth guarding from other users.
- Basic entries are bcrypt (cost 10, ~60 ms to check). Digest entries are
  user:realm:HA1 with the HA1 of each algorithm asked for (32 hex for MD5,
  64 for SHA-256); setting a password replaces all of that user's lines in
  that realm, so an old password never survives in another algorithm's line.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import bcrypt

from gateway.stages._digest import ha1
from gateway.stages._htpasswd import BCRYPT_MAX_PASSWORD

BCRYPT_COST = 10
NEW_FILE_MODE = 0o640
DIGEST_ALGORITHMS = ("MD5", "SHA-256")


class EditError(Exception):
    """A request `gateway passwd` cannot carry out; the message says why."""


def check_name(what: str, value: str) -> None:
    """A name the file's reader reads back: no ':', nothing a line could break at, not a comment's '#'."""
    if not value or ":" in value or value != value.strip() or len(value.splitlines()) != 1 or not value.isprintable():
        raise EditError(f"the {what} {value!r} must be non-empty, without ':', line breaks or edge spaces")
    if value.startswith("#"):
        raise EditError(f"the {what} {value!r} must not start with '#': the line would be a comment")


def basic_line(user: str, password: str, cost: int = BCRYPT_COST) -> str:
    encoded = password.encode("utf-8")
    if len(encoded) > BCRYPT_MAX_PASSWORD:
        raise EditError(f"bcrypt reads at most {BCRYPT_MAX_PASSWORD} bytes of a password; this one has {len(encoded)}")
    return f"{user}:{bcrypt.hashpw(encoded, bcrypt.gensalt(cost)).decode('ascii')}"


def digest_lines(user: str, realm: str, password: str, algorithms: tuple[str, ...]) -> list[str]:
    return [f"{user}:{realm}:{ha1(algorithm, user, realm, password)}" for algorithm in algorithms]


def _owned(line: str, user: str, realm: str | None) -> bool:
    """Whether line belongs to user (in realm, for digest files)."""
    fields = line.rstrip("\r").split(":")
    if realm is None:
        return fields[0] == user and len(fields) >= 2
    return len(fields) == 3 and fields[0] == user and fields[1] == realm


def passwd(
    path: Path,
    user: str,
    password: Callable[[], str],
    realm: str | None = None,
    algorithms: tuple[str, ...] = (),
    delete: bool = False,
) -> str:
    """`gateway passwd`: realm None means an htpasswd (bcrypt) file; the message to print on success."""
    check_name("user name", user)
    if realm is not None:
        check_name("realm", realm)
        by_name = {name.upper(): name for name in DIGEST_ALGORITHMS}  # as the config takes them, in any case
        unknown = [name for name in algorithms if name.upper() not in by_name]
        if unknown:
            raise EditError(f"unknown algorithm {unknown[0]!r}; use {' or '.join(DIGEST_ALGORITHMS)}")
        algorithms = tuple(by_name[name.upper()] for name in algorithms)
    where = f" (realm {realm!r})" if realm is not None else ""
    if delete:
        delete_user(path, user, realm)
        return f"Deleted user {user}{where} from {path}"
    _check_kind(path, _read(path), realm)  # before asking for a password that could not be used
    secret = password()
    if not secret:
        raise EditError("the password is empty")
    lines = [basic_line(user, secret)] if realm is None else digest_lines(user, realm, secret, algorithms or ("MD5",))
    existed = set_user(path, user, lines, realm)
    return f"{'Updated' if existed else 'Added'} user {user}{where} in {path}"


def set_user(path: Path, user: str, new_lines: list[str], realm: str | None = None) -> bool:
    """Replace user's lines (or add them at the end); True if the user was already there."""
    lines = _read(path)
    _check_kind(path, lines, realm)
    kept = [line for line in lines if not _owned(line, user, realm)]
    existed = len(kept) != len(lines)
    position = next((i for i, line in enumerate(lines) if _owned(line, user, realm)), None)
    if position is None:
        kept.extend(new_lines)
    else:  # keep the user where they were in the file
        before = sum(1 for line in lines[:position] if not _owned(line, user, realm))
        kept[before:before] = new_lines
    _write(path, kept)
    return existed


def delete_user(path: Path, user: str, realm: str | None = None) -> None:
    lines = _read(path, must_exist=True)
    _check_kind(path, lines, realm)
    kept = [line for line in lines if not _owned(line, user, realm)]
    if len(kept) == len(lines):
        where = f" in realm {realm!r}" if realm is not None else ""
        raise EditError(f"{path} has no user {user!r}{where}")
    _write(path, kept)


def _check_kind(path: Path, lines: list[str], realm: str | None) -> None:
    """Refuse to mix basic (user:hash) and digest (user:realm:HA1) lines in one file, or to edit a broken one."""
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = len(line.split(":"))
        if realm is None and fields == 3:
            raise EditError(f"{path} holds digest lines (user:realm:HA1); add --digest --realm REALM")
        if realm is not None and fields == 2:
            raise EditError(f"{path} holds basic lines (user:hash); leave out --digest for it")
        if fields not in (2, 3):  # the server would refuse the file: say so now, not after "Added"
            raise EditError(f"{path} line {number} is neither user:hash nor user:realm:HA1; mend it first")


def _read(path: Path, must_exist: bool = False) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if must_exist:
            raise EditError(f"{path} does not exist") from None
        return []
    except UnicodeDecodeError:
        raise EditError(f"{path} is not UTF-8 text; is it a user file?") from None
    except OSError as exc:
        raise EditError(f"cannot read {path}: {exc.strerror or exc}") from None
    return text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")  # as the server reads it


def _write(path: Path, lines: list[str]) -> None:
    """Write lines to path atomically, keeping an existing file's mode and owner.

    A symlink is written through (its target is replaced), as htpasswd does:
    the file the server reads is the one that changes.
    """
    path = Path(os.path.realpath(path))
    try:
        info: os.stat_result | None = path.stat()
    except FileNotFoundError:
        info = None
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise EditError(f"cannot write in {path.parent}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write("".join(line + "\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, info.st_mode & 0o7777 if info else NEW_FILE_MODE)
        if info is not None:
            with contextlib.suppress(PermissionError):
                os.chown(temporary, info.st_uid, info.st_gid)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise EditError(f"cannot write {path}: {exc.strerror or exc}") from None
