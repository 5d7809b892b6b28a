"""From what a user names (a config file, "module:app", an app object) to a running server."""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from typing import Any

from adapters.asgi import load_app
from gateway.config.loader import load, with_overrides
from gateway.config.schema import Config
from gateway.errors import ConfigError, StartupError
from gateway.pools.host import pool_host_app
from gateway.pools.serving import app_process_config, isolated_app
from gateway.routing.report import warnings
from gateway.routing.router import build_router, widest_body
from gateway.server import Server
from gateway.supervisor import READY_FD_ENV, Supervisor, check_in_child, pid_file_path, running_gateway
from gateway.tls.files import tls_problems
from gateway.types import ASGIApp

logger = logging.getLogger("gateway.error")


def is_config_path(target: str) -> bool:
    """A config file: *.toml (any case), or a file that is there (gateway.conf); else module:attribute."""
    return target.lower().endswith(".toml") or os.path.isfile(target)


def resolve(targets: list[str | ASGIApp], app_dir: str = ".", **server: Any) -> tuple[Config, ASGIApp]:
    """A config and the app it serves, from a mix of config paths, app specs and app objects."""
    config = Config()
    app: ASGIApp | None = None
    for target in targets:
        if callable(target):
            app = target
        elif is_config_path(target):
            config = load(target)
        else:
            app = load_app(target, app_dir)
    config = with_overrides(config, **server)
    unusable = tls_problems(config)  # certificate files: before any app is imported
    if unusable:
        raise ConfigError(unusable)
    if app is None and config.vhosts:
        router, problems = build_router(config)
        if problems:
            raise ConfigError(problems)
        for warning in warnings(router):
            logger.warning("%s", warning)
        app = router
        widest = widest_body(config)
        if widest > config.limits.max_body_size:  # the router holds each route to its own
            config = replace(config, limits=replace(config.limits, max_body_size=widest))
    if app is None and config.app:
        app = load_app(config.app, str(config.config_dir))
    if app is None:
        raise ConfigError(
            [
                (
                    config.source,
                    "app",
                    "nothing to serve: name an app as 'module:attribute' "
                    'on the command line or as app = "module:attribute" in the config',
                )
            ]
        )
    return config, app


def run(*targets: str | ASGIApp, app_dir: str = ".", **server: Any) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code. `gateway.run("gateway.toml")`.

    With workers ≠ 1 this process becomes the supervisor (supervisor.py) and
    the workers run this same function with workers = 1.
    """
    isolated_route, pool_host = server.pop("isolated_route", None), server.pop("pool_host", False)
    if isolated_route:
        return serve_isolated(list(targets), isolated_route, server)
    if pool_host:
        return serve_pool_host(list(targets), server)
    if os.environ.get(READY_FD_ENV):
        server["workers"] = 1  # a worker of a supervisor
    else:
        config = with_overrides(_config_of(list(targets)), **server)
        _check_targets(list(targets), config)
        _check_runtime_dir(config)
        _refuse_a_second_gateway(config)
        if config.server.workers != 1:
            return supervise(config, list(targets), app_dir, server)
        for warning in server_warnings(config):
            logger.warning("%s", warning)
    config, app = resolve(list(targets), app_dir, **server)
    return Server(config, app).run()


def serve_isolated(targets: list[str | ASGIApp], where: str, server: dict[str, Any]) -> int:
    """An app process of a pool (gateway/pools/): the one route's app of the config, alone."""
    config = with_overrides(_config_of(targets), **server)
    app = isolated_app(config, where)
    return Server(app_process_config(config, widest_body(config)), app).run()


def serve_pool_host(targets: list[str | ASGIApp], server: dict[str, Any]) -> int:
    """A supervisor's pool host (gateway/pools/host.py): every isolated route's pool, for all the workers."""
    config = with_overrides(_config_of(targets), **server)
    return Server(app_process_config(config, widest_body(config)), pool_host_app(config)).run()


