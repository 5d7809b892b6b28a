"""IsolatedHandler: an asgi/wsgi route with isolation = "process", as the router sees it in a front process.

It stands where the inline handler would (same mount, same stages) but
never imports the app: the app lives in the pool's processes, each started
as `<python> -m gateway serve CONFIG --isolated-route WHERE`. What can be
checked without them is checked here: the app is named, `python` exists
and can import the gateway, `cwd` is a folder, and the config is a file
the processes can load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

from adapters._proxy_client import ProxyClient
from adapters._proxy_options import ProxyOptions
from gateway.config.schema import Config, RouteConfig
from gateway.pools.options import ASYNC_CONCURRENCY, IsolationOptions
from gateway.pools.pool import AppPool
from gateway.pools.scope_header import PoolRequestHeads
from gateway.processes import socket_path
from gateway.types import ASGIApp, HandlerContext

IMPORT_CHECK_TIMEOUT = 30.0
HOST_CONNECTIONS = 64  # idle connections a worker keeps to its pool host
GATEWAY_SOURCE = Path(__file__).resolve().parents[2]  # the folder to `pip install` into another interpreter


class IsolatedHandler:
    """A route whose app runs in a pool of processes of its own."""

    Options: ClassVar[type[Any]] = IsolationOptions
    isolated = True  # for `gateway routes` and check's Django warning (reports.py)

    def __init__(self, route: RouteConfig, context: HandlerContext, config: Config) -> None:
        self.route = route
        self.context = context
        self.config = config
        self.isolation = route.isolation
        self.pool: AppPool | None = None

    @property
    def websocket(self) -> bool:
        """An isolated asgi app takes WebSockets (relayed to its process); a wsgi one does not."""
        return self.route.handler == "asgi"

    @property
    def options(self) -> Any:
        """The app's own options (app, pythonpath, threads...), as `gateway routes` shows them."""
        return self.route.options

    @property
    def python(self) -> str:
        written = self.isolation.python
        if not written:
            return sys.executable
        return str(self.context.resolve(written)) if "/" in written else written

    @property
    def cwd(self) -> Path:
        return self.context.resolve(self.isolation.cwd) if self.isolation.cwd else self.config.config_dir

    def problems(self) -> list[tuple[str, str]]:
        if not getattr(self.route.options, "app", ""):
            return [("app", 'missing; name the application, as in app = "mysite.wsgi:application"')]
        if not Path(self.config.source).is_file():
            return [("isolation", "a process pool needs the config in a file its processes can load")]
        if self.isolation.cwd and not self.cwd.is_dir():
            return [("cwd", f"{self.cwd} is not a folder")]
        return self.python_problems()

    def python_problems(self) -> list[tuple[str, str]]:
        """The pool's interpreter must run and import the gateway; say how to fix it when it cannot."""
        if not self.isolation.python:
            return []
        python = self.python
        try:
            done = subprocess.run(
                [python, "-c", "import gateway.pools.serving"],
                capture_output=True,
                text=True,
                timeout=IMPORT_CHECK_TIMEOUT,
                cwd=self.cwd,
                check=False,
            )
        except OSError as exc:
            return [("python", f"{python} cannot be run: {exc.strerror or exc}")]
        except subprocess.TimeoutExpired:
            return [("python", f"{python} did not import the gateway within {IMPORT_CHECK_TIMEOUT:g}s")]
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return [
                (
                    "python",
                    f"{python} cannot import the gateway ({last}); install it into that environment: "
                    f"{python} -m pip install {GATEWAY_SOURCE}",
                )
            ]
        return []

    def concurrency(self) -> int:
        written = self.isolation.pool.concurrency
        if written:
            return written
        if self.route.handler == "wsgi":
            return int(getattr(self.route.options, "threads", 1))
        return ASYNC_CONCURRENCY

    def command(self, socket: Path) -> list[str]:
        level = logging.getLevelName(logging.getLogger("gateway").getEffectiveLevel()).lower()
        return [
            self.python,
            "-m",
            "gateway",
            "serve",
            str(Path(self.config.source).resolve()),
            "--isolated-route",
            self.route.where,
            "--listen",
            f"unix:{socket}",
            "--loop",
            self.config.server.loop,
            "--log-level",
            level if level in ("debug", "info", "warning", "error") else "info",
        ]

    def new_socket(self, number: int) -> Path:
        digest = hashlib.sha256(f"{self.config.source}|{self.route.where}".encode()).hexdigest()[:10]
        return socket_path(self.context.runtime_dir, f"app-{digest}-{os.getpid()}-{number}.sock")

    def app(self) -> ASGIApp:
        self.pool = AppPool(
            f"pool {self.route.where} ({self.route.handler} {getattr(self.route.options, 'app', '')})",
            self.isolation.pool,
            self.concurrency(),
            self.command,
            self.new_socket,
            self.isolation.env,
            self.cwd,
            self.config.limits.request_timeout,
            threads=self.route.handler == "wsgi",
        )
        return self.pool

    async def startup(self) -> None:
        if self.pool is not None:
            await self.pool.start()

    async def aclose(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()

    def status(self) -> dict[str, object]:
        return self.pool.status() if self.pool is not None else {}

    def serving(self) -> bool:
        """For the health handler: a pool that keeps processes (min ≥ 1) has one ready."""
        return self.pool is not None and (self.isolation.pool.min == 0 or self.pool.serving())


class RemotePoolHandler:
    """An isolated route in a worker of a supervisor: its pool lives in the generation's pool host (host.py)."""

    Options: ClassVar[type[Any]] = IsolationOptions
    isolated = True

    def __init__(self, route: RouteConfig, context: HandlerContext, config: Config, host_socket: str) -> None:
        self.route = route
        self.options = route.options
        self.host_socket = host_socket
        proxy = ProxyOptions(
            preserve_host=True, read_timeout=config.limits.request_timeout, keepalive=HOST_CONNECTIONS, max_fails=0
        )
        self.client = ProxyClient([f"unix:{host_socket}"], proxy)
        self.client.heads = PoolRequestHeads(pool=route.where)

    @property
    def websocket(self) -> bool:
        """An isolated asgi app takes WebSockets (relayed through the pool host to its process)."""
        return self.route.handler == "asgi"

    def problems(self) -> list[tuple[str, str]]:
        return []  # the pool host checked the route before this worker started

    def serving(self) -> bool:
        """For the health handler: the pool host is there (its pools started before this worker did)."""
        return Path(self.host_socket).exists()

    def app(self) -> ASGIApp:
        return self.client.forward

    async def startup(self) -> None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()
