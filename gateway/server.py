"""One serving process: listeners, lifespan, the once-a-second tick, graceful stop.

Order of a run: bind every listener (a port clash fails before the app
starts), run lifespan startup, start accepting, serve until SIGTERM/SIGINT,
then stop accepting, let in-flight responses finish up to shutdown_timeout,
close what is left, run lifespan shutdown, remove unix socket files.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

from gateway.config.schema import Config
from gateway.errors import StartupError
from gateway.http.protocol import HttpProtocol
from gateway.http.state import ServerState
from gateway.http.ws_settings import WebSocketSettings
from gateway.lifespan import Lifespan
from gateway.listeners import bind, describe
from gateway.logs import AccessLog, NullAccessLog, reopen_access_logs
from gateway.metrics.requests import instrument
from gateway.processes import rss_of
from gateway.stages.access import peer_trust
from gateway.supervisor import (
    MAX_REQUESTS_ENV,
    READY_FD_ENV,
    STATUS_ENV,
    admin_socket_path,
    open_admin_socket,
    write_pid_file,
)
from gateway.tls.acceptor import TlsAcceptor
from gateway.tls.serving import TlsService
from gateway.types import ASGIApp

logger = logging.getLogger("gateway.server")
EXIT_OK, EXIT_STARTUP_FAILED = 0, 3
TICK_MARGIN = 0.005  # seconds past the second the ticker wakes: a sleep may end a little early


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop when asked for or ("auto") when installed; plain asyncio otherwise."""
    if name in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if name == "uvloop":
                raise StartupError("loop = 'uvloop' but uvloop is not installed (pip install uvloop)") from None
        else:
            return uvloop.new_event_loop
    return asyncio.new_event_loop