def server_warnings(config: Config) -> list[str]:
    """[server] settings that a single process (workers = 1) does not use: said rather than silently ignored."""
    settings = config.server
    unused = [key for key in ("max_requests", "max_memory") if getattr(settings, key) and settings.workers == 1]
    return [
        f"{config.source}: server.{key} replaces workers under a supervisor; with workers = 1 it is not used "
        "(set workers = 2 or more)"
        for key in unused
    ]


def _check_runtime_dir(config: Config) -> None:
    """The pid file's and the admin socket's folders must be writable: without them the gateway runs on,
    but `gateway stop`, `status` and `reload` cannot find it, and a second one is not refused (nginx
    refuses to start without its pid file too)."""
    if config.source == Config().source:
        return
    for folder in {config.runtime_path, pid_file_path(config).parent}:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            usable = os.access(folder, os.W_OK | os.X_OK)
        except OSError as exc:
            problem = f"cannot create the folder {folder}: {exc.strerror or exc}"
        else:
            if usable:
                continue
            problem = f"cannot write in the folder {folder}"
        raise StartupError(
            f"{problem}; it holds the pid file and admin socket that gateway stop, status and reload use: "
            "set server.runtime_dir (or server.pid_file) to a folder this user can write"
        )


def _refuse_a_second_gateway(config: Config) -> None:
    """Two gateways from one config would share the pid file and the admin socket: `stop` would find one."""
    pid = running_gateway(config)
    if pid is not None:
        raise StartupError(
            f"another gateway (pid {pid}) is running from {config.source} (pid file {pid_file_path(config)}): "
            "stop it first (gateway stop), or give this one its own runtime_dir"
        )


def _check_targets(targets: list[str | ASGIApp], config: Config) -> None:
    """One config file, one app, and an app only beside a config without vhosts: nothing named is dropped."""
    paths = [str(t) for t in targets if isinstance(t, str) and is_config_path(t)]
    apps = [t if isinstance(t, str) else repr(t) for t in targets if not (isinstance(t, str) and is_config_path(t))]
    problems = []
    if len(paths) > 1:
        problems.append(f"one config file at a time, got {', '.join(paths)} (a config's include brings in more)")
    if len(apps) > 1:
        problems.append(f"one app at a time, got {', '.join(apps)} (serve several from a config's [[vhost]] routes)")
    if apps and config.vhosts:  # an app named here replaces a config's own `app`, not its sites
        problems.append(f"{apps[0]} and {config.source}, which serves its [[vhost]] tables: name one or the other")
    if problems:
        raise ConfigError([("command line", "", problem) for problem in problems])


def _config_of(targets: list[str | ASGIApp]) -> Config:
    """The config a list of targets names, apps not loaded (the supervisor loads none)."""
    paths = [t for t in targets if isinstance(t, str) and is_config_path(t)]
    return load(paths[-1]) if paths else Config()


def supervise(config: Config, targets: list[str | ASGIApp], app_dir: str, server: dict[str, Any]) -> int:
    """Check the config once in a child (so no app is imported here), then run the workers."""
    if any(not isinstance(t, str) for t in targets):
        raise ConfigError([(config.source, "server.workers", "several workers need a config file or module:app")])
    names = [str(t) for t in targets]
    if config.source != Config().source:
        problems = check_in_child(config.source)
        if problems:
            raise ConfigError([("", "", line) for line in problems])
    level = logging.getLevelName(logging.getLogger("gateway").getEffectiveLevel()).lower()
    args = [*names, "--app-dir", app_dir, "--log-level", level]
    for key in ("loop", "access_log", "access_log_format"):
        if server.get(key) is not None:
            args += [f"--{key.replace('_', '-')}", str(server[key])]

    def reread() -> Config:
        return with_overrides(_config_of(list(targets)), **server)

    return Supervisor(config, args, reread).run()
