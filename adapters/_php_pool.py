"""A supervised php-cgi: `php-cgi -b <socket>` with its children, restarted when it dies, stopped with us.

php-cgi in FastCGI mode is its own small pool: the master forks
PHP_FCGI_CHILDREN children that accept on the socket, replaces a child after
PHP_FCGI_MAX_REQUESTS requests, and kills its children on SIGTERM. What it
cannot do is survive its own death or outlive us cleanly, so:
- it runs in a session of its own (a process group to signal as one), with
  PR_SET_PDEATHSIG = SIGTERM: if the gateway dies, even by kill -9, the
  kernel sends the master the SIGTERM that takes its children down;
- a master that exits is restarted with exponential backoff (logged with its
  status); the backoff resets after it stays up STABLE seconds;
- its environment is clean (PATH and the route's `env` only: no secrets of
  the gateway's), and `-d cgi.fix_pathinfo=0` always: the gateway resolves
  SCRIPT_FILENAME itself (see _fastcgi_scripts.py);
- its stderr (startup errors, a script's php://stderr) is a pipe read into
  the error log through StderrLog: tagged, bounded, escaped, never the
  gateway's own stderr, where a script could flood or forge log lines.

Routes with the same binary, root, php_ini, env and pool settings share
one PhpCgi (shared() counts its users).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path

from adapters._fastcgi_client import FastCgiPool
from adapters._stderr_log import StderrLog
from gateway.errors import StartupError
from gateway.pools.options import POOL_HOST_ENV
from gateway.processes import die_with_parent_as_batch, exit_description, socket_path

logger = logging.getLogger("gateway.adapters.php")
STABLE = 30.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
READY_TIMEOUT = 10.0
STOP_GRACE = 5.0
STDERR_READ = 64 * 1024
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"


class PhpCgi:
    """One php-cgi master and its children, on one Unix socket."""

    def __init__(
        self,
        binary: str,
        socket_path: Path,
        children: int,
        max_requests: int,
        ini: dict[str, str],
        env: dict[str, str],
        label: str,
    ) -> None:
        self.binary = binary
        self.socket_path = socket_path
        self.children = children
        self.max_requests = max_requests
        self.ini = ini
        self.env = env
        self.label = label
        self.process: asyncio.subprocess.Process | None = None
        self.watcher: asyncio.Task[None] | None = None
        self.stderr_relay: asyncio.Task[None] | None = None
        self.stopping = False
        self.users = 0
        self.restarts = 0
        self.clients: list[FastCgiPool] = []  # the connection pools of the routes it serves, for metrics()
        self.unregister_metrics: Callable[[], None] | None = None

    def metrics(self) -> dict[str, int]:
        """For the metrics handler's pool gauges: its children while it runs, and its routes' requests."""
        running = self.process is not None and self.process.returncode is None
        return {
            "processes": self.children if running else 0,
            "busy": sum(client.busy for client in self.clients),
            "queued": sum(client.queued for client in self.clients),
        }

    @property
    def address(self) -> str:
        return f"unix:{self.socket_path}"

    def command(self) -> list[str]:
        options = [f"{name}={value}" for name, value in self.ini.items()]
        defines = [arg for option in [*options, "cgi.fix_pathinfo=0"] for arg in ("-d", option)]
        return [self.binary, "-b", str(self.socket_path), *defines]

    def environment(self) -> dict[str, str]:
        return {
            "PATH": CLEAN_PATH,
            **self.env,
            "PHP_FCGI_CHILDREN": str(self.children),
            "PHP_FCGI_MAX_REQUESTS": str(self.max_requests),
        }

    async def start(self) -> None:
        """Spawn php-cgi and wait until its socket accepts connections; StartupError says why not."""
        self.stopping = False
        await self.spawn()
        await self.wait_ready()
        self.watcher = asyncio.ensure_future(self.watch())

    async def spawn(self) -> None:
        self.socket_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command(),
                env=self.environment(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,  # into the error log, bounded and tagged (relay_stderr)
                start_new_session=True,
                preexec_fn=die_with_parent_as_batch,
            )
        except FileNotFoundError:
            raise StartupError(
                f"{self.label}: php-cgi not found ({self.binary!r}); install it "
                "(Debian/Ubuntu: apt-get install php-cgi) or set php_binary to its path"
            ) from None
        except PermissionError:
            raise StartupError(f"{self.label}: {self.binary!r} cannot be run (check its permissions)") from None
        assert self.process.stderr is not None
        self.stderr_relay = asyncio.ensure_future(self.relay_stderr(self.process.stderr))
        logger.info(
            "%s: started php-cgi (pid %d, %d children) on %s",
            self.label,
            self.process.pid,
            self.children,
            self.socket_path,
        )

    async def wait_ready(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT
        while loop.time() < deadline:
            if self.process is not None and self.process.returncode is not None:
                if self.stderr_relay is not None:  # its last words first
                    await asyncio.wait([self.stderr_relay], timeout=1.0)
                raise StartupError(
                    f"{self.label}: php-cgi exited at startup with status {self.process.returncode} "
                    f"(its messages are above; check php_ini and php_binary)"
                )
            if await self.accepts():
                return
            await asyncio.sleep(0.02)
        raise StartupError(f"{self.label}: php-cgi did not open {self.socket_path} within {READY_TIMEOUT:g}s")

    async def relay_stderr(self, stream: asyncio.StreamReader) -> None:
        """What php-cgi and its children write to stderr (startup errors, php://stderr), as error-log lines.

        Through StderrLog: tagged, cut at its line length, control characters
        escaped (no forged log lines), and at most its line count a second.
        """
        loop = asyncio.get_running_loop()
        label = f"{self.label}: php-cgi stderr"
        log, window = StderrLog(label, logger), loop.time()
        while chunk := await stream.read(STDERR_READ):
            if loop.time() - window >= 1.0:
                log.flush()
                log, window = StderrLog(label, logger), loop.time()
            log.feed(chunk)
        log.flush()

    async def accepts(self) -> bool:
        try:
            _, writer = await asyncio.open_unix_connection(str(self.socket_path))
        except OSError:
            return False
        writer.close()
        return True

    async def watch(self) -> None:
        """Restart php-cgi whenever it exits, until stop()."""
        loop = asyncio.get_running_loop()
        delay = BACKOFF_FIRST
        while not self.stopping and self.process is not None:
            started = loop.time()
            status = await self.process.wait()
            if self.stopping:
                return
            if loop.time() - started > STABLE:
                delay = BACKOFF_FIRST
            logger.error(
                "%s: php-cgi (pid %d) exited with %s; restarting in %.1fs",
                self.label,
                self.process.pid,
                exit_description(status),
                delay,
            )
            self.stop_group(signal.SIGTERM)  # children of a killed master must not keep the socket
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)
            try:
                await self.spawn()
            except StartupError as exc:
                logger.error("%s", exc)
                continue
            self.restarts += 1

    def stop_group(self, signum: int) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    async def stop(self) -> None:
        """SIGTERM the group, SIGKILL what is left after STOP_GRACE, remove the socket."""
        self.stopping = True
        if self.watcher is not None:
            self.watcher.cancel()
        process = self.process
        if process is not None and process.returncode is None:
            self.stop_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                logger.error("%s: php-cgi did not stop within %gs; killing it", self.label, STOP_GRACE)
        self.stop_group(signal.SIGKILL)  # children that ignored their master's SIGTERM
        if self.stderr_relay is not None:
            await asyncio.wait([self.stderr_relay], timeout=1.0)  # its last lines
            self.stderr_relay.cancel()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


_SHARED: dict[tuple[object, ...], PhpCgi] = {}


def shared(
    binary: str,
    root: str,
    ini: dict[str, str],
    env: dict[str, str],
    children: int,
    max_requests: int,
    runtime_dir: Path,
    label: str,
) -> PhpCgi:
    """The PhpCgi for these settings, made once for every route that names them."""
    key = (
        binary,
        root,
        tuple(sorted(ini.items())),
        tuple(sorted(env.items())),
        children,
        max_requests,
        str(runtime_dir),
    )
    found = _SHARED.get(key)
    if found is None:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:12]
        path = socket_path(runtime_dir, f"php-{digest}-{owner_tag()}.sock")
        found = _SHARED[key] = PhpCgi(binary, path, children, max_requests, ini, env, label)
    return found


def owner_tag() -> str:
    """Whose php-cgi: a supervisor's pool host and its workers agree on the host's name; else this process."""
    host = os.environ.get(POOL_HOST_ENV)
    return Path(host).stem if host else str(os.getpid())


def release(php: PhpCgi) -> None:
    """Forget a PhpCgi that no route uses any more."""
    for key, value in list(_SHARED.items()):
        if value is php:
            del _SHARED[key]
