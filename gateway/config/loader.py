"""Reading gateway.toml: TOML, ${ENV} substitution, then validation into a Config.

Top level: [server], [limits], [[vhost]] (with [[vhost.route]]), `include`
(globs of more files holding [[vhost]] tables, relative to this file) and
`app`, a shortcut that serves one ASGI app on every host.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import tomllib
import typing
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.config.schema import Config, Limits, ServerSettings, VhostConfig
from gateway.config.validate import FromEnvironment, Problems, build, convert, did_you_mean, log_path_problem
from gateway.config.vhosts import parse_vhosts
from gateway.errors import ConfigError
from gateway.listeners import parse_address
from gateway.stages.access import check_trusted_proxies
from gateway.tls.settings import split_listen

TOP_LEVEL_KEYS = ("server", "limits", "vhost", "include", "app")
MAX_WORKERS = 1024
# Limits where 0 would refuse every request (or time every one out): nginx and gunicorn read 0 as
# "no limit", which a user may expect; refused, with what to write instead.
_NO_ZERO_LIMITS = (
    "max_request_line",
    "max_header_size",
    "max_header_count",
    "max_body_size",
    "header_timeout",
    "body_timeout",
    "send_timeout",
    "request_timeout",
    "max_connections_per_client",
)
NO_ZERO = (
    "must be more than 0 (0 would refuse every request, not lift the limit): for no practical limit, set a large value"
)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load(path: str | os.PathLike[str]) -> Config:
    """Load and validate a config file and its includes; ConfigError lists every problem."""
    source = str(path)
    data = _read(Path(path))
    problems = Problems(source)
    data = _substitute(data, "", problems)
    config_dir = Path(path).resolve().parent
    config = from_mapping(data, source, problems, config_dir)
    vhosts = list(config.vhosts)
    seen = {Path(path).resolve()}
    for include in _includes(data.get("include", []), config_dir, problems):
        more = Problems(str(include))
        if include.resolve() in seen:
            more.add("", "included twice, or it is the config itself: each file is read once")
        else:
            seen.add(include.resolve())
            try:
                included = _substitute(_read(include), "", more)
            except ConfigError as exc:  # this file unreadable: the others, and the main file, are still checked
                problems.items += exc.problems
                continue
            for key in included:
                if key != "vhost":
                    more.add(key, f"an included file holds [[vhost]] tables only; `{key}` belongs in {source}")
            vhosts += parse_vhosts(included.get("vhost", []), len(vhosts), str(include), more, config_dir)
        problems.items += more.items
    _check_defaults(vhosts, problems)
    if problems.items:
        raise ConfigError(problems.items, partial=replace(config, vhosts=tuple(vhosts)))
    return replace(config, vhosts=tuple(vhosts))


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([(str(path), "", f"cannot read the file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        where = f"byte {exc.start} is {exc.object[exc.start : exc.start + 1]!r}"
        raise ConfigError([(str(path), "", f"not UTF-8 text ({where}); TOML files are UTF-8")]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([(str(path), "", f"not valid TOML: {exc}")]) from None


def _includes(patterns: Any, config_dir: Path, problems: Problems) -> list[Path]:
    """Files named by `include`, sorted within each glob; a glob matching nothing is a problem."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        problems.add("include", 'expected a list of file globs, as in ["sites/*.toml"]')
        return []
    files: list[Path] = []
    for index, pattern in enumerate(patterns):
        matches = sorted(glob.glob(str(config_dir / pattern)))
        if not matches:
            problems.add(f"include[{index}]", f"no file matches {pattern!r} (relative to {config_dir})")
        files += [Path(m) for m in matches]
    return files


def from_mapping(data: dict[str, Any], source: str, problems: Problems, config_dir: Path | None = None) -> Config:
    """Build a Config from parsed TOML, adding what is wrong to problems."""
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            hint = did_you_mean(key, TOP_LEVEL_KEYS)
            problems.add(key, f"unknown key{hint}; known keys: {', '.join(TOP_LEVEL_KEYS)}")
    server_table, tls_listeners = split_listen(data.get("server", {}), source, problems)
    config_dir = config_dir or Path.cwd()
    server = build(ServerSettings, server_table, "server", problems)
    if server.access_log not in ("-", "off"):  # relative to the config file, as every path in it
        server = replace(server, access_log=os.path.join(config_dir, server.access_log))
    limits = build(Limits, data.get("limits", {}), "limits", problems)
    if limits.max_connections < 1:
        problems.add("limits.max_connections", "must be at least 1 (every connection beyond it gets a 503)")
    for key in _NO_ZERO_LIMITS:
        if not getattr(limits, key):
            problems.add(f"limits.{key}", NO_ZERO)
    _check_server(server, problems, config_dir)
    app = data.get("app")
    if app is not None and (not isinstance(app, str) or ":" not in app):
        problems.add("app", f"expected 'module:attribute', as in 'myproject.asgi:application', got {app!r}")
        app = None
    vhosts = parse_vhosts(data["vhost"], 0, source, problems, config_dir) if "vhost" in data else []
    if app is not None and (vhosts or "include" in data):
        problems.add("app", "use either app (one app on every host) or [[vhost]] tables, not both")
    return Config(
        source=source,
        server=server,
        limits=limits,
        app=app,
        vhosts=tuple(vhosts),
        config_dir=config_dir,
        tls_listeners=tls_listeners,
    )


def _check_defaults(vhosts: list[VhostConfig], problems: Problems) -> None:
    """One default vhost at most: with two, which one answers unknown hosts would be a guess."""
    defaults = [vhost for vhost in vhosts if vhost.default]
    for vhost in defaults[1:]:
        first = defaults[0]
        message = f"{first.where} ({', '.join(first.names)}, in {first.source}) is the default already; keep one"
        problems.items.append((vhost.source, f"{vhost.where}.default", message))


def _check_server(server: ServerSettings, problems: Problems, config_dir: Path) -> None:
    for index, spec in enumerate(server.listen):
        try:
            parse_address(spec)
        except ValueError as exc:
            problems.add(f"server.listen[{index}]", f"{exc}, got {spec!r}")
    if not server.listen:
        problems.add("server.listen", 'expected at least one address, as in ["127.0.0.1:8080"]')
    reason = log_path_problem(server.access_log, config_dir)
    if reason:
        problems.add("server.access_log", reason)
    if server.workers > MAX_WORKERS:
        problems.add("server.workers", f"at most {MAX_WORKERS} processes, got {server.workers} (0 = one per CPU)")
    for key, message in check_trusted_proxies(server.trusted_proxies):
        problems.add(f"server.{key}", message)
    if server.ws_max_message_size < 1:
        problems.add("server.ws_max_message_size", 'must be at least 1 byte, as in "16MiB"')
    if server.ws_ping_interval and not server.ws_ping_timeout:
        problems.add("server.ws_ping_timeout", "must be more than 0 while ws_ping_interval is set (0 turns pings off)")


def _substitute(value: Any, path: str, problems: Problems) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string value."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        return FromEnvironment(_ENV.sub(lambda m: _env_value(m, path, problems), value))
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else k, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _env_value(match: re.Match[str], path: str, problems: Problems) -> str:
    name, default = match.group(1), match.group(2)
    if default is not None and "${" in default:
        problems.add(path, f"${{{name}:-...}}: a default cannot hold another ${{...}}; write the value itself")
        return ""
    value = os.environ.get(name)
    if default is not None and not value:  # unset or empty, as the shell's ${VAR:-default} (env files set VAR=)
        return default
    if value is not None:
        return value
    problems.add(path, f"environment variable {name} is not set (write ${{{name}:-default}} for a fallback)")
    return ""


def with_overrides(config: Config, **server: Any) -> Config:
    """The config with command-line settings on top (None means not given), checked as the config's keys are."""
    given = {key: value for key, value in server.items() if value is not None}
    if not given:
        return config
    problems = Problems("command line")
    fields = {f.name: f for f in dataclasses.fields(ServerSettings)}
    hints = typing.get_type_hints(ServerSettings)
    checked: dict[str, Any] = {}
    for key, value in given.items():
        try:
            plain = list(value) if isinstance(value, tuple) else value
            checked[key] = convert(plain, hints[key], fields[key].metadata.get("kind", ""))
        except ValueError as exc:
            problems.add("--" + key.replace("_", "-"), str(exc))
    settings = replace(config.server, **checked)
    _check_server(settings, problems, Path.cwd())  # a path on the command line is the shell's, relative to its folder
    if problems.items:
        raise ConfigError(problems.items)
    return replace(config, server=settings)
