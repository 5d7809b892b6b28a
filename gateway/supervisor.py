"""The supervisor: `workers` front processes sharing the listeners, restarted, recycled and reloaded.

One readable main loop (run()): signal handlers only record the signal and
wake the loop through a pipe; the loop acts. Each worker is
`python -m gateway serve ... --listen fd:N` (the same code as a single
process) with the listening sockets inherited and a pipe back to us on which
it writes R when it serves and M when it has served max_requests.

- A worker that dies is restarted with exponential backoff (reset once it
  served for STABLE seconds) and logged with its exit status; workers that
  fail before serving BOOT_FAILURES times in a row stop the gateway (exit 3)
  instead of looping forever.
- Recycling (max_requests, max_memory): a replacement starts first, and the
  old worker is told to drain (SIGTERM) only once the new one serves.
- SIGHUP: the config is checked in a child (`gateway check`, so no app is
  imported here); invalid → every problem is logged and the old workers keep
  serving; valid → a new generation starts, and the old one drains once the
  new one serves. Listen addresses are kept (changing them needs a restart).
- SIGUSR1: passed to the workers, which reopen their access log files
  (logrotate's postrotate).
- SIGTERM/SIGINT: workers drain (up to shutdown_timeout), then are killed;
  the pid file and Unix socket files are removed; exit 0. Workers get a
  parent-death signal, so even kill -9 of the supervisor leaves no orphan
  (and each worker stops its own php-cgi and CGI children as it stops).

- Isolated routes (gateway/pools/): each generation first gets a pool host,
  a child that owns every app pool; the generation's workers start once it
  serves and reach it on a Unix socket (GATEWAY_POOL_HOST). A host that dies
  is restarted like a worker; an old generation's host drains once its
  workers are gone, and at stop the hosts stop after the workers.

With `workers = 1` (the default) `gateway serve` is one process, no supervisor.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from gateway.config.schema import Config
from gateway.errors import ConfigError
from gateway.listeners import bind, describe
from gateway.metrics import multiprocess as metrics_files
from gateway.pools.options import POOL_HOST_ENV
from gateway.processes import die_with_parent, exit_description, rss_of, socket_path

logger = logging.getLogger("gateway.supervisor")
READY_FD_ENV = "GATEWAY_READY_FD"  # a worker writes to this fd: R = serving, M = max_requests reached
MAX_REQUESTS_ENV = "GATEWAY_MAX_REQUESTS"  # this worker's max_requests, jitter applied
STATUS_ENV = "GATEWAY_STATUS_REPORTS"  # set: the worker writes S{json} once a second (for `gateway status`)
LISTEN_AS_ENV = "GATEWAY_LISTEN_AS"  # {"fd:N": "the config's address"}: which listener a worker's fd is (for TLS)
ADMIN_SOCKET = "admin.sock"
STABLE = 30.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 10.0
BOOT_FAILURES = 3
START_TIMEOUT = 60.0
MEMORY_CHECK = 5.0
KILL_GRACE = 5.0
EXIT_OK, EXIT_STARTUP_FAILED = 0, 3


@dataclass
class Worker:
    """One front process and what we know of it."""

    process: subprocess.Popen[bytes]
    pipe: int  # our end of its ready/recycle pipe
    generation: int
    started: float = field(default_factory=time.monotonic)
    serving: bool = False
    draining: bool = False  # told to stop; not replaced when it exits
    reopen_pending: bool = False  # SIGUSR1 came while it was starting: sent once it serves
    timed_out: bool = False  # killed for not serving within START_TIMEOUT
    replaced: bool = False  # a replacement was started (recycle)
    reason: str = ""  # why it was recycled, for the log
    started_because: str = "start"  # shown by `gateway status`: start, restart, reload, or a recycle reason
    report: dict[str, object] = field(default_factory=dict)  # its last status line
    buffer: bytes = b""
    role: str = "worker"  # or "pools": the generation's pool host (isolated routes' app pools)

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(frozen=True)
class Restart:
    """A worker to start again at `at` (monotonic time), after its backoff delay."""

    at: float
    generation: int
    because: str
    role: str


class Supervisor:
    """Runs `workers` processes for one config until SIGTERM/SIGINT."""

    def __init__(self, config: Config, worker_args: list[str], reread: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.worker_args = worker_args  # `gateway serve` arguments, less --listen
        self.reread = reread  # the config file read again with the command line's settings (reload)
        self.workers: list[Worker] = []
        self.generation = 1  # the generation that serves, or is starting to replace the one that does
        self.last_generation = 1
        self.signals: list[int] = []
        self.boot_failures: dict[int, int] = {}  # per generation: a reload's failing workers are not the old ones'
        self.delay = BACKOFF_FIRST
        self.restarts: list[Restart] = []  # workers to start again once their backoff delay has passed
        self.configs: dict[int, Config] = {1: config}  # each generation's config, to go back to after a failed reload
        self.wake_r, self.wake_w = os.pipe()
        self.sockets: list[socket.socket] = []
        self.admin: socket.socket | None = None
        self.stopping = False
        self.started = time.time()
        self.metrics_dir: Path | None = None  # the workers' shared metrics files, when a route mounts metrics

    # The main loop -------------------------------------------------------------

    def run(self) -> int:
        settings = self.config.server
        self.sockets = [bind(spec, settings.backlog) for spec in settings.listen]
        for sock in self.sockets:
            sock.set_inheritable(True)
        pid_file = write_pid_file(self.config)
        self.metrics_dir = metrics_files.prepare(self.config)
        self.admin = open_admin_socket(self.config)
        self.install_signals()
        count = settings.workers or os.cpu_count() or 1
        logger.info(
            "gateway supervisor (pid %d) on %s: starting %d workers",
            os.getpid(),
            ", ".join(
                describe(s, "https" if spec in self.config.tls_listeners else "http")
                for s, spec in zip(self.sockets, settings.listen, strict=True)
            ),
            count,
        )
        self.start_generation(self.generation, "start")
        code = EXIT_OK
        next_memory_check = time.monotonic() + MEMORY_CHECK
        while not self.stopping:
            self.wait(self.next_wait())
            for signum in self.take_signals():
                if signum in (signal.SIGTERM, signal.SIGINT):
                    self.stopping = True
                elif signum == signal.SIGHUP:
                    self.reload()
                elif signum == signal.SIGUSR1:
                    self.reopen_logs()
            if self.stopping:
                break  # nothing more is started: stop_all() follows
            self.read_pipes()
            if self.reap():
                logger.error(
                    "workers failed %d times in a row before serving; stopping (their errors are above)",
                    BOOT_FAILURES,
                )
                code = EXIT_STARTUP_FAILED
                break
            self.start_due()
            self.time_out_starts()
            if time.monotonic() >= next_memory_check:
                next_memory_check = time.monotonic() + MEMORY_CHECK
                self.check_memory()
        for sock in self.sockets:
            sock.close()  # the workers close theirs as they drain: new connections are refused, not queued
        self.stop_all()
        self.remove_files(pid_file)
        close_admin_socket(self.admin)
        logger.info("gateway stopped")
        return code

    def wait(self, timeout: float) -> None:
        """Sleep until a signal, a worker's message, or the timeout."""
        pipes = [w.pipe for w in self.workers]
        admin = [self.admin.fileno()] if self.admin is not None else []
        # max(): a deadline computed a moment ago may have passed already, and select() refuses < 0.
        readable, _, _ = select.select([self.wake_r, *pipes, *admin], [], [], max(timeout, 0.0))
        if self.wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(self.wake_r, 512)
        if self.admin is not None and self.admin.fileno() in readable:
            answer_admin(self.admin, self.status())

    # Signals -------------------------------------------------------------------

    def install_signals(self) -> None:
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(signum, self.on_signal)
        signal.signal(signal.SIGCHLD, self.on_signal)

    def on_signal(self, signum: int, frame: object) -> None:
        """Only record it and wake the loop: the loop acts."""
        if signum != signal.SIGCHLD:
            self.signals.append(signum)
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self.wake_w, b"!")

    def take_signals(self) -> list[int]:
        taken, self.signals = self.signals, []
        return taken

    # Workers -------------------------------------------------------------------

    @property
    def hosts_pools(self) -> bool:
        """Whether the config has isolated or PHP routes, whose pools one process per generation owns."""
        routes = [route for vhost in self.config.vhosts for route in vhost.routes]
        return any(route.isolation.isolated or route.handler == "php" for route in routes)

    def pool_host_socket(self, generation: int) -> Path:
        return socket_path(self.config.runtime_path, f"pools-{os.getpid()}-{generation}.sock")

    def start_generation(self, generation: int, because: str) -> None:
        """The pool host first when there is one (workers follow once it serves: on_serving), else the workers."""
        if self.hosts_pools:
            self.spawn(generation, because, role="pools")
            return
        for _ in range(self.config.server.workers or os.cpu_count() or 1):
            self.spawn(generation, because)

    def spawn(self, generation: int, because: str = "start", role: str = "worker") -> Worker:
        settings = self.config.server
        read_end, write_end = os.pipe()
        os.set_blocking(read_end, False)
        env = {**os.environ, READY_FD_ENV: str(write_end), STATUS_ENV: "1"}
        if self.hosts_pools:
            env[POOL_HOST_ENV] = str(self.pool_host_socket(generation))  # the host's name: php-cgi sockets
        if role == "pools":
            fds = []
            listen = ["--pool-host", "--listen", f"unix:{self.pool_host_socket(generation)}", "--access-log", "off"]
        else:
            fds = [sock.fileno() for sock in self.sockets]
            listen = [arg for fd in fds for arg in ("--listen", f"fd:{fd}")]
            env[LISTEN_AS_ENV] = listen_as(self)
            if settings.max_requests:
                env[MAX_REQUESTS_ENV] = str(settings.max_requests + random.randint(0, settings.max_requests_jitter))
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", *self.worker_args, *listen],
            pass_fds=[*fds, write_end],
            env=env,
            preexec_fn=die_with_parent,
            # Its own process group: a terminal's Ctrl-C reaches only the supervisor, whose one SIGTERM lets
            # in-flight requests finish (SIGINT and SIGTERM both arriving made the second "stop at once").
            process_group=0,
        )
        os.close(write_end)
        worker = Worker(process, read_end, generation, started_because=because, role=role)
        self.workers.append(worker)
        return worker

    def read_pipes(self) -> None:
        """Lines from the workers: R (serving), M (max_requests reached), S{json} (status)."""
        for worker in list(self.workers):
            try:
                data = os.read(worker.pipe, 65536)
            except (BlockingIOError, OSError):
                continue
            *lines, worker.buffer = (worker.buffer + data).split(b"\n")
            worker.buffer = worker.buffer[-65536:]
            for line in lines:
                self.on_message(worker, line)

    def on_message(self, worker: Worker, line: bytes) -> None:
        if line == b"R" and not worker.serving:
            self.on_serving(worker)
        elif line == b"M" and not worker.replaced:
            self.recycle(worker, "served max_requests")
        elif line.startswith(b"S"):
            with contextlib.suppress(ValueError):
                worker.report = json.loads(line[1:])

    def reopen_logs(self) -> None:
        """SIGUSR1: every worker reopens its access log files (the pools write none).

        A worker still starting gets the signal once it serves: it may have
        opened the file before it was renamed, and its handler is not there yet.
        """
        workers = [w for w in self.workers if w.role == "worker"]  # draining ones too: they still log
        logger.info("SIGUSR1: %d worker(s) reopen their access log files", len(workers))
        for worker in workers:
            if worker.serving:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(signal.SIGUSR1)
            else:
                worker.reopen_pending = True

    def on_serving(self, worker: Worker) -> None:
        worker.serving = True
        if worker.reopen_pending:
            worker.reopen_pending = False
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGUSR1)
        self.boot_failures.pop(worker.generation, None)
        if worker.role == "pools":
            logger.info("pool host %d (generation %d) is serving", worker.pid, worker.generation)
            if not any(w.generation == worker.generation and w.role == "worker" for w in self.workers):
                for _ in range(self.config.server.workers or os.cpu_count() or 1):
                    self.spawn(worker.generation, worker.started_because)
            return
        logger.info("worker %d (generation %d) is serving", worker.pid, worker.generation)
        # A new worker serving lets the one it replaces, or the older generation, drain.
        for other in self.workers:
            if other is worker or other.draining or other.role == "pools":
                continue  # an old pool host drains once its workers are gone (reap)
            if other.generation < worker.generation and self.generation_serving(worker.generation):
                self.drain(other, "reloaded")
            elif other.replaced and other.generation == worker.generation:
                self.drain(other, other.reason)
                break

    def generation_serving(self, generation: int) -> bool:
        return all(w.serving for w in self.workers if w.generation == generation and not w.draining)

    def recycle(self, worker: Worker, reason: str) -> None:
        """Start a replacement; the old one drains when the new one serves."""
        worker.replaced = True
        worker.reason = reason
        logger.info("worker %d %s: starting its replacement", worker.pid, reason)
        self.spawn(worker.generation, reason)

    def drain(self, worker: Worker, reason: str) -> None:
        worker.draining = True
        logger.info("worker %d stops (%s): finishing its requests", worker.pid, reason)
        with contextlib.suppress(ProcessLookupError):
            worker.process.send_signal(signal.SIGTERM)

    def reap(self) -> bool:
        """Forget workers that exited and schedule the restart of those that should run; True to give up.

        Giving up (exit 3) is only for a gateway where nothing serves: workers
        of a reload that keep failing before they serve are abandoned and the
        generation already serving goes on (abandon_generation()); a worker
        that keeps failing beside others that serve is retried, slowly.
        """
        for worker in list(self.workers):
            status = worker.process.poll()
            if status is None:
                continue
            self.workers.remove(worker)
            os.close(worker.pipe)
            if self.metrics_dir is not None:
                metrics_files.forget_process(self.metrics_dir, worker.pid)
            if worker.draining or self.stopping:
                self.drain_unused_pool_hosts()
                continue
            failures = 0
            if not worker.serving:
                failures = self.boot_failures[worker.generation] = self.boot_failures.get(worker.generation, 0) + 1
            uptime = time.monotonic() - worker.started
            if uptime > STABLE:
                self.delay = BACKOFF_FIRST
            giving_up = failures >= BOOT_FAILURES
            then = "" if worker.replaced or giving_up else f"; restarting in {self.delay:.1f}s"
            name = "pool host" if worker.role == "pools" else "worker"
            logger.error("%s %d exited with %s after %.1fs%s", name, worker.pid, exit_description(status), uptime, then)
            if giving_up and self.abandon_generation(worker.generation):
                continue
            if giving_up and not any(w.serving and not w.draining for w in self.workers):
                return True
            if giving_up:  # the others serve (a worker restarted after a reload was abandoned reads the new files)
                logger.error("%s keeps failing before it serves; the others serve on; retrying", name)
                self.delay = BACKOFF_MAX
            if worker.replaced:
                continue  # its replacement is already starting
            because = f"restart: {name} {worker.pid} exited with {exit_description(status)}"
            # Its own generation: an old worker dying while a reload starts is not one more of the new ones.
            self.restarts.append(Restart(time.monotonic() + self.delay, worker.generation, because, worker.role))
            self.delay = min(self.delay * 2, BACKOFF_MAX)
        return False

    def abandon_generation(self, generation: int) -> bool:
        """A reload whose workers cannot start: stop them, keep the serving generation; False if none serves."""
        serving = [w.generation for w in self.workers if w.generation < generation and w.serving and not w.draining]
        if not serving:
            return False
        kept = max(serving)  # the newest that serves: an older one drains once it does
        logger.error(
            "reload abandoned: the new workers failed %d times before serving (their errors are above); "
            "the workers of generation %d keep serving",
            BOOT_FAILURES,
            kept,
        )
        for worker in self.workers:
            if worker.generation == generation and not worker.draining:
                self.drain(worker, "its generation was abandoned")
        self.restarts = [r for r in self.restarts if r.generation != generation]
        self.configs.pop(generation, None)
        if generation == self.generation:
            self.generation = kept
            self.config = self.configs.get(kept, self.config)
        return True

    def start_due(self) -> None:
        """Start the restarts whose backoff delay has passed (the loop never sleeps through one)."""
        now = time.monotonic()
        due = [r for r in self.restarts if r.at <= now]
        if not due:
            return
        self.restarts = [r for r in self.restarts if r.at > now]
        for restart in due:
            wanted = restart.generation == self.generation or any(
                w.generation == restart.generation and not w.draining for w in self.workers
            )
            if wanted:
                self.spawn(restart.generation, restart.because, restart.role)

    def time_out_starts(self) -> None:
        """A worker not serving START_TIMEOUT seconds after it started is killed (and counts as a boot failure)."""
        now = time.monotonic()
        for worker in self.workers:
            late = now - worker.started > START_TIMEOUT
            if late and not worker.serving and not worker.draining and not worker.timed_out:
                worker.timed_out = True
                logger.error("%s %d did not serve within %.0fs; killing it", worker.role, worker.pid, START_TIMEOUT)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()

    def next_wait(self) -> float:
        """Half a second, or less when a restart is due sooner."""
        if not self.restarts:
            return 0.5
        return max(0.0, min(0.5, min(r.at for r in self.restarts) - time.monotonic()))

    def drain_unused_pool_hosts(self) -> None:
        """An older generation's pool host stops once none of its workers is left to send it requests."""
        for host in self.workers:
            if host.role != "pools" or host.draining or host.generation == self.generation:
                continue
            if not any(w.role == "worker" and w.generation == host.generation for w in self.workers):
                self.drain(host, "its generation's workers are gone")

    def check_memory(self) -> None:
        limit = self.config.server.max_memory
        if not limit:
            return
        for worker in list(self.workers):
            if worker.role != "worker" or worker.replaced or worker.draining or not worker.serving:
                continue  # a pool host's app processes are recycled by their pool's own max_memory
            if rss_of(worker.pid) > limit:
                self.recycle(worker, f"uses more than max_memory ({limit} bytes)")

    def status(self) -> dict[str, object]:
        """What `gateway status` prints: the supervisor and every worker with its last report."""
        now = time.monotonic()
        workers = []
        for worker in self.workers:
            state = "draining" if worker.draining else "serving" if worker.serving else "starting"
            workers.append(
                {
                    **worker.report,
                    "pid": worker.pid,
                    "generation": worker.generation,
                    "state": state,
                    "uptime": round(now - worker.started, 1),
                    "rss": rss_of(worker.pid),
                    "started_because": worker.started_because,
                    "role": worker.role,
                }
            )
        return {
            "supervisor": os.getpid(),
            "config": self.config.source,
            "uptime": round(time.time() - self.started, 1),
            "generation": self.generation,
            "workers": workers,
        }

    # Reload and stop -------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: a new generation on the re-read config, if it is valid."""
        source = self.config.source
        logger.info("reloading %s", source)
        problems = check_in_child(source)
        if problems:
            for line in problems:
                logger.error("reload refused: %s", line)
            logger.error("the config is invalid: the current workers keep serving")
            return
        self.last_generation += 1  # never a number used before, even after an abandoned reload
        self.generation = self.last_generation
        self.adopt_config()
        self.configs[self.generation] = self.config
        live = {w.generation for w in self.workers} | {self.generation}
        self.configs = {generation: config for generation, config in self.configs.items() if generation in live}
        if self.metrics_dir is None:
            self.metrics_dir = metrics_files.enable_on_reload(source)
        self.start_generation(self.generation, "reload")

    def adopt_config(self) -> None:
        """The reloaded config's [server] (workers, max_requests, max_memory, pools...) for the new generation.

        The listeners stay the ones bound at start: changing `listen` needs a restart.
        """
        if self.reread is None:
            return
        try:
            config = self.reread()
        except (ConfigError, OSError) as exc:  # checked a moment ago; changed again since
            logger.error("reload: %s; the new workers use the settings read at start", exc)
            return
        listen = self.config.server.listen
        if config.server.listen != listen:
            logger.warning("reload: `listen` changed; still listening on %s (restart the gateway to change it)", listen)
            config = replace(config, server=replace(config.server, listen=listen))
        self.config = config

    def stop_all(self) -> None:
        """Workers first (their requests may still need the pools), then the pool hosts."""
        deadline = time.monotonic() + self.config.server.shutdown_timeout + KILL_GRACE
        for role in ("worker", "pools"):
            stopping = [w for w in self.workers if w.role == role]
            for worker in stopping:
                if worker.process.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.process.send_signal(signal.SIGTERM)
            for worker in stopping:
                remaining = max(0.0, deadline - time.monotonic())
                try:
                    worker.process.wait(remaining)
                except subprocess.TimeoutExpired:
                    logger.error("%s %d did not stop in time; killing it", worker.role, worker.pid)
                    worker.process.kill()
                    worker.process.wait()

    def remove_files(self, pid_file: Path | None) -> None:
        if pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
        for spec in self.config.server.listen:
            if spec.startswith("unix:"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(spec[5:])


def listen_as(supervisor: Supervisor) -> str:
    """LISTEN_AS_ENV: each inherited fd:N and the listen address it was bound for (the worker finds its TLS)."""
    specs = supervisor.config.server.listen
    return json.dumps({f"fd:{sock.fileno()}": spec for spec, sock in zip(specs, supervisor.sockets, strict=True)})


def write_pid_file(config: Config) -> Path | None:
    """The pid file of a gateway started from a config file (for `gateway stop|reload`); None without one."""
    if config.source == Config().source:
        return None
    path = pid_file_path(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{os.getpid()}\n")
    except OSError as exc:
        logger.error("cannot write the pid file %s: %s", path, exc)
        return None
    return path


def check_in_child(source: str) -> list[str]:
    """`gateway check source` in a child process (so no app is imported here): its problems, [] when valid."""
    check = subprocess.run(
        [sys.executable, "-m", "gateway", "check", source], capture_output=True, text=True, timeout=120
    )
    if check.returncode == 0:
        return []
    lines = [line.removeprefix("error: ") for line in check.stderr.splitlines() if line.startswith("error: ")]
    return lines or [check.stderr.strip() or f"gateway check exited with {check.returncode}"]


def admin_socket_path(config: Config) -> Path:
    return config.runtime_path / ADMIN_SOCKET


def open_admin_socket(config: Config) -> socket.socket | None:
    """The local admin socket `gateway status` reads (mode 0600, never TCP); None without a config file."""
    if config.source == Config().source:
        return None
    path = admin_socket_path(config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        admin = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            admin.bind(str(path))
        finally:
            os.umask(old)
        admin.listen(8)
        admin.setblocking(False)
    except OSError as exc:
        logger.error("cannot open the admin socket %s (gateway status will not work): %s", path, exc)
        return None
    return admin


def answer_admin(admin: socket.socket, status: dict[str, object]) -> None:
    with contextlib.suppress(BlockingIOError, OSError):
        client, _ = admin.accept()
        with client:
            client.settimeout(2.0)
            client.sendall(json.dumps(status).encode())


def close_admin_socket(admin: socket.socket | None) -> None:
    if admin is not None:
        path = admin.getsockname()
        admin.close()
        with contextlib.suppress(FileNotFoundError, TypeError):
            os.unlink(path)


def pid_file_path(config: Config) -> Path:
    """Where the supervisor's pid is: pid_file, relative to runtime_dir (itself relative to the config)."""
    return config.runtime_path / config.server.pid_file


def running_gateway(config: Config) -> int | None:
    """The pid in the config's pid file when that process is alive and is a gateway (not a reused pid); else None."""
    if config.source == Config().source:
        return None
    try:
        pid = int(pid_file_path(config).read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if pid != os.getpid() and _serves_gateway(command) else None


def _serves_gateway(argv: list[bytes]) -> bool:
    """`gateway serve …`, `python -m gateway serve …` or `python …/bin/gateway serve …` (not `less gateway.toml`)."""
    for index, arg in enumerate(argv[:-1]):
        named = os.path.basename(arg) == b"gateway" and (index < 2 or argv[index - 1] == b"-m")
        if named and argv[index + 1] == b"serve":
            return True
    return False
