"""The `gateway` command: parse arguments, call the library, print for people.

Only this module prints and chooses exit codes: 2 for a mistake in the
config or the command line, 3 when the server could not start.
"""

from __future__ import annotations

import sys
from typing import Annotated, NoReturn

import typer

import gateway
from gateway.config.loader import load
from gateway.errors import AppLoadError, ConfigError, StartupError
from gateway.logs import configure_logging

cli = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="One server for Python (ASGI/WSGI), PHP, CGI, static files and proxies.",
)
EXIT_USAGE, EXIT_STARTUP = 2, 3


def _fail(lines: list[str], code: int) -> NoReturn:
    for line in lines:
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


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
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve a config file or a single ASGI app (like `uvicorn module:app`)."""
    configure_logging(log_level)
    options = {
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
def check(config: Annotated[str, typer.Argument(help="The config file to validate.")]) -> None:
    """Validate a config file and print a summary, or every problem found."""
    try:
        loaded = load(config)
    except ConfigError as exc:
        _fail(exc.lines(), EXIT_USAGE)
    server, limits = loaded.server, loaded.limits
    typer.echo(f"{config}: OK")
    typer.echo(f"  listen: {', '.join(server.listen)}")
    typer.echo(f"  app: {loaded.app or '(none: name one on the command line)'}")
    typer.echo(
        f"  limits: body {limits.max_body_size} B, header timeout {limits.header_timeout:g}s, "
        f"request timeout {limits.request_timeout:g}s, {limits.max_connections} connections"
    )


@cli.command()
def version() -> None:
    """Print gateway's version."""
    typer.echo(f"gateway {gateway.__version__} (Python {sys.version.split()[0]})")


def main() -> None:
    cli()
