"""One serving child of `gateway dev`, as the supervisor sees it: spawn, go, status bytes, stop.

A child is spawned as a standby (`--standby`): it imports Python and
gateway, then waits for GO on its status socket. The socket carries READY or
FAILED back, and its EOF tells either side that the other is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from gateway.dev.child import FAILED, GO, GRACE, READY

STOP_WAIT = GRACE + 5.0  # then SIGKILL: a child stuck past its grace
STATUS_WAIT = 0.5  # reading the last status byte after a child exited


class ServingProcess:
    """A child process of the supervisor: a standby until go(), then the one serving."""

    def __init__(
        self,
        proc: asyncio.subprocess.Process,
        status: socket.socket,
        generation: int,
        on_status: Callable[[ServingProcess, bytes], None],
        on_exit: Callable[[ServingProcess, int], None],
    ) -> None:
        self.proc = proc
        self.status = status
        self.generation = generation  # of the listeners it inherited
        self.on_status = on_status
        self.on_exit = on_exit
        self.state = b""  # READY or FAILED, once it said
        self.live = False  # told to go
        self.stopping = False
        self.started = 0.0
        self.monitor = asyncio.get_running_loop().create_task(self._monitor())

    @classmethod
    async def spawn(
        cls,
        config_path: Path,
        fds: list[int],
        log_level: str,
        generation: int,
        on_status: Callable[[ServingProcess, bytes], None],
        on_exit: Callable[[ServingProcess, int], None],
    ) -> ServingProcess:
        ours, theirs = socket.socketpair()
        command = [sys.executable, "-m", "gateway.dev.child", str(config_path), "--standby"]
        command += [f"--listen=fd:{fd}" for fd in fds]
        command += [f"--status-fd={theirs.fileno()}", f"--log-level={log_level}"]
        try:
            proc = await asyncio.create_subprocess_exec(*command, pass_fds=[*fds, theirs.fileno()])
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        return cls(proc, ours, generation, on_status, on_exit)

    @property
    def running(self) -> bool:
        return self.proc.returncode is None and not self.stopping

    async def go(self) -> bool:
        """Tell a standby to load the config and serve; False when it is gone already."""
        self.live = True
        self.started = time.monotonic()
        try:
            await asyncio.get_running_loop().sock_sendall(self.status, GO)
        except OSError:
            return False
        return self.proc.returncode is None

    def signal(self, signum: int) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signum)

    async def stop(self) -> bool:
        """SIGTERM, then wait up to STOP_WAIT; True when it had to be killed."""
        self.stopping = True
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(self.monitor), STOP_WAIT)
        except TimeoutError:
            self.signal(signal.SIGKILL)
            await self.monitor
            return True
        return False

    async def _monitor(self) -> None:
        reader = asyncio.get_running_loop().create_task(self._read_status())
        code = await self.proc.wait()
        with contextlib.suppress(TimeoutError):  # a grandchild holding the socket open
            await asyncio.wait_for(reader, STATUS_WAIT)
        self.status.close()
        self.on_exit(self, code)

    async def _read_status(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            while data := await loop.sock_recv(self.status, 256):
                for message in (data[i : i + 1] for i in range(len(data))):
                    if self.state != FAILED and message in (READY, FAILED):  # an error page says R too
                        self.state = message
                        self.on_status(self, message)
