"""The `cgi` handler: programs under `root` run per request, as RFC 3875 describes.

- _cgi_scripts.py: which file a path runs (traversal refused, 403 for what
  may not run, `index`, PATH_INFO) and ISINDEX argv.
- _cgi_process.py: starting the program in its own process group (setpriv
  for the parent-death signal and `user`), and ending the group.
- _cgi_exchange.py: one run: stdin, stdout, stderr, timeout, disconnects.
- _meta_variables.py (shared with wsgi and fastcgi): the environment.
- here: the options, the per-route process limit with its bounded queue,
  and the answers: 403/404 from resolution, 502 for a program that cannot
  start or writes no CGI response, 503 with Retry-After when the queue is
  full, 504 past `timeout`, and local redirects (§6.2.2) served through the
  router as a GET of the new path, at most MAX_REDIRECTS hops.

The program's environment is PATH, the route's `env` and the meta-variables:
nothing else of the gateway's own environment (secrets live there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from adapters._cgi_exchange import ClientLeft, Exchange, ScriptError, ScriptTimeout
from adapters._cgi_process import ProcessGroup, launcher, setpriv_path, user_ids
from adapters._cgi_redirect import RedirectError, redirect_receive, redirect_scope
from adapters._cgi_response import CgiHead
from adapters._cgi_scripts import Script, ScriptTable, isindex_args
from adapters._meta_variables import cgi_variables, encode_variables
from adapters._request_body import ClientGone, request_body
from adapters._static_files import ADD_SLASH, Reply
from gateway.errors import ResponseAborted
from gateway.types import ASGIApp, HandlerContext, Receive, Scope, Send

logger = logging.getLogger("gateway.adapters.cgi")
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
RETRY_AFTER = b"1"
BAD_GATEWAY = Reply(502, "Bad Gateway: the script failed; the reason is in the gateway's error log.")
UNAVAILABLE = Reply(
    503, "Service Unavailable: too many scripts are running; try again.", ((b"retry-after", RETRY_AFTER),)
)
TIMED_OUT = Reply(504, "Gateway Timeout: the script did not finish in time.")


def _doc(text: str, kind: str = "") -> dict[str, Any]:
    return {"doc": text, "kind": kind} if kind else {"doc": text}


@dataclass(frozen=True, slots=True)
class CgiOptions:
    root: str = field(default="", metadata=_doc("the scripts' folder; the path below the route's prefix maps under it"))
    index: tuple[str, ...] = field(
        default=("index.cgi",), metadata=_doc("scripts tried in order for a folder's URL (else 403)")
    )
    interpreters: dict[str, str] = field(
        default_factory=dict,
        metadata=_doc('run files by extension, executable or not: { ".pl" = "/usr/bin/perl", ".py" = "python3" }'),
    )
    env: dict[str, str] = field(
        default_factory=dict, metadata=_doc("the scripts' environment besides PATH and the CGI variables")
    )
    timeout: float = field(
        default=60.0,
        metadata=_doc(
            "seconds a script may run (not counting waits for a slow client to take its output); "
            "then its process group is killed (504)",
            "duration",
        ),
    )
    max_processes: int = field(default=16, metadata=_doc("scripts of this route running at once"))
    queue: int = field(default=64, metadata=_doc("requests waiting for a process beyond that; more get 503"))
    queue_timeout: float = field(
        default=10.0, metadata=_doc("seconds a request waits in the queue before a 503", "duration")
    )
    user: str = field(
        default="", metadata=_doc("run scripts as this user (and its groups); the gateway must run as root")
    )


class CgiHandler:
    """Programs under a root, one process per request."""

    Options = CgiOptions

    def __init__(self, options: CgiOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context
        self.live: set[ProcessGroup] = set()  # running programs, ended by aclose()

    def problems(self) -> list[tuple[str, str]]:
        options = self.options
        found = [*self.root_problems(), *self.index_problems(), *self.interpreter_problems()]
        found += [(f"env.{name}", "not a variable name") for name in options.env if not _variable_name(name)]
        found += [("env", f"the value of {name} holds a NUL byte") for name, v in options.env.items() if "\0" in v]
        if options.timeout <= 0:
            found.append(("timeout", "must be more than 0 seconds"))
        if options.max_processes < 1:
            found.append(("max_processes", "must be at least 1"))
        if options.queue < 0:
            found.append(("queue", "must be 0 (no waiting) or more"))
        return found + self.user_problems()

    def root_problems(self) -> list[tuple[str, str]]:
        if not self.options.root:
            return [("root", 'missing; the folder of the scripts, as in root = "cgi-bin"')]
        reason = self.context.folder_problem(self.options.root)
        return [("root", reason)] if reason else []

    def index_problems(self) -> list[tuple[str, str]]:
        return [
            ("index", f"entry {name!r} must be a plain file name (no '/' and not starting with '.')")
            for name in self.options.index
            if not name or name.startswith(".") or "/" in name or "\0" in name
        ]

    def interpreter_problems(self) -> list[tuple[str, str]]:
        found = []
        for extension, command in self.options.interpreters.items():
            key = f"interpreters.{extension}" if extension.isidentifier() else f'interpreters."{extension}"'
            if not extension.startswith(".") or len(extension) < 2 or "/" in extension:
                found.append((key, 'not a file extension such as ".pl"'))
            elif _interpreter(command) is None:
                found.append((key, f"{command!r} not found (a program on PATH or a path to one)"))
        return found

    def user_problems(self) -> list[tuple[str, str]]:
        user = self.options.user
        if not user:
            return []
        if os.geteuid() != 0:
            return [("user", f"switching to {user!r} needs the gateway to run as root (it runs as uid {os.geteuid()})")]
        try:
            user_ids(user)
        except KeyError:
            return [("user", f"no user {user!r} on this system")]
        if setpriv_path() is None:
            return [("user", "needs setpriv (util-linux, 2.33 or newer) to switch users")]
        return []

    def app(self) -> ASGIApp:
        options = self.options
        root = os.fsencode(os.path.realpath(self.context.resolve(options.root)))
        interpreters = {}
        for extension, command in sorted(options.interpreters.items(), key=lambda item: -len(item[0])):
            interpreters[os.fsencode(extension)] = _interpreter(command) or ()
        index = tuple(os.fsencode(name) for name in options.index)
        table = ScriptTable(root, self.context.mount, index, interpreters)
        return CgiApp(self, table, root)

    async def startup(self) -> None:
        where = self.context.where
        if setpriv_path() is None:
            logger.warning("%s: setpriv (util-linux) not found; scripts will outlive a gateway killed with -9", where)
        if os.geteuid() == 0 and not self.options.user:
            logger.warning('%s: CGI scripts run as root; set user = "www-data" (or another) to drop that', where)

    async def aclose(self) -> None:
        """End every running script: SIGTERM to each group, SIGKILL to what is left after the grace."""
        groups = list(self.live)
        for group in groups:
            group.terminate()
        if groups:
            await asyncio.gather(*(group.end() for group in groups))


class Slots:
    """At most `size` programs at once; up to `queue` requests wait for one, each at most `wait` seconds."""

    def __init__(self, size: int, queue: int, wait: float) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.queue = queue
        self.wait = wait
        self.waiting = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a process slot; Overloaded when the queue is full or the wait too long."""
        semaphore = self.semaphore
        if semaphore.locked():
            if self.waiting >= self.queue:
                raise Overloaded(f"{self.waiting} requests already wait for a process")
            self.waiting += 1
            try:
                async with asyncio.timeout(self.wait):
                    await semaphore.acquire()
            except TimeoutError:
                raise Overloaded(f"no process free within queue_timeout ({self.wait:g} s)") from None
            finally:
                self.waiting -= 1
        else:
            await semaphore.acquire()
        try:
            yield
        finally:
            semaphore.release()


