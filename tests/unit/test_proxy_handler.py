"""The proxy handler's config keys: read from TOML, and every problem named with its key path (no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.proxy import ProxyHandler, ProxyOptions
from gateway.config.loader import load
from gateway.errors import ConfigError
from gateway.routing.router import build_router


def route(tmp_path: Path, keys: str) -> Path:
    path = tmp_path / "gateway.toml"
    head = '[[vhost]]\nnames = ["p.test"]\n  [[vhost.route]]\n  path = "/api/"\n  handler = "proxy"\n'
    path.write_text(f"{head}{keys}\n")
    return path


def problems(path: Path) -> list[str]:
    """What `gateway check` would say: load errors, else the handler's problems."""
    try:
        config = load(path)
    except ConfigError as exc:
        return exc.lines()
    return [f"{key}: {message}" for _, key, message in build_router(config)[1]]


def test_every_key_is_read(tmp_path: Path) -> None:
    config = load(
        route(
            tmp_path,
            """
  upstreams = ["http://127.0.0.1:9000", "unix:app.sock"]
  balance = "least_connections"
  preserve_host = true
  strip_prefix = true
  connect_timeout = "250ms"
  read_timeout = "2m"
  keepalive = 4
  keepalive_timeout = 3
  max_connections = 10
  max_fails = 3
  fail_timeout = "1m"
  health = { path = "/health", interval = "5s", timeout = "1s" }
""",
        )
    )
    options = config.vhosts[0].routes[0].options
    assert isinstance(options, ProxyOptions)
    assert options.upstreams == ("http://127.0.0.1:9000", "unix:app.sock")
    assert (options.balance, options.preserve_host, options.strip_prefix) == ("least_connections", True, True)
    assert (options.connect_timeout, options.read_timeout, options.keepalive_timeout) == (0.25, 120.0, 3.0)
    assert (options.keepalive, options.max_connections, options.max_fails, options.fail_timeout) == (4, 10, 3, 60.0)
    assert (options.health.path, options.health.interval, options.health.timeout) == ("/health", 5.0, 1.0)
    assert build_router(config)[1] == []


def test_relative_unix_sockets_resolve_against_the_config(tmp_path: Path) -> None:
    config = load(route(tmp_path, 'upstreams = ["unix:run/app.sock", "http://127.0.0.1:1"]'))
    router, found = build_router(config)
    assert found == []
    handler = router.vhosts[0].routes[0].handler
    assert isinstance(handler, ProxyHandler)
    assert handler.addresses() == [f"unix:{tmp_path / 'run/app.sock'}", "http://127.0.0.1:1"]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("", "vhost[0].route[0].upstreams: missing; where to send requests"),
        ('upstreams = ["127.0.0.1:9000"]', '\'127.0.0.1:9000\': expected "http://host:port" or "unix:/path/to.sock"'),
        ('upstreams = ["http://a:1/v1"]', "only scheme, host and port; to drop the route's prefix use strip_prefix"),
        ('upstreams = ["http://a:1"]\n  balance = "random"', "expected one of 'round_robin', 'least_connections'"),
        ('upstreams = ["http://a:1"]\n  read_timeout = 0', "vhost[0].route[0].read_timeout: must be more than 0"),
        ('upstreams = ["http://a:1"]\n  health = { path = "health" }', "health.path: 'health': expected a path"),
        ('upstreams = ["http://a:1"]\n  health = { path = "/h", interval = 0 }', "health.interval: must be more"),
        ('upstreams = ["http://a:1"]\n  health = { path = "/h", every = 1 }', "health.every: unknown key"),
        (
            'upstreams = ["http://a:1"]\n  keepalive = -1',
            "keepalive: expected a whole number from 0 to 2147483647, got -1",
        ),
        ('upstreams = ["http://a:1"]\n  upstream = ["http://b:1"]', "unknown key for handler 'proxy' (did you mean"),
    ],
)
def test_problems_name_the_key(tmp_path: Path, keys: str, expected: str) -> None:
    found = problems(route(tmp_path, "  " + keys))
    assert any(expected in line for line in found), found
