"""The `autoindex` page of the static handler: a directory's entries as HTML.

Names come from the file system and are not trusted: the text shown goes
through html.escape and every link is the name percent-encoded whole, so a
name can become neither markup, nor a scheme ("javascript:"), nor another
path. Dotfiles are not listed, nor entries `visible` refuses (symlinks that
leave the root when follow_symlinks is off). At most MAX_ENTRIES rows.
Blocking (scandir and a stat per entry): the handler runs it in a thread.
"""

from __future__ import annotations

import html
import os
import stat
import time
from collections.abc import Callable
from urllib.parse import quote_from_bytes

MAX_ENTRIES = 10_000

_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Index of {title}</title>
<style>body{{font-family:sans-serif}}td{{padding:0 1em 0 0}}td.size{{text-align:right}}</style></head>
<body><h1>Index of {title}</h1>
<table><thead><tr><th>Name</th><th>Size</th><th>Modified (UTC)</th></tr></thead><tbody>
{rows}</tbody></table>{more}</body></html>
"""
_ROW = '<tr><td><a href="{href}">{text}</a></td><td class="size">{size}</td><td>{modified}</td></tr>\n'


def render_listing(directory: bytes, title: str, visible: Callable[[os.DirEntry[bytes]], bool]) -> bytes:
    """The page for `directory`; `title` is the decoded request path it answers."""
    entries, hidden = _entries(directory, visible)
    rows = [] if title == "/" else [_ROW.format(href="../", text="../", size="", modified="")]
    for is_file, name, size, mtime in sorted(entries):
        suffix = "" if is_file else "/"
        rows.append(
            _ROW.format(
                href=quote_from_bytes(name, safe="") + suffix,
                text=html.escape(name.decode("utf-8", "replace")) + suffix,
                size=size if is_file else "-",
                modified=time.strftime("%Y-%m-%d %H:%M", time.gmtime(mtime)),
            )
        )
    more = f"<p>{hidden} more entries not shown.</p>" if hidden else ""
    return _PAGE.format(title=html.escape(title), rows="".join(rows), more=more).encode("utf-8")


def _entries(
    directory: bytes, visible: Callable[[os.DirEntry[bytes]], bool]
) -> tuple[list[tuple[bool, bytes, int, float]], int]:
    found: list[tuple[bool, bytes, int, float]] = []
    hidden = 0
    with os.scandir(directory) as scan:
        for entry in scan:
            if entry.name.startswith(b".") or not visible(entry):
                continue
            if len(found) >= MAX_ENTRIES:
                hidden += 1
                continue
            try:
                info = entry.stat()
            except OSError:  # a dangling symlink, or gone since scandir saw it
                continue
            found.append((not stat.S_ISDIR(info.st_mode), entry.name, info.st_size, info.st_mtime))
    return found, hidden