class Server:
    """Serves one ASGI app under one configuration in this process."""

    def __init__(self, config: Config, app: ASGIApp) -> None:
        self.config = config
        self.app = app
        self.stop_requested: asyncio.Event | None = None
        self.force_stop = False
        self.tls = TlsService(config)

    def run(self) -> int:
        """Serve until stopped; returns the process exit code."""
        with asyncio.Runner(loop_factory=loop_factory(self.config.server.loop)) as runner:
            return runner.run(self.serve())

    async def serve(self) -> int:
        settings = self.config.server
        self.tls.load()
        sockets = [bind(spec, settings.backlog) for spec in settings.listen]
        unix_paths = [spec[5:] for spec in settings.listen if spec.startswith("unix:")]
        loop = asyncio.get_running_loop()
        self.stop_requested = asyncio.Event()
        self._install_signal_handlers(loop)
        access_log = AccessLog.open(settings.access_log, settings.access_log_format, "server.access_log")
        state = ServerState(self.app, self.config.limits, loop, access_log, settings.server_header)
        state.websocket = WebSocketSettings.of(settings, self.config.limits)
        if settings.trusted_proxies:
            state.trusted_peer = peer_trust(settings.trusted_proxies)
        instrument(state, self.app)  # counts requests when a route mounts the metrics handler; else nothing
        lifespan = Lifespan(self.app, state.lifespan_state)
        try:
            await lifespan.startup()
        except StartupError as exc:
            logger.error("%s", exc)
            _close_sockets(sockets, unix_paths)
            return EXIT_STARTUP_FAILED
        # Nothing to log anywhere (access_log = "off", no vhost's own, no metrics): no call per request.
        vhost_logs = getattr(self.app, "vhost_access_logs", True)  # an app that cannot tell: it may
        state.logs_requests = not isinstance(state.access_log, NullAccessLog) or bool(vhost_logs)
        servers, where = [], []
        for sock, spec in zip(sockets, settings.listen, strict=True):
            servers.append(await self._listen(sock, spec, state))
            where.append(describe(sock, "https" if self.tls.is_tls(spec) else "http"))
        logger.info("gateway serving on %s (pid %d)", ", ".join(where), os.getpid())
        # What startup made (modules, apps, config) lives as long as the server: out of the
        # collector's way, so its full collections walk only what requests make (4% of the
        # CPU of a PHP hello, callgrind; more with a Django project's heap).
        gc.freeze()
        await self.on_serving()
        _tell_supervisor(b"R")
        alone = not os.environ.get(READY_FD_ENV)  # not a worker of a supervisor (which answers for us)
        pid_file = write_pid_file(self.config) if alone else None
        admin = await self._serve_admin(state) if alone else None
        ticker = loop.create_task(self._tick(state))
        await self.stop_requested.wait()
        logger.info("gateway stopping: finishing in-flight requests (up to %.0fs)", settings.shutdown_timeout)
        for server in servers:
            server.close()
        await self._drain(state, settings.shutdown_timeout)
        ticker.cancel()
        self.tls.close()
        await lifespan.shutdown(settings.shutdown_timeout)
        access_log.close()
        _remove_unix_sockets(unix_paths)
        if pid_file is not None:
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
        if admin is not None:
            admin.close()
            with contextlib.suppress(FileNotFoundError):
                admin_socket_path(self.config).unlink()
        logger.info("gateway stopped")
        return EXIT_OK

    async def _listen(self, sock: socket.socket, spec: str, state: ServerState) -> asyncio.AbstractServer | TlsAcceptor:
        """Serve one bound listener: the HTTP core directly, or through TLS when the config gives it a certificate."""
        if self.tls.is_tls(spec):
            return self.tls.serve(sock, spec, state)
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: HttpProtocol(state), sock=sock, backlog=self.config.server.backlog)

    async def on_serving(self) -> None:
        """Called once the listeners accept, before readiness is reported: for a subclass's own tasks."""

    async def _serve_admin(self, state: ServerState) -> asyncio.AbstractServer | None:
        """`gateway status` for a single process: the same document a supervisor gives, with one worker."""
        sock = open_admin_socket(self.config)
        if sock is None:
            return None
        started = time.monotonic()

        def document() -> bytes:
            worker = {**self.report(state), "generation": 1, "state": "serving", "started_because": "start"}
            worker["uptime"] = round(time.monotonic() - started, 1)
            worker["rss"] = rss_of(os.getpid())
            return json.dumps({"supervisor": None, "config": self.config.source, "workers": [worker]}).encode()

        class Answer(asyncio.Protocol):
            def connection_made(self, transport: Any) -> None:  # uvloop's transports are not asyncio's classes
                transport.write(document())
                transport.close()

        loop = asyncio.get_running_loop()
        return await loop.create_unix_server(Answer, sock=sock)

    def report(self, state: ServerState) -> dict[str, Any]:
        """What `gateway status` shows of this process: requests, connections, its pools."""
        busy = sum(1 for protocol in state.connections if protocol.cycle is not None)
        return {
            "pid": os.getpid(),
            "requests": state.requests,
            "in_flight": busy,
            "connections": len(state.connections),
            "pools": handler_statuses(self.app),
        }

    def _install_signal_handlers(self, loop: asyncio.AbstractEventLoop) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._on_stop_signal)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        self._install_reopen_signal(loop)

    def _install_reopen_signal(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGUSR1, self._on_reopen_signal)

    def _on_reopen_signal(self) -> None:
        """logrotate's postrotate (or `gateway reopen-logs`): the access log files are opened again by name."""
        logger.info("SIGUSR1: reopened %d access log file(s)", reopen_access_logs())

    def _on_reload_signal(self) -> None:
        """One process cannot swap itself for a new one (that is the supervisor's, workers ≠ 1); it can
        read its certificate files again, which is what renewing them (certbot, acme.sh) needs."""
        if self.tls:
            logger.info("SIGHUP: reloading the certificates (a single process does not reload its config)")
            self.tls.reload()
            return
        logger.warning(
            "SIGHUP ignored: a single process does not reload; set workers = 2 or more (or use `gateway dev`)"
        )

    def _on_stop_signal(self) -> None:
        """First signal: graceful stop. A second one: stop without waiting."""
        assert self.stop_requested is not None
        if self.stop_requested.is_set():
            self.force_stop = True
        self.stop_requested.set()

    def request_stop(self) -> None:
        """For embedding and tests: the same as SIGTERM."""
        if self.stop_requested is not None:
            self.stop_requested.set()

    async def _tick(self, state: ServerState) -> None:
        limit = int(os.environ.get(MAX_REQUESTS_ENV, "0") or 0)
        reporting = bool(os.environ.get(STATUS_ENV))
        while True:
            # Just past each wall-clock second, so Date is never a second behind (a file's
            # Last-Modified must not be later than Date: RFC 9110 §8.8.2.1).
            await asyncio.sleep(1.0 - time.time() % 1.0 + TICK_MARGIN)
            state.tick()
            if reporting:
                _tell_supervisor(b"S" + json.dumps(self.report(state)).encode())
            if limit and state.requests >= limit:
                _tell_supervisor(b"M")  # it starts our replacement, then asks us to drain
                limit = 0

    async def _drain(self, state: ServerState, grace: float) -> None:
        for protocol in list(state.connections):
            protocol.shutdown()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        next_tick = loop.time() + 1.0
        while state.connections and loop.time() < deadline and not self.force_stop:
            await asyncio.sleep(0.05)
            if loop.time() >= next_tick:
                next_tick += 1.0
                state.tick()
        for protocol in list(state.connections):
            if protocol.cycle is not None and protocol.cycle.task is not None:
                protocol.cycle.task.cancel()
            protocol.transport.abort()
        await asyncio.sleep(0)


def _tell_supervisor(message: bytes) -> None:
    """R: serving; M: max_requests reached; S{json}: status (see supervisor.py). One line each."""
    fd = os.environ.get(READY_FD_ENV)
    if fd:
        with contextlib.suppress(OSError, ValueError):
            os.write(int(fd), message + b"\n")


def handler_statuses(app: ASGIApp) -> list[dict[str, Any]]:
    """The status() of every handler that has one (php-cgi pools), with the route it serves."""
    handlers = getattr(app, "handlers", None)
    if handlers is None:
        return []
    found = []
    for where, handler in handlers():
        status = getattr(handler, "status", None)
        reported = status() if status is not None else None
        if reported:
            found.append({"route": where, **reported})
    return found


def _close_sockets(sockets: list[socket.socket], unix_paths: list[str]) -> None:
    for sock in sockets:
        sock.close()
    _remove_unix_sockets(unix_paths)


def _remove_unix_sockets(unix_paths: list[str]) -> None:
    """Remove the socket files we bound (never those of inherited fd: sockets)."""
    for path in unix_paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
