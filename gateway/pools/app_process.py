"""One app process of a pool: spawned, watched until it serves, stopped gracefully.

The process is `<python> -m gateway serve CONFIG --isolated-route WHERE
--listen unix:SOCKET` (serving.py), in a session of its own with a
parent-death signal (no orphan survives the gateway, even a kill -9), and
the gateway's environment plus the route's `env`, minus the variables that
would make it think it is one of the supervisor's workers. It says it
serves by writing "R" to the pipe named in GATEWAY_READY_FD, as workers do.

States: starting → ready → (draining →) stopped. A draining process takes
no new requests and stops once its last one has finished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from pathlib import Path

from gateway.pools.options import POOL_HOST_ENV
from gateway.processes import die_with_parent_as_batch, exit_description, rss_of
from gateway.supervisor import MAX_REQUESTS_ENV, READY_FD_ENV, STATUS_ENV

logger = logging.getLogger("gateway.pools")
STOP_GRACE = 10.0
WORKER_ENV = (READY_FD_ENV, MAX_REQUESTS_ENV, STATUS_ENV, POOL_HOST_ENV)


class StartFailed(Exception):
    """The process exited or stayed silent before it served; the message says which."""


class AppProcess:
    """One process serving one isolated route's app."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, socket_path: Path, label: str) -> None:
        self.command = command
        self.env = env
        self.cwd = cwd
        self.socket_path = socket_path
        self.label = label  # "pool vhost[0].route[1] process 3": for logs
        self.process: asyncio.subprocess.Process | None = None
        self.state = "starting"
        self.busy = 0  # requests in flight
        self.served = 0  # requests finished
        self.started = time.monotonic()
        self.idle_since = self.started
        self.recycle_reason = ""  # why it is draining, once it is

    @property
    def address(self) -> str:
        return f"unix:{self.socket_path}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def exited(self) -> bool:
        """Whether it has ended, even before the loop heard of it (WNOWAIT leaves the reaping to the loop)."""
        if self.process is None or self.process.returncode is not None:
            return True
        try:
            return os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        except ChildProcessError:
            return True  # reaped already, by the loop's child watcher

    def rss(self) -> int:
        return rss_of(self.pid) if self.pid else 0

    async def start(self, start_timeout: float) -> None:
        """Spawn and wait until it serves; StartFailed says why it did not."""
        read_end, write_end = os.pipe()
        try:
            self.process = await self._spawn(write_end)
        finally:
            os.close(write_end)
        try:
            async with asyncio.timeout(start_timeout):
                await self._wait_ready(read_end)
        except TimeoutError:
            self.kill()
            raise StartFailed(f"it did not start serving within {start_timeout:g}s (pool.start_timeout)") from None
        finally:
            os.close(read_end)
        self.state = "ready"
        self.idle_since = time.monotonic()

    async def _spawn(self, ready_fd: int) -> asyncio.subprocess.Process:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        env = {key: value for key, value in os.environ.items() if key not in WORKER_ENV}
        env.update(self.env)
        env[READY_FD_ENV] = str(ready_fd)
        try:
            return await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                cwd=self.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(ready_fd,),
                start_new_session=True,
                preexec_fn=die_with_parent_as_batch,
            )
        except OSError as exc:
            raise StartFailed(f"{self.command[0]} cannot be run: {exc.strerror or exc}") from None

    async def _wait_ready(self, read_end: int) -> None:
        """Until "R" comes down the pipe; StartFailed when the process exits first."""
        loop = asyncio.get_running_loop()
        arrived = loop.create_future()

        def readable() -> None:
            data = os.read(read_end, 64)
            if not arrived.done():
                arrived.set_result(data)

        loop.add_reader(read_end, readable)
        try:
            data = await arrived
        finally:
            loop.remove_reader(read_end)
        if not data.startswith(b"R"):
            assert self.process is not None
            status = await self.process.wait()
            raise StartFailed(f"it exited with {exit_description(status)} before serving (its messages are above)")

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    async def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM (it finishes what it serves), SIGKILL after grace; the socket file removed."""
        self.state = "stopped"
        process = self.process
        if process is not None and process.returncode is None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace)
            except TimeoutError:
                logger.error("%s (pid %d) did not stop within %gs; killing it", self.label, process.pid, grace)
                self.kill()
                await process.wait()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()

    def describe(self) -> dict[str, object]:
        """For `gateway status`."""
        return {
            "pid": self.pid,
            "state": self.state,
            "requests": self.served,
            "in_flight": self.busy,
            "rss": self.rss(),
            "uptime": round(time.monotonic() - self.started, 1),
            "recycle_reason": self.recycle_reason,
        }
