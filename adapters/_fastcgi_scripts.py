"""Which script a request runs under a FastCGI root, with nginx's `try_files $uri $uri/ /index.php?$args`.

Rules, in order:
1. The path is cut into segments, each percent-decoded on its own (as the
   static handler does: "..", an encoded "/" or "\\" → 404, NUL → 400), and
   a segment starting with "." (.htpasswd, .git, .env) → 404: hidden files
   are neither served nor run, ".well-known" excepted.
2. The first segment ending in one of `extensions` that is a regular file
   under root is the script: what follows is PATH_INFO. Only such a segment
   can run, so "/uploads/evil.jpg/x.php" never runs evil.jpg (the
   cgi.fix_pathinfo family, CVE-2019-11043): x.php is no file there.
3. Else an existing file is STATIC (the static handler serves it, never
   PHP); a directory runs its `index` script if it has one, else is STATIC
   too (index.html, or the static handler's 301/404).
4. Else the front controller (`index` in root) runs with the original
   REQUEST_URI, so pretty URLs work; without one (or with front_controller
   off), 404.

A script must be inside root after symlinks are resolved. Answers are
cached per raw path for a second (_lookup_cache.py): a stat and a realpath per
request would otherwise be most of a small PHP page's cost in the gateway.
"""

from __future__ import annotations

import os
import stat

from adapters._fastcgi_params import script_pairs
from adapters._lookup_cache import LookupCache
from adapters._static_files import NOT_FOUND, Reply, path_segments

HIDDEN_ALLOWED = frozenset({b".well-known"})


class Script:
    """A script to run: its URL path, its file, and the rest of the path."""

    __slots__ = ("filename", "params", "path_info", "script_name")

    def __init__(self, script_name: str, filename: str, path_info: str = "") -> None:
        self.script_name = script_name  # strings hold the path's bytes as latin-1, as CGI variables do
        self.filename = filename
        self.path_info = path_info
        self.params = script_pairs(script_name, filename, path_info)  # encoded once, reused while cached


class Static:
    """A file or directory for the static handler."""


STATIC = Static()
Resolved = Script | Static | Reply


class ScriptTable:
    """Resolves request paths under one root; one per route."""

    def __init__(self, root: bytes, extensions: tuple[bytes, ...], index: bytes, front_controller: bool) -> None:
        self.root = root  # a realpath
        self.extensions = extensions
        self.index = index
        self.front = front_controller
        self.cache: LookupCache[Resolved] = LookupCache(self.lookup)

    def resolve(self, raw_path: bytes) -> Resolved:
        return self.cache.get(raw_path)

    def lookup(self, raw_path: bytes) -> Resolved:
        segments = path_segments(raw_path)
        if isinstance(segments, Reply):
            return segments
        if any(s.startswith(b".") and s not in HIDDEN_ALLOWED for s in segments):
            return NOT_FOUND
        for position, segment in enumerate(segments):
            if segment.endswith(self.extensions):
                script = self.script_at(segments[: position + 1])
                if script is not None:
                    rest = segments[position + 1 :]
                    path_info = b"/" + b"/".join(rest) if rest else b""
                    if rest and raw_path.endswith(b"/"):
                        path_info += b"/"
                    return Script(script.script_name, script.filename, path_info.decode("latin-1"))
        return self.not_a_script(segments)

    def not_a_script(self, segments: list[bytes]) -> Resolved:
        path = self.root + b"".join(b"/" + s for s in segments)
        info = _stat(path)
        if info is not None and stat.S_ISREG(info.st_mode):
            return STATIC
        if info is not None and stat.S_ISDIR(info.st_mode):
            script = self.script_at([*segments, self.index])
            return script if script is not None else STATIC
        if self.front:
            script = self.script_at([self.index])
            if script is not None:
                return script
        return NOT_FOUND

    def script_at(self, segments: list[bytes]) -> Script | None:
        """The script these segments name, if it is a regular file inside root."""
        relative = b"".join(b"/" + s for s in segments)
        path = self.root + relative
        info = _stat(path)
        if info is None or not stat.S_ISREG(info.st_mode):
            return None
        real = os.path.realpath(path)
        if not real.startswith(self.root + b"/"):
            return None
        return Script(relative.decode("latin-1"), path.decode("latin-1"))


def _stat(path: bytes) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):
        return None
