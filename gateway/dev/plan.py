"""What `gateway dev` watches, and which changes restart the serving process.

Rules:
- The config file and its includes (and any new file an include glob would
  match) restart it: they are read at startup.
- A `.py` file of an in-process app restarts it: the folders an `asgi` or
  `wsgi` route imports from (its `pythonpath`, and the folder the app's
  module is found in among those and the config's folder; the config's
  folder for a top-level `app = ...`), walked recursively.
- Nothing else: PHP, CGI and static files are read on each request, so their
  roots (and the runtime folder) are left out of the walk; non-`.py` files in
  the Python folders are ignored.
- `--watch PATH` adds a file or a folder where any change restarts;
  `--ignore GLOB` adds names (or paths, when the glob holds a `/`) never
  watched, on top of DEFAULT_IGNORES.

Folders are walked here, skipping ignored ones, and each is watched on its
own (not recursively), so a `.venv` or `node_modules` costs nothing: it is
never handed to inotify at all. A folder that appears or goes away makes the
supervisor walk again.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config.schema import Config, RouteConfig

DEFAULT_IGNORES = (
    ".venv",
    "venv",
    "node_modules",
    ".git",
    ".hg",
    ".svn",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    ".#*",  # Emacs lock files, which end in .py too
)
PYTHON_HANDLERS = ("asgi", "wsgi")
MAX_FOLDERS = 5000  # a walk stops here: past it a pythonpath almost surely names the wrong folder
logger = logging.getLogger("gateway.dev")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")  # as the loader substitutes


@dataclass(frozen=True)
class Verdict:
    """What a batch of changes means: the files that call for a restart, and whether to walk again."""

    files: tuple[str, ...] = ()
    config: bool = False  # a config file is among them: print the banner again
    rescan: bool = False  # a watched folder gained or lost a folder


@dataclass(frozen=True)
class WatchPlan:
    """The folders to watch and how to judge a change in them."""

    config_files: frozenset[Path]
    include_globs: tuple[str, ...]
    python_dirs: frozenset[Path]  # `.py` changes here restart
    any_dirs: frozenset[Path]  # --watch folders: any change restarts
    any_files: frozenset[Path]  # --watch files
    config_dirs: frozenset[Path]
    ignores: tuple[str, ...] = DEFAULT_IGNORES
    roots: tuple[Path, ...] = field(default=(), compare=False)  # what the walk started from, for the console

    @property
    def directories(self) -> tuple[Path, ...]:
        every = self.python_dirs | self.any_dirs | self.config_dirs | {f.parent for f in self.any_files}
        return tuple(sorted(d for d in every if d.is_dir()))

    def classify(self, changes: Iterable[tuple[object, str]]) -> Verdict:
        """Judge a batch of (change, path) pairs from watchfiles."""
        files: set[str] = set()
        config = rescan = False
        for _, name in changes:
            path = Path(name)
            if ignored(path, self.ignores):
                continue
            if path in self.config_files or any(fnmatch.fnmatch(name, g) for g in self.include_globs):
                files.add(name)
                config = True
            elif path in self.any_files or path.parent in self.any_dirs:
                rescan = rescan or path.is_dir() or path in self.any_dirs
                files.add(name)
            elif path.parent in self.python_dirs:
                if path.is_dir() or path in self.python_dirs:  # a folder came or went
                    rescan = True
                    if not path.is_dir() or any(path.rglob("*.py")):
                        files.add(name)
                elif path.suffix == ".py":
                    files.add(name)
        return Verdict(tuple(sorted(files)), config, rescan)


def ignored(path: Path, globs: tuple[str, ...]) -> bool:
    """A name glob matches the last part; a glob with a '/' matches the whole path."""
    return any(fnmatch.fnmatch(str(path) if "/" in g else path.name, g) for g in globs)


def build_plan(
    config_path: Path,
    config: Config | None,
    extra: Iterable[Path] = (),
    ignores: Iterable[str] = (),
    previous: WatchPlan | None = None,
) -> WatchPlan:
    """The plan for a config; when it failed to load, the last good plan's Python folders stay."""
    every_ignore = (*DEFAULT_IGNORES, *ignores)
    config_files, globs, config_dirs = config_inputs(config_path)
    if config is not None:
        roots, quiet = python_roots(config)
        python_dirs = walk(roots, quiet, every_ignore)
    else:
        roots = list(previous.roots) if previous else []
        python_dirs = previous.python_dirs if previous else frozenset()
    extra = [p.resolve() for p in extra]
    any_dirs = walk([p for p in extra if p.is_dir()], [], every_ignore)
    any_files = frozenset(p for p in extra if not p.is_dir())
    return WatchPlan(
        frozenset(config_files),
        tuple(globs),
        python_dirs,
        any_dirs,
        any_files,
        frozenset(config_dirs),
        every_ignore,
        _outermost([*roots, *extra]),
    )


