"""The `gateway` command: parse arguments, call the library, print for people.

Only this module prints and chooses exit codes: 2 for a mistake in the
config or the command line, 3 when the server could not start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from dataclasses import replace
from typing import Annotated, Any, NoReturn
from urllib.parse import quote, urlsplit

import typer

import gateway
from adapters.asgi import load_app
from gateway.config.loader import load
from gateway.config.schema import Config
from gateway.errors import AppLoadError, ConfigError, HttpError, StartupError
from gateway.http.parser import ENCODED_PATH_SAFE, routing_path
from gateway.logs import configure_logging
from gateway.routing.report import explain as explain_request
from gateway.routing.report import handler_reference, limits_line, routes_table, status_table, warnings
from gateway.routing.router import Router, build_router
from gateway.runner import is_config_path, server_warnings
from gateway.supervisor import admin_socket_path, pid_file_path, running_gateway
from gateway.tls.files import tls_problems

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # -h as gunicorn and most tools take it
    help="One server for Python (ASGI/WSGI), PHP, CGI, static files and proxies.",
)
EXIT_USAGE, EXIT_STARTUP = 2, 3


def _print_version(asked: bool) -> None:
    if asked:
        typer.echo(f"gateway {gateway.__version__} (Python {sys.version.split()[0]})")
        raise typer.Exit()


@cli.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """One server for Python (ASGI/WSGI), PHP, CGI, static files and proxies."""


LOG_LEVELS = ("debug", "info", "warning", "error")


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def _log_level(value: str) -> str:
    """--log-level, checked here: logging would raise for a name it does not know."""
    if value.lower() not in LOG_LEVELS:
        raise typer.BadParameter(f"expected one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.lower()


@cli.command()
def serve(
    targets: Annotated[list[str], typer.Argument(help="A config file (*.toml) and/or an app as module:attribute.")],
    listen: Annotated[
        list[str] | None,
        typer.Option(
            "--listen",
            "-l",
            help="Address to listen on (repeatable): "
            "host:port, [::1]:port, unix:/path or fd:N. Replaces the config's list.",
        ),
    ] = None,
    loop: Annotated[str | None, typer.Option(help="Event loop: auto, uvloop or asyncio.")] = None,
    access_log: Annotated[str | None, typer.Option(help="Access log: a path, '-' (stdout) or 'off'.")] = None,
    access_log_format: Annotated[str | None, typer.Option(help="combined or json.")] = None,
    app_dir: Annotated[str, typer.Option(help="Directory to import the app from.")] = ".",
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.", callback=_log_level)] = "info",
    workers: Annotated[
        int | None, typer.Option(help="Worker processes under a supervisor (0 = one per CPU). Replaces the config's.")
    ] = None,
    isolated_route: Annotated[
        str | None, typer.Option(hidden=True, help="Serve only this route's app: an app process of a pool.")
    ] = None,
    pool_host: Annotated[
        bool, typer.Option(hidden=True, help="Serve the isolated routes' pools for a supervisor's workers.")
    ] = False,
) -> None:
    """Serve a config file or a single ASGI app (like `uvicorn module:app`)."""
    configure_logging(log_level)
    # Until the server's loop takes SIGUSR1 over (reopen the logs), one arriving must not kill a starting
    # process. A handler, not SIG_IGN: programs started later must not inherit an ignored signal.
    signal.signal(signal.SIGUSR1, _not_yet)
    options = {
        "isolated_route": isolated_route,
        "pool_host": pool_host,
        "workers": workers,
        "listen": tuple(listen) if listen else None,
        "loop": loop,
        "access_log": access_log,
        "access_log_format": access_log_format,
    }
    try:
        code = gateway.run(*targets, app_dir=app_dir, **options)
    except ConfigError as exc:
        _fail(exc.lines(), EXIT_USAGE)
    except AppLoadError as exc:
        _fail([str(exc)], EXIT_USAGE)
    except StartupError as exc:
        _fail([str(exc)], EXIT_STARTUP)
    raise typer.Exit(code)


@cli.command()
def dev(
    config: Annotated[str, typer.Argument(help="The config file to serve.")] = "gateway.toml",
    listen: Annotated[
        list[str] | None,
        typer.Option("--listen", "-l", help="Address to listen on (repeatable); replaces the config's list."),
    ] = None,
    watch: Annotated[
        list[str] | None,
        typer.Option("--watch", help="Also restart when a file under PATH changes (a file or a folder; repeatable)."),
    ] = None,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", help="Never watch files or folders matching GLOB (repeatable)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.", callback=_log_level)] = "info",
) -> None:
    """Serve a config for development: restart when an app's Python files or the config change."""
    from pathlib import Path

    from gateway.dev.supervisor import run_dev

    missing = [path for path in [config, *(watch or [])] if not Path(path).exists()]
    if missing:
        _fail([f"{path}: no such file or folder" for path in missing], EXIT_USAGE)
    if not is_config_path(config):
        _fail([f"{config}: gateway dev serves a config file (*.toml)"], EXIT_USAGE)
    paths = tuple(Path(path) for path in watch or [])
    try:
        code = run_dev(Path(config), tuple(listen or ()), paths, tuple(ignore or ()), log_level)
    except StartupError as exc:
        _fail([str(exc)], EXIT_STARTUP)
    raise typer.Exit(code)


