"""Which program a request runs under a CGI root, and with which arguments (RFC 3875 §3.3, §4.4).

Rules:
- The path below the route's mount is cut into segments, each percent-decoded
  on its own, as the static handler does: a segment decoding to "..", or
  holding "/" or "\\", is a 404, NUL a 400 (adapters/_static_files.py).
  Empty and "." segments are skipped.
- Walking down from root, the first segment that names a regular file is the
  script; the segments after it are PATH_INFO (a trailing "/" kept). That is
  the longest leading part of the path that is a file: nothing below a file
  can be one. A segment starting with "." on the way (.htaccess, .git) is a
  404: hidden files never run; PATH_INFO may hold anything.
- The script must be inside root once symlinks are resolved (else 404, as
  for a file that is not there), and executable by this server, or end in an
  extension `interpreters` maps; otherwise 403. A FIFO or device is 403.
- A directory asked for with its trailing slash runs its first `index` file
  that qualifies, else 403; without the slash it is a 301 to add it.
- ISINDEX (§4.4): a query without an unencoded "=" is split on "+" into
  percent-decoded words, the script's argv. A malformed search string (an
  empty word, a NUL) or one past the size caps gives no argv at all, as §4.4
  allows. Only an exec'd argument list ever carries them, never a shell.

Answers are cached per raw path for a second (_lookup_cache.py): a stat per segment
and a realpath per request are cheap beside a fork, but not free.
"""

from __future__ import annotations

import os
import stat
from urllib.parse import unquote_to_bytes

from adapters._lookup_cache import LookupCache
from adapters._static_files import ADD_SLASH, FORBIDDEN, NOT_FOUND, AddSlash, Reply, segments_below

MAX_ARGS = 64
MAX_ARGS_BYTES = 16 * 1024


class Script:
    """A program to run: its URL path, its file, how to start it, and the rest of the path."""

    __slots__ = ("directory", "filename", "interpreter", "nph", "path_info", "script_name")

    def __init__(
        self, script_name: str, filename: bytes, path_info: str, interpreter: tuple[bytes, ...] | None
    ) -> None:
        self.script_name = script_name  # strings hold the path's bytes as latin-1, as CGI variables do
        self.filename = filename
        self.path_info = path_info
        self.interpreter = interpreter  # the argv prefix for a mapped extension; None runs the file itself
        self.directory = os.path.dirname(filename)
        self.nph = os.path.basename(filename).startswith(b"nph-")  # §5: the script writes the status line


Resolved = Script | AddSlash | Reply


class ScriptTable:
    """Resolves request paths to scripts under one root; one per route."""

    def __init__(
        self,
        root: bytes,
        mount: str,
        index: tuple[bytes, ...],
        interpreters: dict[bytes, tuple[bytes, ...]],
    ) -> None:
        self.root = root  # a realpath
        self.root_slash = root.rstrip(b"/") + b"/"
        self.mount = [segment.encode("utf-8") for segment in mount.split("/") if segment]
        self.mount_name = "".join("/" + s.decode("latin-1") for s in self.mount)
        self.index = index
        self.interpreters = interpreters
        self.extensions = tuple(interpreters)
        self.cache: LookupCache[Resolved] = LookupCache(self.lookup)

    def resolve(self, raw_path: bytes) -> Resolved:
        return self.cache.get(raw_path)

    def lookup(self, raw_path: bytes) -> Resolved:
        below = segments_below(raw_path, self.mount)
        if isinstance(below, Reply):
            return below
        path = self.root
        for position, segment in enumerate(below):
            if segment.startswith(b"."):
                return NOT_FOUND
            path += b"/" + segment
            info = _stat(path)
            if isinstance(info, Reply):
                return info
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                return FORBIDDEN
            rest = below[position + 1 :]
            path_info = b"".join(b"/" + s for s in rest)
            if raw_path.endswith(b"/"):  # "/x.cgi/" has PATH_INFO "/", as Apache says
                path_info += b"/"
            return self.script(below[: position + 1], path, path_info)
        if not raw_path.endswith(b"/"):
            return ADD_SLASH
        return self.directory_index(below, path)

    def directory_index(self, below: list[bytes], directory: bytes) -> Resolved:
        for name in self.index:
            path = directory + b"/" + name
            info = _stat(path)
            if isinstance(info, os.stat_result) and stat.S_ISREG(info.st_mode):
                return self.script([*below, name], path, b"")
        return FORBIDDEN

    def script(self, segments: list[bytes], path: bytes, path_info: bytes) -> Script | Reply:
        """The script at path, if it is inside root and may run; else the refusal."""
        real = os.path.realpath(path)
        if not real.startswith(self.root_slash):
            return NOT_FOUND
        interpreter = None
        if self.extensions and segments[-1].endswith(self.extensions):
            interpreter = next(self.interpreters[e] for e in self.extensions if segments[-1].endswith(e))
        elif not os.access(path, os.X_OK):
            return FORBIDDEN
        script_name = self.mount_name + "".join("/" + s.decode("latin-1") for s in segments)
        return Script(script_name, path, path_info.decode("latin-1"), interpreter)


def _stat(path: bytes) -> os.stat_result | Reply:
    try:
        return os.stat(path)
    except PermissionError:
        return FORBIDDEN
    except (OSError, ValueError):
        return NOT_FOUND


def isindex_args(query: bytes) -> list[bytes]:
    """The command-line words of an ISINDEX query (§4.4); [] when there are none or they cannot be made."""
    if not query or b"=" in query:
        return []
    words = query.split(b"+")
    if len(words) > MAX_ARGS or len(query) > MAX_ARGS_BYTES:
        return []
    decoded = [unquote_to_bytes(word) if b"%" in word else word for word in words]
    if any(not word or b"\0" in word for word in decoded):
        return []
    return decoded
