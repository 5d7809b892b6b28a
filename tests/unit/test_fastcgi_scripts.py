"""Which script a path runs under a FastCGI root (try_files semantics), on a real folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters._fastcgi_scripts import STATIC, Script, ScriptTable
from adapters._static_files import Reply


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "uploads").mkdir(parents=True)
    (site / "admin").mkdir()
    (site / "docs").mkdir()
    (site / "folder.php").mkdir()
    (site / "index.php").write_text("<?php")
    (site / "info.php").write_text("<?php")
    (site / "admin" / "index.php").write_text("<?php")
    (site / "docs" / "index.html").write_text("docs")
    (site / "uploads" / "evil.jpg").write_text("<?php")
    (site / "style.css").write_text("body{}")
    (site / ".env").write_text("SECRET=1")
    (site / "admin" / ".secret.php").write_text("<?php")  # hidden below the top too
    (site / "admin" / ".git").mkdir()
    (site / "admin" / ".git" / "config").write_text("[core]")
    (tmp_path / "outside.php").write_text("<?php")
    (site / "link.php").symlink_to(tmp_path / "outside.php")
    (site / "inside.php").symlink_to(site / "info.php")
    return site


def table(root: Path, front: bool = True) -> ScriptTable:
    return ScriptTable(os.fsencode(root.resolve()), (b".php",), b"index.php", front)


def script(root: Path, raw_path: bytes, front: bool = True) -> tuple[str, str, str]:
    found = table(root, front).lookup(raw_path)
    assert isinstance(found, Script), f"{raw_path!r} → {found!r}"
    prefix = str(root.resolve())
    assert found.filename.startswith(prefix)
    return found.script_name, found.filename[len(prefix) :], found.path_info


@pytest.mark.parametrize(
    ("raw_path", "expected"),
    [
        (b"/info.php", ("/info.php", "/info.php", "")),
        (b"/info.php/a/b", ("/info.php", "/info.php", "/a/b")),
        (b"/info.php/a/", ("/info.php", "/info.php", "/a/")),
        (b"/admin/", ("/admin/index.php", "/admin/index.php", "")),
        (b"/admin", ("/admin/index.php", "/admin/index.php", "")),
        (b"/", ("/index.php", "/index.php", "")),
        (b"/blog/2024/post", ("/index.php", "/index.php", "")),
        (b"/uploads/evil.jpg/x.php", ("/index.php", "/index.php", "")),
        (b"/folder.php/x", ("/index.php", "/index.php", "")),
        (b"/inside.php", ("/inside.php", "/inside.php", "")),
        (b"/in%66o.php", ("/info.php", "/info.php", "")),
    ],
)
def test_scripts(root: Path, raw_path: bytes, expected: tuple[str, str, str]) -> None:
    assert script(root, raw_path) == expected


@pytest.mark.parametrize("raw_path", [b"/style.css", b"/uploads/evil.jpg", b"/docs/", b"/link.php"])
def test_existing_files_and_folders_without_a_script_go_to_the_static_handler(root: Path, raw_path: bytes) -> None:
    assert table(root).lookup(raw_path) is STATIC


@pytest.mark.parametrize(
    ("raw_path", "status"),
    [
        (b"/.env", 404),
        (b"/admin/.secret.php", 404),
        (b"/admin/.git/config", 404),
        (b"/%2e%2e/outside.php", 404),
        (b"/uploads/..%2f..%2foutside.php", 404),
        (b"/info.php%00.css", 400),
    ],
)
def test_refusals(root: Path, raw_path: bytes, status: int) -> None:
    found = table(root).lookup(raw_path)
    assert isinstance(found, Reply) and found.status == status


def test_without_front_controller_an_unknown_path_is_404(root: Path) -> None:
    found = table(root, front=False).lookup(b"/blog/post")
    assert isinstance(found, Reply) and found.status == 404


def test_symlink_out_of_root_never_runs(root: Path) -> None:
    found = table(root).lookup(b"/link.php/x")
    assert not (isinstance(found, Script) and found.script_name == "/link.php")


def test_answers_are_cached_per_raw_path(root: Path) -> None:
    scripts = table(root)
    first = scripts.resolve(b"/info.php")
    (root / "info.php").unlink()
    assert scripts.resolve(b"/info.php") is first, "within REVALIDATE the cached answer stands"