def config_inputs(config_path: Path) -> tuple[set[Path], list[str], set[Path]]:
    """The config file, the files its `include` globs match, the globs, and the folders to watch.

    Read from the raw TOML so that it works while the config is invalid: a
    mistake in an include must not stop the include from being watched.
    """
    config_path = config_path.resolve()
    files, dirs = {config_path}, {config_path.parent}
    try:
        patterns = tomllib.loads(config_path.read_text(encoding="utf-8")).get("include", [])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return files, [], dirs
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list):
        return files, [], dirs
    globs = []
    for pattern in (p for p in patterns if isinstance(p, str)):
        absolute = str(config_path.parent / _ENV.sub(lambda m: os.environ.get(m[1], m[2] or ""), pattern))
        globs.append(absolute)
        files |= {Path(m).resolve() for m in glob.glob(absolute)}
        base = Path(absolute).parent
        while glob.has_magic(str(base)):
            base = base.parent
        dirs |= {base} | {f.parent for f in files}
        if base != Path(absolute).parent:  # a glob in a folder part: every folder below may hold a match
            dirs |= walk([base], [], DEFAULT_IGNORES)
    return files, globs, dirs


def python_roots(config: Config) -> tuple[list[Path], list[Path]]:
    """The folders in-process apps import from, and the roots of handlers that need no restart."""
    base = config.config_dir
    roots: list[Path] = [base] if config.app else []
    quiet = [_resolve(base, config.server.runtime_dir)]
    for vhost in config.vhosts:
        for route in vhost.routes:
            options = route.options
            if route.handler in PYTHON_HANDLERS:
                if not route.isolation.isolated:  # a pool restarts alone: pool_watch.py watches its folders
                    roots += route_roots(config, route)
            elif getattr(options, "root", ""):
                quiet.append(_resolve(base, options.root))
    return list(dict.fromkeys(roots)), quiet


def route_roots(config: Config, route: RouteConfig) -> list[Path]:
    """The folders an asgi/wsgi route imports its app from: its pythonpath and where the app's module is."""
    base = config.config_dir
    folders = [_resolve(base, f) for f in route.options.pythonpath]
    home = import_folder(route.options.app.partition(":")[0].split(".")[0], [*folders, base])
    return folders + ([home] if home is not None else [])


def import_folder(module: str, folders: list[Path]) -> Path | None:
    """The first folder holding module (a .py file or a package folder), as the import system looks."""
    for folder in folders:
        if module and ((folder / f"{module}.py").is_file() or (folder / module).is_dir()):
            return folder
    return None


def walk(roots: Iterable[Path], quiet: Iterable[Path], ignores: tuple[str, ...]) -> frozenset[Path]:
    """Every folder under roots, skipping ignored names and quiet roots below them (not the roots)."""
    found: set[Path] = set()
    skip = set(quiet)
    for root in roots:
        if not root.is_dir():
            continue
        for folder, subfolders, _ in os.walk(root):
            current = Path(folder)
            found.add(current)
            subfolders[:] = [s for s in subfolders if current / s not in skip and not ignored(current / s, ignores)]
            if len(found) >= MAX_FOLDERS:
                logger.warning(
                    "watching only the first %d folders under %s; is a pythonpath too wide?", MAX_FOLDERS, root
                )
                return frozenset(found)
    return frozenset(found)


def _outermost(paths: list[Path]) -> tuple[Path, ...]:
    """The paths not inside another one of them, in order: what the console lists as watched."""
    unique = list(dict.fromkeys(paths))
    return tuple(p for p in unique if not any(o != p and p.is_relative_to(o) for o in unique))


def _resolve(base: Path, path: str) -> Path:
    return (base / path).resolve() if not Path(path).is_absolute() else Path(path)