def _not_yet(signum: int, frame: object) -> None:
    """SIGUSR1 before the server's loop handles it: nothing is open yet that needs reopening."""


def _signal_gateway(config_path: str, signum: signal.Signals, doing: str) -> None:
    """Send signum to the gateway running from config_path, found through its pid file."""
    try:
        config = load(config_path)
    except ConfigError as exc:
        _fail(exc.lines(), EXIT_USAGE)
    path = pid_file_path(config)
    pid = running_gateway(config)
    try:
        if pid is None:
            raise ProcessLookupError
        os.kill(pid, signum)
    except OSError:
        _fail([f"no gateway is running from {config_path} (no live gateway's pid in {path})"], EXIT_USAGE)
    typer.echo(f"{doing} gateway (pid {pid})")


@cli.command()
def stop(config: Annotated[str, typer.Argument(help="The config file it runs.")] = "gateway.toml") -> None:
    """Stop a running gateway gracefully (SIGTERM): in-flight requests finish first."""
    _signal_gateway(config, signal.SIGTERM, "stopping")


@cli.command(name="reopen-logs")
def reopen_logs(config: Annotated[str, typer.Argument(help="The config file it runs.")] = "gateway.toml") -> None:
    """Reopen the access log files by name (SIGUSR1), after logrotate renamed them (nginx -s reopen)."""
    _signal_gateway(config, signal.SIGUSR1, "reopening the access logs of")


@cli.command()
def reload(config: Annotated[str, typer.Argument(help="The config file it runs.")] = "gateway.toml") -> None:
    """Reload a running gateway's config (SIGHUP; with workers ≠ 1): a bad config keeps the old one serving.

    A single process reloads only its TLS certificates (renewed files), when it has TLS listeners."""
    document = _status_document(config)
    if document is not None and document.get("supervisor") is None:
        if load(config).tls_listeners:
            _signal_gateway(config, signal.SIGHUP, "reloading the certificates (not the config) of")
            return
        _fail(
            [
                f"the gateway running from {config} is a single process, which does not reload: set workers = 2 "
                "or more, or restart it (gateway stop, then serve)"
            ],
            EXIT_USAGE,
        )
    _signal_gateway(config, signal.SIGHUP, "reloading")


@cli.command()
def status(
    config: Annotated[str, typer.Argument(help="The config file it runs.")] = "gateway.toml",
    as_json: Annotated[bool, typer.Option("--json", help="The raw document, for machines.")] = False,
) -> None:
    """Workers and PHP pools of a running gateway: pid, state, requests, in flight, memory, uptime."""
    document = _status_document(config)
    if document is None:
        _fail([f"no gateway is running from {config} (nothing answers on its admin socket)"], EXIT_USAGE)
    if as_json:
        typer.echo(json.dumps(document, indent=2))
        return
    for line in status_table(document):
        typer.echo(line)


