"""The `gateway dev` supervisor: binds the listeners once, runs one serving child, restarts it on a change.

Rules:
- This process binds every listener and keeps it for its whole life. Each
  child inherits them as `fd:N` (pass_fds). Between one child and the next
  the sockets stay open, so the kernel keeps completing connections into
  their backlog: a request made while the app reloads waits for the new
  child, it is never refused.
- One child serves at a time: the old one is asked to stop (SIGTERM; it
  finishes in-flight requests for up to child.GRACE seconds), then the new
  one loads the config and the apps. Two versions of an app never run side
  by side. The new one was started ahead, as a standby that has imported
  Python and gateway and waits for the word (process.py): a reload costs
  the app's import, not the interpreter's start.
- A child that cannot load the config or an app says why on the console and
  answers 503 with the error, until the next change replaces it.
- Each child reports R (ready) or F (failed) over a socketpair; the same
  socket tells it when this process is gone (EOF), so a child is never
  orphaned.
- Signal handlers only record: SIGTERM/SIGINT stop the child gracefully and
  exit 0; a second one makes the child stop at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from watchfiles import awatch

from gateway.config.loader import load
from gateway.config.schema import Config, ServerSettings
from gateway.dev.banner import banner_lines
from gateway.dev.child import READY
from gateway.dev.console import Paint, console_handler, wants_colour
from gateway.dev.plan import Verdict, WatchPlan, build_plan
from gateway.dev.process import STOP_WAIT, ServingProcess
from gateway.errors import ConfigError, StartupError
from gateway.listeners import bind
from gateway.supervisor import LISTEN_AS_ENV

logger = logging.getLogger("gateway.dev")
DEBOUNCE_MS, STEP_MS = 400, 50  # a save is seen within ~50 ms of quiet; a burst is cut at 400 ms


class DevSupervisor:
    """Runs `gateway dev CONFIG` until SIGTERM/SIGINT."""

    def __init__(
        self,
        config_path: Path,
        listen: tuple[str, ...] = (),
        watch: tuple[Path, ...] = (),
        ignore: tuple[str, ...] = (),
        log_level: str = "info",
    ) -> None:
        self.config_path = config_path
        self.listen_override = listen
        self.watch = watch
        self.ignore = ignore
        self.log_level = log_level
        self.config: Config | None = None
        self.plan: WatchPlan | None = None
        self.listeners: dict[str, socket.socket] = {}
        self.child: ServingProcess | None = None
        self.standby: ServingProcess | None = None  # the next child, imported and waiting (process.py)
        self.standby_starting = False
        self.generation = 0  # of the listeners: a standby holding older ones is no use
        self.tasks: set[asyncio.Task[Any]] = set()
        self.banner_due = True
        self.changed_at: float | None = None
        self.signals = 0
        self.stopping: asyncio.Event | None = None
        self.paint = Paint(wants_colour(sys.stderr))

    def run(self) -> int:
        """Bind (StartupError when a listener cannot be bound), then serve and watch until stopped."""
        self._reload_config()
        try:
            return asyncio.run(self._main())
        finally:
            self._close_listeners(self.listeners)

    async def _main(self) -> int:
        self.stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        loop.add_signal_handler(signal.SIGUSR1, self._on_reopen_signal)
        logger.info("%s", self._watching_line(), extra={"label": "watch"})
        await self._start_child()
        while not self.stopping.is_set():
            await self._watch()
        await self._stop_child()
        await asyncio.gather(*self.tasks)  # a standby being started, a stale one being stopped
        if self.standby is not None:
            await self.standby.stop()
        logger.info("stopped", extra={"label": "stop"})
        return 0

    def _on_reopen_signal(self) -> None:
        """The serving child reopens its access log files (it handles SIGUSR1 as `serve` does)."""
        if self.child is not None:
            self.child.signal(signal.SIGUSR1)

    def _on_signal(self) -> None:
        """Only records: the main loop stops the child. A second signal makes the child stop at once."""
        assert self.stopping is not None
        self.signals += 1
        if self.signals == 1:
            logger.info("stopping (again to stop at once)", extra={"label": "stop"})
        elif self.child is not None:
            self.child.signal(signal.SIGTERM if self.signals == 2 else signal.SIGKILL)
        self.stopping.set()

    async def _watch(self) -> None:
        """Watch the plan's folders until a change calls for a new plan (or a stop)."""
        plan = self.plan
        assert plan is not None and self.stopping is not None
        try:
            async for changes in awatch(
                *plan.directories,
                watch_filter=None,
                recursive=False,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=self.stopping,
                ignore_permission_denied=True,
            ):
                verdict = plan.classify(changes)
                if verdict.files:
                    await self._restart(verdict)
                elif verdict.rescan:
                    self.plan = self._build_plan(self.config)
                if self.plan != plan:  # new folders, includes or apps: watch anew
                    logger.debug("watching %d folders now", len(self.plan.directories if self.plan else ()))
                    return
        except FileNotFoundError:  # a folder went away as the watch started: walk again
            self.plan = self._build_plan(self.config)
            await asyncio.sleep(0.1)

    async def _restart(self, verdict: Verdict) -> None:
        self.changed_at = time.monotonic()
        logger.info("%s: restarting", _changed(verdict.files), extra={"label": "reload"})
        self.banner_due = self.banner_due or verdict.config
        await self._stop_child()
        assert self.stopping is not None
        if self.stopping.is_set():
            return
        self._reload_config()
        await self._start_child()

    def _reload_config(self) -> None:
        """Read the config for what to watch and where to listen; the child reports its problems."""
        try:
            config: Config | None = load(self.config_path)
        except ConfigError:
            config = None
        if config is not None:
            self.config = config
        self.plan = self._build_plan(config)
        settings = config.server if config is not None else ServerSettings()
        if self.listen_override:
            self._bind(self.listen_override, settings.backlog)
        elif config is not None:
            self._bind(settings.listen, settings.backlog)
        elif not self.listeners:
            self._bind(_raw_listen(self.config_path) or settings.listen, settings.backlog)

    def _build_plan(self, config: Config | None) -> WatchPlan:
        return build_plan(self.config_path, config, self.watch, self.ignore, previous=self.plan)

    def _bind(self, specs: tuple[str, ...], backlog: int) -> None:
        """Listen on specs, keeping sockets already bound; a failure keeps the old ones (or raises at first)."""
        if tuple(self.listeners) == specs:
            return
        bound: dict[str, socket.socket] = {}
        try:
            for spec in specs:
                bound[spec] = self.listeners.get(spec) or bind(spec, backlog)
        except StartupError as exc:
            self._close_listeners({k: s for k, s in bound.items() if k not in self.listeners})
            if not self.listeners:
                raise
            logger.error("%s; still listening on %s", exc, ", ".join(self.listeners))
            return
        self._close_listeners({k: s for k, s in self.listeners.items() if k not in bound})
        self.listeners = bound
        self.generation += 1
        self.banner_due = True

    @staticmethod
    def _close_listeners(listeners: dict[str, socket.socket]) -> None:
        for spec, sock in listeners.items():
            sock.close()
            if spec.startswith("unix:"):
                with contextlib.suppress(OSError):
                    os.unlink(spec[5:])

    async def _spawn(self) -> ServingProcess:
        fds = [sock.fileno() for sock in self.listeners.values()]
        # Which listener each inherited fd is, so the child serves TLS where the config says (gateway/tls/).
        os.environ[LISTEN_AS_ENV] = json.dumps({f"fd:{s.fileno()}": spec for spec, s in self.listeners.items()})
        return await ServingProcess.spawn(
            self.config_path, fds, self.log_level, self.generation, self._on_status, self._on_exit
        )

    async def _start_child(self) -> None:
        """Make the standby (or a new process, when there is none fit) the serving child."""
        child = self._take_standby() or await self._spawn()
        if not await child.go():  # the standby died meanwhile: once more, fresh
            child = await self._spawn()
            await child.go()
        self.child = child

    def _take_standby(self) -> ServingProcess | None:
        standby, self.standby = self.standby, None
        if standby is None or (standby.generation == self.generation and standby.running):
            return standby
        self._track(standby.stop())  # it inherited listeners that are closed now
        return None

    async def _prepare_standby(self) -> None:
        """Start the next child ahead of need, once the current one has loaded (not to slow it down)."""
        assert self.stopping is not None
        if self.standby is not None or self.standby_starting or self.stopping.is_set():
            return
        self.standby_starting = True
        try:
            standby = await self._spawn()
        finally:
            self.standby_starting = False
        if self.stopping.is_set():
            await standby.stop()
        else:
            self.standby = standby

    def _track(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _on_status(self, child: ServingProcess, message: bytes) -> None:
        if child is not self.child:
            return
        self._track(self._prepare_standby())
        if message != READY:
            return
        took = time.monotonic() - (self.changed_at or child.started)
        if self.banner_due:
            tls_addresses = self.config.tls_listeners if self.config is not None else {}
            tls = frozenset(sock for address, sock in self.listeners.items() if address in tls_addresses)
            lines = banner_lines(self.config, list(self.listeners.values()), self.paint, tls)
            logger.info("serving %s in %.2f s\n%s", self.config_path, took, "\n".join(lines), extra={"label": "ready"})
            self.banner_due = False
        else:
            logger.info("serving again, %.2f s after the change", took, extra={"label": "ready"})

    def _on_exit(self, child: ServingProcess, code: int) -> None:
        """Say so when the serving child exits without being asked to (a standby's exit needs no word)."""
        if child is self.standby:
            self.standby = None
        if child is not self.child or child.stopping or (self.stopping is not None and self.stopping.is_set()):
            return
        self.child = None
        logger.error("the serving process exited with code %s; starting it again", code, extra={"label": "error"})
        self._track(self._restart_child())

    async def _restart_child(self) -> None:
        """A crash (an app calling os._exit, a segfault): serve again at once, as after a change.

        Requests would otherwise queue on listeners nobody accepts on until
        the next save. A broken app does not loop here: the child answers 503
        with its startup error instead of exiting.
        """
        if self.child is None and not (self.stopping is not None and self.stopping.is_set()):
            self.changed_at = time.monotonic()
            await self._start_child()
            if self.stopping is not None and self.stopping.is_set():
                await self._stop_child()  # stopped while it started: _main's own stop came before

    async def _stop_child(self) -> None:
        """SIGTERM, then wait; it stays self.child until gone, so a second Ctrl-C can reach it."""
        if self.child is not None and await self.child.stop():
            logger.error("the serving process did not stop within %.0f s: killed", STOP_WAIT)
        self.child = None

    def _watching_line(self) -> str:
        assert self.plan is not None
        shown = [f"{_shown(root)}{os.sep}**.py" for root in self.plan.roots if root not in self.watch]
        shown += [_shown(path) for path in sorted(self.plan.config_files)]
        shown += [f"{_shown(path)} (--watch)" for path in self.watch]
        count = len(self.plan.directories)
        return f"watching {', '.join(shown)} ({count} folder{'s' if count != 1 else ''})"


def run_dev(
    config_path: Path,
    listen: tuple[str, ...] = (),
    watch: tuple[Path, ...] = (),
    ignore: tuple[str, ...] = (),
    log_level: str = "info",
) -> int:
    """`gateway dev`: the console set up for people, then the supervisor until SIGTERM/SIGINT."""
    root = logging.getLogger("gateway")
    root.handlers[:] = [console_handler(sys.stderr)]
    root.propagate = False
    root.setLevel(log_level.upper())
    watched = tuple(p.resolve() for p in watch)
    return DevSupervisor(config_path, listen, watched, ignore, log_level).run()


def _raw_listen(config_path: Path) -> tuple[str, ...]:
    """server.listen as written, for a config that does not load yet (so dev can start on it)."""
    import tomllib

    try:
        listen = tomllib.loads(config_path.read_text(encoding="utf-8")).get("server", {}).get("listen")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, AttributeError):
        return ()
    if isinstance(listen, list) and listen and all(isinstance(spec, str) for spec in listen):
        return tuple(listen)
    return ()


def _changed(files: tuple[str, ...]) -> str:
    first = _shown(Path(files[0]))
    return f"{first} changed" if len(files) == 1 else f"{first} and {len(files) - 1} more changed"


def _shown(path: Path) -> str:
    """A path as people typed it: relative to the working folder when under it."""
    try:
        return str(path.relative_to(Path.cwd())) or "."
    except ValueError:
        return str(path)