class Overloaded(Exception):
    """No process slot for this request: 503."""


class CgiApp:
    """The ASGI app of one CGI route."""

    def __init__(self, handler: CgiHandler, table: ScriptTable, root: bytes) -> None:
        options = handler.options
        self.handler = handler
        self.table = table
        self.root = root.decode("latin-1")
        self.slots = Slots(options.max_processes, options.queue, options.queue_timeout)
        self.timeout = options.timeout
        self.launcher = launcher(options.user)
        self.base_env = {b"PATH": CLEAN_PATH.encode()} | {
            name.encode("utf-8"): value.encode("utf-8") for name, value in options.env.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1003})
            return
        found = self.table.resolve(scope["raw_path"])
        if isinstance(found, Script):
            await self.run(found, scope, receive, send)
        elif found is ADD_SLASH:
            await ADD_SLASH.send(scope, send)
        elif isinstance(found, Reply):
            await found.send(send)

    async def run(self, script: Script, scope: Scope, receive: Receive, send: Send) -> None:
        label = os.fsdecode(script.filename)
        try:
            length, body = await request_body(scope, receive)
            async with self.slots.slot():
                head = await self.execute(script, scope, length, body, receive, send)
        except ClientGone:
            return
        except ClientLeft:
            # The client left (or shut its side: the core reports that as a disconnect too) and the script
            # was ended. Not completing the response is deliberate: the core closes the connection.
            logger.info("%s: the client left; the script was ended", label)
            raise ResponseAborted("the client left") from None
        except Overloaded as exc:
            logger.warning("%s: 503: %s", label, exc)
            await UNAVAILABLE.send(send)
            return
        except ScriptError as exc:
            logger.error("%s: %s", label, exc)
            await BAD_GATEWAY.send(send)
            return
        except ScriptTimeout:
            await TIMED_OUT.send(send)
            return
        if head is not None and head.location is not None:
            await self.redirect(head.location, label, scope, receive, send)

    async def execute(
        self, script: Script, scope: Scope, length: int, body: AsyncIterator[bytes], receive: Receive, send: Send
    ) -> CgiHead | None:
        """Start the script and relay its response; a local redirect's head is returned instead."""
        group = ProcessGroup(self.handler.live)
        argv = [*self.launcher, *(script.interpreter or ()), script.filename, *isindex_args(scope["query_string"])]
        try:
            process = await group.spawn(argv, self.environment(script, scope, length), script.directory, length > 0)
        except OSError as exc:
            raise ScriptError(f"could not be started: {exc.strerror or exc}") from None
        label = os.fsdecode(script.filename)
        return await Exchange(group, label, receive, send, self.timeout).run(process, body, script.nph)

    def environment(self, script: Script, scope: Scope, length: int) -> dict[bytes, bytes]:
        filename = script.filename.decode("latin-1")
        variables = cgi_variables(scope, script.script_name, script.path_info, filename, self.root)
        if length or "CONTENT_LENGTH" in variables:
            variables["CONTENT_LENGTH"] = str(length)  # a chunked body's length, counted while spooling
        return self.base_env | encode_variables(variables)

    async def redirect(self, location: bytes, label: str, scope: Scope, receive: Receive, send: Send) -> None:
        """§6.2.2: serve the path the script named, as if the client had asked for it."""
        dispatch = self.handler.context.dispatch
        try:
            if dispatch is None:
                raise RedirectError("no router to serve it (the handler runs on its own)")
            target = redirect_scope(scope, location)
        except RedirectError as exc:
            logger.error("%s: local redirect to %r: %s", label, location.decode("latin-1"), exc)
            await BAD_GATEWAY.send(send)
            return
        await dispatch(target, redirect_receive(receive), send)


def _interpreter(command: str) -> tuple[bytes, ...] | None:
    """The argv prefix for an interpreters entry ("perl", "/usr/bin/perl -T"); None when it cannot be found."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if not words:
        return None
    program = shutil.which(words[0]) if "/" not in words[0] else words[0]
    if program is None or not os.access(program, os.X_OK) or os.path.isdir(program):
        return None
    return tuple(os.fsencode(word) for word in [os.path.abspath(program), *words[1:]])


def _variable_name(name: str) -> bool:
    return bool(name) and "=" not in name and "\0" not in name and not name[0].isdigit()
