"""Reading gateway.toml: TOML, ${ENV} substitution, then validation into a Config.

Top level: [server], [limits], [[vhost]] (with [[vhost.route]]), `include`
(globs of more files holding [[vhost]] tables, relative to this file) and
`app`, a shortcut that serves one ASGI app on every host.
"""

from __future__ import annotations

import glob
import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from gateway.config.schema import Config, Limits, ServerSettings
from gateway.config.validate import Problems, build, did_you_mean
from gateway.config.vhosts import parse_vhosts
from gateway.errors import ConfigError
from gateway.listeners import parse_address
from gateway.stages.access import check_trusted_proxies
from gateway.tls.settings import split_listen

TOP_LEVEL_KEYS = ("server", "limits", "vhost", "include", "app")
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
    for include in _includes(data.get("include", []), config_dir, problems):
        more = Problems(str(include))
        vhosts += parse_vhosts(_substitute(_read(include), "", more).get("vhost", []), len(vhosts), str(include), more)
        problems.items += more.items
    if problems.items:
        raise ConfigError(problems.items)
    return replace(config, vhosts=tuple(vhosts))


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([(str(path), "", f"cannot read the file: {exc.strerror or exc}")]) from None
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
    server = build(ServerSettings, server_table, "server", problems)
    limits = build(Limits, data.get("limits", {}), "limits", problems)
    _check_server(server, problems)
    app = data.get("app")
    if app is not None and (not isinstance(app, str) or ":" not in app):
        problems.add("app", f"expected 'module:attribute', as in 'myproject.asgi:application', got {app!r}")
        app = None
    vhosts = parse_vhosts(data["vhost"], 0, source, problems) if "vhost" in data else []
    if app is not None and (vhosts or "include" in data):
        problems.add("app", "use either app (one app on every host) or [[vhost]] tables, not both")
    return Config(
        source=source,
        server=server,
        limits=limits,
        app=app,
        vhosts=tuple(vhosts),
        config_dir=config_dir or Path.cwd(),
        tls_listeners=tls_listeners,
    )


def _check_server(server: ServerSettings, problems: Problems) -> None:
    for index, spec in enumerate(server.listen):
        try:
            parse_address(spec)
        except ValueError as exc:
            problems.add(f"server.listen[{index}]", f"{exc}, got {spec!r}")
    if not server.listen:
        problems.add("server.listen", 'expected at least one address, as in ["127.0.0.1:8080"]')
    for key, message in check_trusted_proxies(server.trusted_proxies):
        problems.add(f"server.{key}", message)
    if server.ws_max_message_size < 1:
        problems.add("server.ws_max_message_size", 'must be at least 1 byte, as in "16MiB"')
    if server.ws_ping_interval and not server.ws_ping_timeout:
        problems.add("server.ws_ping_timeout", "must be more than 0 while ws_ping_interval is set (0 turns pings off)")


def _substitute(value: Any, path: str, problems: Problems) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string value."""
    if isinstance(value, str):
        return _ENV.sub(lambda m: _env_value(m, path, problems), value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{path}.{k}" if path else k, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    return value


def _env_value(match: re.Match[str], path: str, problems: Problems) -> str:
    name, default = match.group(1), match.group(2)
    value = os.environ.get(name)
    if value is not None:
        return value
    if default is not None:
        return default
    problems.add(path, f"environment variable {name} is not set (write ${{{name}:-default}} for a fallback)")
    return ""


def with_overrides(config: Config, **server: Any) -> Config:
    """The config with command-line settings on top (None means not given)."""
    given = {key: value for key, value in server.items() if value is not None}
    return replace(config, server=replace(config.server, **given)) if given else config
