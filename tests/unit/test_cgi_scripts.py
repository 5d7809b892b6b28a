"""Which program a path runs under a CGI root, on a real folder; and ISINDEX argv (RFC 3875 §4.4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters._cgi_scripts import ADD_SLASH, Script, ScriptTable, isindex_args
from adapters._static_files import Reply

PERL = (b"/usr/bin/perl",)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    site = tmp_path / "cgi-bin"
    (site / "sub" / "deeper").mkdir(parents=True)
    (site / "sub" / ".hidden").mkdir()
    (site / "noindex").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "cgi-bin-private").mkdir()  # a sibling whose name begins with the root's
    programs = {
        "env.cgi": 0o755,
        "nph-raw.cgi": 0o755,
        "plain.txt": 0o644,
        "tool.pl": 0o644,
        "sub/index.cgi": 0o755,
        "sub/deeper/run.cgi": 0o755,
        ".hidden.cgi": 0o755,
        "noindex/other.cgi": 0o755,
        "sub/.hidden/x": 0o755,
        "sub/.secret.cgi": 0o755,
    }
    for name, mode in programs.items():
        path = site / name
        path.write_text("#!/bin/sh\n")
        path.chmod(mode)
    escape = tmp_path / "outside" / "escape.cgi"
    escape.write_text("#!/bin/sh\n")
    escape.chmod(0o755)
    (site / "escape.cgi").symlink_to(escape)
    sibling = tmp_path / "cgi-bin-private" / "sibling.cgi"
    sibling.write_text("#!/bin/sh\n")
    sibling.chmod(0o755)
    (site / "sibling.cgi").symlink_to(sibling)
    (site / "outdir").symlink_to(tmp_path / "outside")
    (site / "alias.cgi").symlink_to(site / "env.cgi")
    os.mkfifo(site / "pipe.cgi")
    return site


def table(root: Path, mount: str = "/cgi-bin", index: tuple[bytes, ...] = (b"index.cgi",)) -> ScriptTable:
    return ScriptTable(os.fsencode(root.resolve()), mount, index, {b".pl": PERL})


def found(root: Path, raw_path: bytes, mount: str = "/cgi-bin") -> Script:
    result = table(root, mount).lookup(raw_path)
    assert isinstance(result, Script), f"{raw_path!r} → {result!r}"
    return result


@pytest.mark.parametrize(
    ("raw_path", "script_name", "filename", "path_info"),
    [
        (b"/cgi-bin/env.cgi", "/cgi-bin/env.cgi", "env.cgi", ""),
        (b"/cgi-bin/env.cgi/a/b", "/cgi-bin/env.cgi", "env.cgi", "/a/b"),
        (b"/cgi-bin/env.cgi/a/b/", "/cgi-bin/env.cgi", "env.cgi", "/a/b/"),
        (b"/cgi-bin/env.cgi/", "/cgi-bin/env.cgi", "env.cgi", "/"),
        (b"/cgi-bin/env.cgi/a%20b/.x", "/cgi-bin/env.cgi", "env.cgi", "/a b/.x"),  # PATH_INFO may hold dots
        (b"/cgi-bin//./env.cgi", "/cgi-bin/env.cgi", "env.cgi", ""),
        (b"/cgi-bin/e%6ev.cgi", "/cgi-bin/env.cgi", "env.cgi", ""),
        (b"/cgi-bin/sub/deeper/run.cgi/x", "/cgi-bin/sub/deeper/run.cgi", "sub/deeper/run.cgi", "/x"),
        (b"/cgi-bin/sub/", "/cgi-bin/sub/index.cgi", "sub/index.cgi", ""),
        (b"/cgi-bin/sub/index.cgi/more", "/cgi-bin/sub/index.cgi", "sub/index.cgi", "/more"),
        (b"/cgi-bin/alias.cgi", "/cgi-bin/alias.cgi", "alias.cgi", ""),  # a symlink inside the root
    ],
)
def test_script_and_path_info(root: Path, raw_path: bytes, script_name: str, filename: str, path_info: str) -> None:
    script = found(root, raw_path)
    assert script.script_name == script_name
    assert script.filename == os.fsencode(root.resolve() / filename)
    assert script.path_info == path_info
    assert script.directory == os.path.dirname(script.filename)


def test_interpreter_and_nph(root: Path) -> None:
    assert found(root, b"/cgi-bin/tool.pl/x").interpreter == PERL  # not executable, but mapped
    assert found(root, b"/cgi-bin/env.cgi").interpreter is None
    assert found(root, b"/cgi-bin/nph-raw.cgi").nph and not found(root, b"/cgi-bin/env.cgi").nph


def test_non_ascii_names_keep_their_bytes(root: Path) -> None:
    (root / "café.cgi").write_text("#!/bin/sh\n")
    (root / "café.cgi").chmod(0o755)
    script = found(root, b"/cgi-bin/caf%C3%A9.cgi/%C3%A9")
    assert script.script_name == "/cgi-bin/café.cgi".encode().decode("latin-1")  # the bytes, as latin-1
    assert script.path_info == "/é".encode().decode("latin-1")


def test_mount_of_a_regex_route_is_the_root(root: Path) -> None:
    script = found(root, b"/env.cgi/x", mount="")
    assert (script.script_name, script.path_info) == ("/env.cgi", "/x")


@pytest.mark.parametrize(
    ("raw_path", "status"),
    [
        (b"/cgi-bin/missing.cgi", 404),
        (b"/cgi-bin/missing/env.cgi", 404),
        (b"/cgi-bin/sub/%2e%2e/env.cgi", 404),
        (b"/cgi-bin/sub/../env.cgi", 404),
        (b"/cgi-bin/sub%2fenv.cgi", 404),
        (b"/cgi-bin/sub%5cenv.cgi", 404),
        (b"/cgi-bin/env.cgi%00", 400),
        (b"/cgi-bin/env.cgi/a%00b", 400),
        (b"/cgi-bin/env.cgi/a%2fb", 404),  # an encoded slash anywhere, as Apache's AllowEncodedSlashes Off
        (b"/cgi-bin/escape.cgi", 404),
        (b"/cgi-bin/outdir/escape.cgi", 404),
        (b"/cgi-bin/.hidden.cgi", 404),
        (b"/cgi-bin/sub/.hidden/x", 404),  # these exist: hidden, not missing
        (b"/cgi-bin/sub/.secret.cgi", 404),
        (b"/cgi-bin/sibling.cgi", 404),
        (b"/cgi-bin/plain.txt", 403),
        (b"/cgi-bin/plain.txt/x", 403),
        (b"/cgi-bin/pipe.cgi", 403),
        (b"/cgi-bin/noindex/", 403),
        (b"/cgi-bin/", 403),
        (b"/elsewhere/env.cgi", 404),
        (b"relative", 404),
    ],
)
def test_refusals(root: Path, raw_path: bytes, status: int) -> None:
    result = table(root).lookup(raw_path)
    assert isinstance(result, Reply), result
    assert result.status == status


def test_folder_without_its_slash_is_a_redirect(root: Path) -> None:
    assert table(root).lookup(b"/cgi-bin/sub") is ADD_SLASH
    assert table(root).lookup(b"/cgi-bin") is ADD_SLASH


def test_index_names_are_tried_in_order(root: Path) -> None:
    (root / "noindex" / "default.pl").write_text("print 1")
    result = table(root, index=(b"index.cgi", b"default.pl")).lookup(b"/cgi-bin/noindex/")
    assert isinstance(result, Script) and result.script_name == "/cgi-bin/noindex/default.pl"


def test_answers_are_cached_per_raw_path(root: Path) -> None:
    scripts = table(root)
    first = scripts.resolve(b"/cgi-bin/env.cgi")
    (root / "env.cgi").unlink()
    assert scripts.resolve(b"/cgi-bin/env.cgi") is first  # within REVALIDATE
    assert isinstance(scripts.lookup(b"/cgi-bin/env.cgi"), Reply)


@pytest.mark.parametrize(
    ("query", "argv"),
    [
        (b"", []),
        (b"foo", [b"foo"]),
        (b"foo+bar", [b"foo", b"bar"]),
        (b"a%20b+c%2Bd", [b"a b", b"c+d"]),
        (b"a%3Db", [b"a=b"]),
        (b"%C3%A9", [b"\xc3\xa9"]),
        (b"-rf+/", [b"-rf", b"/"]),  # words follow the script on the command line: they are its arguments
        (b"x=1", []),
        (b"x=1&y", []),
        (b"a++b", []),
        (b"+a", []),
        (b"a%00b", []),
        (b"+".join([b"w"] * 65), []),
        (b"w" * 20000, []),
    ],
)
def test_isindex_args(query: bytes, argv: list[bytes]) -> None:
    assert isindex_args(query) == argv
