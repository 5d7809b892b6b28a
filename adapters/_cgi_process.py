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
- subprocess.Popen starts the program (close_fds), not the loop's
  subprocess_exec: uvloop's (libuv's) spawn leaves the child extra copies
  of its own stdout and stderr and a pipe of the loop's, so a program that
  closed stdout and worked on held its client until it exited. The pipes
  are then handed to the loop as streams.
- The exit is seen through a pidfd the loop watches (a thread waiting where
  the kernel has no pidfd_open), never through the pipes closing: a forked
  child holding stdout would keep that waiting.
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
import threading
from typing import IO

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


class Program:
    """A started program: its pipes as the loop's streams, its exit status once it exited."""

    def __init__(self, popen: subprocess.Popen[bytes], stdin: asyncio.StreamWriter | None) -> None:
        self.popen = popen
        self.stdin = stdin
        self.stdout = asyncio.StreamReader(STREAM_LIMIT)
        self.stderr = asyncio.StreamReader(STREAM_LIMIT)

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode


async def _reader(pipe: IO[bytes], stream: asyncio.StreamReader) -> None:
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stream), pipe)


async def _writer(pipe: IO[bytes]) -> asyncio.StreamWriter:
    loop = asyncio.get_running_loop()
    protocol = asyncio.StreamReaderProtocol(asyncio.StreamReader())
    transport, _ = await loop.connect_write_pipe(lambda: protocol, pipe)
    return asyncio.StreamWriter(transport, protocol, None, loop)


class ProcessGroup:
    """One running program and the process group it leads."""

    def __init__(self, live: set[ProcessGroup]) -> None:
        self.live = live  # the route's running groups, for aclose()
        self.pid = 0
        self.exited = asyncio.get_running_loop().create_future()
        self.killer: asyncio.TimerHandle | None = None

    async def spawn(self, argv: list[bytes], env: dict[bytes, bytes], cwd: bytes, stdin: bool) -> Program:
        """Start argv; OSError when it cannot be started."""
        popen = subprocess.Popen(  # noqa: ASYNC220 - fork+exec, as the loop's own subprocess_exec does it
            argv,
            bufsize=0,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        self.started(popen.pid)
        self.watch(popen)
        assert popen.stdout is not None and popen.stderr is not None
        program = Program(popen, await _writer(popen.stdin) if popen.stdin is not None else None)
        await _reader(popen.stdout, program.stdout)
        await _reader(popen.stderr, program.stderr)
        return program

    def watch(self, popen: subprocess.Popen[bytes]) -> None:
        """Call on_exit() once the program exited (and reap it)."""
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):  # no pidfd (an old kernel): a thread waits instead
            waiter = threading.Thread(target=self.wait_in_thread, args=(popen, loop), daemon=True)
            waiter.start()
            return

        def readable() -> None:
            if popen.poll() is None:
                return
            loop.remove_reader(pidfd)
            os.close(pidfd)
            self.on_exit()

        loop.add_reader(pidfd, readable)

    def wait_in_thread(self, popen: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
        popen.wait()
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(self.on_exit)

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
