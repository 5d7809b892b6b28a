"""The `php` handler: PHP sites through php-cgi pools the gateway spawns and supervises.

It is the fastcgi handler (same script resolution, same client) with the
server supplied: a php-cgi per distinct (binary, root, php_ini, env, pool)
started at startup on a Unix socket in runtime_dir (_php_pool.py); with
several workers, by their pool host (gateway/pools/host.py), so that the
workers share one php-cgi of pool.max children. The
pool's connections are kept (FCGI_KEEP_CONN) and number pool.max, one per
php-cgi child: a child serves one connection at a time, so a connection
more would wait behind an idle one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from typing import Any

from adapters._fastcgi_client import FastCgiPool
from adapters._php_pool import PhpCgi, release, shared
from adapters.fastcgi import FastCgiHandler, ScriptOptions
from gateway.metrics import register_pool
from gateway.pools.options import POOL_HOST_ENV
from gateway.types import HandlerContext

PHP_PACKAGE_HINT = "Debian/Ubuntu: apt-get install php-cgi"


@dataclass(frozen=True, slots=True)
class PhpPoolOptions:
    max: int = field(default=4, metadata={"doc": "php-cgi children (PHP_FCGI_CHILDREN): requests served at once"})
    max_requests: int = field(
        default=500, metadata={"doc": "requests a child serves before php-cgi replaces it (PHP_FCGI_MAX_REQUESTS)"}
    )


@dataclass(frozen=True, slots=True)
class PhpOptions(ScriptOptions):
    php_binary: str = field(default="php-cgi", metadata={"doc": "the php-cgi to run: a name on PATH or a path"})
    php_ini: dict[str, str] = field(
        default_factory=dict,
        metadata={"doc": 'php.ini settings passed as -d options, as in { "memory_limit" = "128M" }'},
    )
    env: dict[str, str] = field(
        default_factory=dict, metadata={"doc": "php-cgi's environment besides PATH (nothing else of the gateway's)"}
    )
    pool: PhpPoolOptions = field(
        default_factory=PhpPoolOptions,
        metadata={
            "doc": "php-cgi's children: max at once (PHP_FCGI_CHILDREN), max_requests each before it is replaced"
        },
    )
    connect_timeout: float = field(
        default=5.0, metadata={"kind": "duration", "doc": "seconds to wait for a restarting php-cgi before a 502"}
    )


class PhpHandler(FastCgiHandler):
    """PHP scripts under a root, run by a supervised php-cgi."""

    Options: Any = PhpOptions

    def __init__(self, options: Any, context: HandlerContext) -> None:
        super().__init__(options, context)
        self.php: PhpCgi | None = None
        # A supervisor's workers use the php-cgi their pool host runs (gateway/pools/host.py sets True there).
        self.runs_php = not os.environ.get(POOL_HOST_ENV)

    def problems(self) -> list[tuple[str, str]]:
        options = self.options
        found = self.script_problems()
        if options.pool.max < 1:
            found.append(("pool.max", "must be at least 1 (php-cgi children)"))
        if "cgi.fix_pathinfo" in options.php_ini and options.php_ini["cgi.fix_pathinfo"] != "0":
            found.append(("php_ini", "cgi.fix_pathinfo must stay 0: the gateway finds the script itself"))
        if shutil.which(options.php_binary) is None:
            found.append(("php_binary", f"{options.php_binary!r} not found; install it ({PHP_PACKAGE_HINT})"))
        return found

    def make_pool(self) -> FastCgiPool:
        assert self.php is not None
        options = self.options
        return FastCgiPool(
            self.php.address, options.pool.max, True, options.connect_timeout, max_uses=options.pool.max_requests
        )

    async def startup(self) -> None:
        options = self.options
        binary = shutil.which(options.php_binary) or options.php_binary
        root = str(self.context.resolve(options.root))
        php = shared(
            binary,
            root,
            options.php_ini,
            options.env,
            options.pool.max,
            options.pool.max_requests,
            self.context.runtime_dir,
            self.context.where,
        )
        if php.users == 0:
            if self.runs_php:
                await php.start()
            # A worker whose pool host runs php-cgi reports its own busy and queued, the host its children:
            # the metrics add them up.
            php.unregister_metrics = register_pool(php.label, "php-cgi", php.metrics)
        php.users += 1
        self.php = php
        await super().startup()
        if self.pool is not None:
            php.clients.append(self.pool)

    def status(self) -> dict[str, object]:
        """For `gateway status`: this route's php-cgi (the pool host's tells, when it runs it)."""
        php = self.php
        if not self.runs_php:
            return {}
        if php is None:
            return {"kind": "php-cgi", "state": "stopped"}
        process = php.process
        running = process is not None and process.returncode is None
        return {
            "kind": "php-cgi",
            "state": "running" if running else "restarting",
            "pid": process.pid if process is not None else None,
            "children": php.children,
            "max_requests": php.max_requests,
            "restarts": php.restarts,
            "socket": str(php.socket_path),
        }

    async def aclose(self) -> None:
        await super().aclose()
        php, self.php = self.php, None
        if php is not None:
            if self.pool in php.clients:
                php.clients.remove(self.pool)
            php.users -= 1
            if php.users == 0:
                if php.unregister_metrics is not None:
                    php.unregister_metrics()
                release(php)
                if self.runs_php:
                    await php.stop()