def _status_document(config_path: str) -> dict[str, Any] | None:
    """What the gateway running from config_path says on its admin socket; None when nothing answers."""
    try:
        loaded = load(config_path)
    except ConfigError as exc:
        _fail(exc.lines(), EXIT_USAGE)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as admin:
            admin.settimeout(5.0)
            admin.connect(str(admin_socket_path(loaded)))
            data = b"".join(iter(lambda: admin.recv(65536), b""))
        document: dict[str, Any] = json.loads(data)
    except (OSError, ValueError):
        return None
    return document


def _load_router(config_path: str) -> tuple[Config, Router | None]:
    """The config and its compiled router; exits 2 with every problem when either fails."""
    try:
        config = load(config_path)
        unusable = tls_problems(config)  # certificate and key files: exist, readable, PEM, matching
        if not config.vhosts:
            if unusable:
                raise ConfigError(unusable)
            if config.app:
                load_app(config.app, str(config.config_dir))
            return config, None
        router, problems = build_router(config)
        problems = unusable + problems
    except ConfigError as exc:
        _fail(ConfigError(exc.problems + _handler_problems(exc)).lines(), EXIT_USAGE)
    except AppLoadError as exc:
        _fail([str(exc)], EXIT_USAGE)
    if problems:
        _fail(ConfigError(problems).lines(), EXIT_USAGE)
    return config, router


def _handler_problems(error: ConfigError) -> list[tuple[str, str, str]]:
    """What the handlers and stages would say of the routes that did parse, so one run shows every problem.

    Only keys no earlier problem names (a bad value's default could be blamed
    again), and nothing when building fails: this second look is a courtesy.
    """
    partial = error.partial
    if not isinstance(partial, Config) or not partial.vhosts:
        return []
    # A route whose path did not compile cannot be built: leave it out, so the others are still looked at.
    unbuildable = {key.removesuffix(".path") for _, key, _ in error.problems if key.endswith(".path")}
    vhosts = [replace(v, routes=tuple(r for r in v.routes if r.where not in unbuildable)) for v in partial.vhosts]
    partial = replace(partial, vhosts=tuple(vhosts))
    try:
        found = build_router(partial)[1]
    except Exception:  # a config known to be broken: its first problems stand alone
        return []
    named = {(source, key) for source, key, _ in error.problems}
    return [p for p in found if (p[0], p[1]) not in named and not any(p[1].startswith(k + ".") for _, k in named)]


@cli.command()
def check(config: Annotated[str, typer.Argument(help="The config file to validate.")]) -> None:
    """Validate a config: keys, handlers, roots, app imports; print a summary or every problem."""
    loaded, router = _load_router(config)
    server = loaded.server
    typer.echo(f"{config}: OK")
    typer.echo(f"  listen: {', '.join(f'{a} (tls)' if a in loaded.tls_listeners else a for a in server.listen)}")
    typer.echo(f"  limits: {limits_line(loaded.limits)}")
    if router is None:
        typer.echo(f"  app: {loaded.app or '(none: name one on the command line)'}")
        for warning in server_warnings(loaded):
            typer.echo(f"warning: {warning}", err=True)
        return
    for vhost, written in zip(router.vhosts, loaded.vhosts, strict=True):
        kinds = ", ".join(f"{route.matcher.spec} → {route.handler_name}" for route in vhost.routes)
        certificate = f" (tls: {written.tls.cert})" if written.tls is not None else ""
        typer.echo(f"  {vhost.where} {', '.join(vhost.names)}{certificate}: {kinds}")
    for warning in [*warnings(router), *server_warnings(loaded)]:
        typer.echo(f"warning: {warning}", err=True)


@cli.command()
def routes(config: Annotated[str, typer.Argument(help="The config file.")]) -> None:
    """Print the compiled routing table: vhost names → routes in order → handler."""
    loaded, router = _load_router(config)
    if router is None:
        typer.echo(f"{config}: no [[vhost]] tables; every request goes to {loaded.app}")
        return
    for line in routes_table(loaded, router):
        typer.echo(line)


