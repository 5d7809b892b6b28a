"""Starting a CGI program and ending it with everything it started.

Rules:
- An argument list, never a shell. The program leads its own session
  (start_new_session), so it and any child it forks share a process group
  whose id is its pid: os.killpg reaches them all.
- Ending: SIGTERM to the group, SIGKILL KILL_GRACE seconds later if any
  member is left. That happens when the program ran past its timeout, when
  the client left, when the route closes, and when the program itself has
  exited (children it left behind do not outlive their request).
- The program is started through `setpriv` (util-linux) when it is
  installed: `--pdeathsig KILL` makes the kernel kill it if the gateway dies
  (even by kill -9), and `--reuid/--regid` drop to the route's `user`. A
  preexec_fn could do both, but it runs Python in a forked child of a
  threaded process (the wsgi handler's threads), which can deadlock; and
  uvloop takes no user=/group= arguments. Without setpriv the program runs
  directly (no parent-death signal; `user` is refused at load).
- The exit is seen through the protocol's process_exited(), not
  Process.wait(): on asyncio that waits for the pipes to close too, and a
  forked child holding stdout would keep it waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import pwd
import shutil
import signal
import subprocess
from typing import cast

KILL_GRACE = 1.0
STREAM_LIMIT = 64 * 1024  # a pipe's reader stops reading at twice this many unread bytes


@functools.cache
def setpriv_path() -> str | None:
    """setpriv, if installed and new enough to know --pdeathsig (util-linux 2.33)."""
    path = shutil.which("setpriv")
    if path is None:
        return None
    try:
        shown = subprocess.run([path, "--help"], capture_output=True, timeout=5, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return path if b"--pdeathsig" in shown else None


def user_ids(user: str) -> tuple[int, int, bool]:
    """(uid, gid, has a passwd entry) for a user name or number; KeyError if there is no such user."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        if not user.isdigit():
            raise
        uid = int(user)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return uid, uid, False
    return entry.pw_uid, entry.pw_gid, True


def launcher(user: str) -> list[bytes]:
    """The argv prefix that starts a program: setpriv with its options, or nothing."""
    setpriv = setpriv_path()
    if setpriv is None:
        return []
    prefix = [os.fsencode(setpriv), b"--pdeathsig", b"KILL"]
    if user:
        uid, gid, known = user_ids(user)
        prefix += [b"--reuid", b"%d" % uid, b"--regid", b"%d" % gid, b"--init-groups" if known else b"--clear-groups"]
    return [*prefix, b"--"]


class ScriptProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """The stream protocol of asyncio's Process, telling its group when the program exits."""

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop, group: ProcessGroup) -> None:
        super().__init__(limit, loop)
        self.group = group

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # uvloop's transport has the SubprocessTransport methods without being its subclass.
        self.group.started(cast(asyncio.SubprocessTransport, transport).get_pid())

    def process_exited(self) -> None:
        super().process_exited()
        self.group.on_exit()


class ProcessGroup:
    """One running program and the process group it leads."""

    def __init__(self, live: set[ProcessGroup]) -> None:
        self.live = live  # the route's running groups, for aclose()
        self.pid = 0
        self.exited = asyncio.get_running_loop().create_future()
        self.killer: asyncio.TimerHandle | None = None

    async def spawn(
        self, argv: list[bytes], env: dict[bytes, bytes], cwd: bytes, stdin: bool
    ) -> asyncio.subprocess.Process:
        """Start argv; OSError when it cannot be started."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: ScriptProtocol(STREAM_LIMIT, loop, self),
            *argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        return asyncio.subprocess.Process(transport, protocol, loop)

    def started(self, pid: int) -> None:
        """The program runs (called before process_exited, however fast it exits)."""
        self.pid = pid
        self.live.add(self)

    @property
    def running(self) -> bool:
        return not self.exited.done()

    def on_exit(self) -> None:
        """The program exited: whatever it left running in its group is ended too."""
        if not self.exited.done():
            self.exited.set_result(None)
        self.live.discard(self)
        self.terminate()

    def terminate(self) -> None:
        """SIGTERM to the group now, SIGKILL after KILL_GRACE if anything was there to get it."""
        if self.killer is None and self.signal(signal.SIGTERM):
            # The group's id cannot be reused while a member lives; once all are gone the SIGKILL
            # finds no group (or, in a rare pid wrap within KILL_GRACE, a new program's group).
            self.killer = asyncio.get_running_loop().call_later(KILL_GRACE, self.signal, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL to the group at once."""
        if self.killer is not None:
            self.killer.cancel()
        self.signal(signal.SIGKILL)

    def signal(self, signum: int) -> bool:
        """Signal the group; False when no member is left."""
        if not self.pid:
            return False
        try:
            os.killpg(self.pid, signum)
        except ProcessLookupError:
            return False
        except PermissionError:  # a member changed its credentials (a setuid program): nothing we may do
            return False
        return True

    async def end(self, grace: float = KILL_GRACE) -> None:
        """Terminate the group and wait (at most grace plus a moment) for the program's exit."""
        if self.running:
            self.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.exited), grace + 1.0)
        if self.running:
            self.kill()