@cli.command()
def explain(
    config: Annotated[str, typer.Argument(help="The config file.")],
    url: Annotated[str, typer.Argument(help="http://host/path?query, or /path with --header 'Host: name'.")],
    method: Annotated[str, typer.Option("--method", "-X", help="Request method.")] = "GET",
    header: Annotated[list[str] | None, typer.Option("--header", "-H", help="'Name: value' (repeatable).")] = None,
) -> None:
    """Show which vhost, route and handler a request would meet, and why."""
    loaded, router = _load_router(config)
    if not url.startswith("/") and "://" not in url:
        url = "http://" + url  # shop.example/cart, as curl takes it
    try:
        parsed = urlsplit(url)
    except ValueError as exc:
        _fail([f"{url!r} is not a URL ({exc}); write http://host/path or /path"], EXIT_USAGE)
    if method != method.upper():
        _fail(
            [f"methods are case-sensitive: the server answers {method!r} with a 400; write {method.upper()}"],
            EXIT_USAGE,
        )
    host = _host_header(parsed.netloc)
    for line in header or []:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            _fail([f"--header {line!r}: write it as 'Name: value', as in -H 'Host: example.com'"], EXIT_USAGE)
        if name.strip().lower() == "host":
            host = value.strip()
    if router is None:
        typer.echo(f"every request goes to the app {loaded.app}")
        return
    try:  # as the server would: its bytes (a non-ASCII path as a browser sends it) through the same rules
        path = routing_path(quote(parsed.path or "/", safe=ENCODED_PATH_SAFE).encode("ascii"))
    except HttpError as exc:
        _fail([f"{exc.detail} The server answers such a request with a 400."], EXIT_USAGE)
    for line in explain_request(loaded, router, host, path, method):
        typer.echo(line)


def _host_header(netloc: str) -> str:
    """The Host a client sends for a URL's authority: no user information, an IDN name in its punycode form."""
    host = netloc.rpartition("@")[2]
    if host.isascii():
        return host
    name, colon, port = host.rpartition(":") if not host.endswith("]") and ":" in host else (host, "", "")
    try:
        return name.encode("idna").decode("ascii") + colon + port
    except UnicodeError:
        return host  # not a name IDNA can write: the lookup says no vhost has it


@cli.command()
def handlers() -> None:
    """Print every handler's config keys, defaults and meaning (Markdown, as in the README)."""
    for line in handler_reference():
        typer.echo(line)


@cli.command()
def passwd(
    file: Annotated[str, typer.Argument(help="The htpasswd file (htdigest with --digest); created when missing.")],
    user: Annotated[str, typer.Argument(help="The user name to add, update or delete.")],
    digest: Annotated[bool, typer.Option("--digest", help="Write user:realm:HA1 digest lines, not bcrypt.")] = False,
    realm: Annotated[str | None, typer.Option(help="The digest realm (needed with --digest).")] = None,
    algorithm: Annotated[
        list[str] | None, typer.Option(help="Digest HA1 algorithm, MD5 or SHA-256 (repeatable; default MD5).")
    ] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    delete: Annotated[bool, typer.Option("--delete", help="Remove the user instead.")] = False,
) -> None:
    """Add, update or delete a user in a file for `auth` (bcrypt htpasswd, or htdigest with --digest)."""
    from pathlib import Path

    from gateway.stages._htedit import EditError
    from gateway.stages._htedit import passwd as edit_users

    if digest != (realm is not None) or (algorithm and not digest):
        _fail(["--digest and --realm go together, and --algorithm needs them"], EXIT_USAGE)

    def password() -> str:
        if password_stdin:
            return sys.stdin.readline().rstrip("\r\n")
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))

    try:
        typer.echo(edit_users(Path(file), user, password, realm, tuple(algorithm or ()), delete))
    except EditError as exc:
        _fail([str(exc)], EXIT_USAGE)


@cli.command()
def version() -> None:
    """Print gateway's version."""
    typer.echo(f"gateway {gateway.__version__} (Python {sys.version.split()[0]})")


def main() -> None:
    cli()
