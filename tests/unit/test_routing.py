"""Routing without a server: host normalisation, the host table, path matching, shadowed routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.loader import load
from gateway.routing.hosts import HostTable, check_name, normalize_host
from gateway.routing.paths import EXACT, PREFIX, REGEX, PathMatcher, parse_path
from gateway.routing.report import warnings
from gateway.routing.router import build_router

# normalize_host ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        (b"Example.COM", "example.com"),
        ("example.com:8080", "example.com"),
        ("EXAMPLE.com:443", "example.com"),
        ("example.com.", "example.com"),
        ("Example.com.:8080", "example.com"),
        (b"example.com.:80", "example.com"),
        ("  example.com  ", "example.com"),
        ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"),
        (b"[2001:DB8::1]:443", "[2001:db8::1]"),
        ("127.0.0.1:8080", "127.0.0.1"),
        ("", ""),
        (b"", ""),
    ],
)
def test_normalize_host(raw: bytes | str, expected: str) -> None:
    assert normalize_host(raw) == expected


# check_name -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["example.com", "*.example.com", "localhost", "[::1]", "127.0.0.1", "xn--bcher-kva.ch"]
)
def test_usable_vhost_names(name: str) -> None:
    assert check_name(name) is None


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", "empty"),
        ("Example.com", "lower case"),
        ("www.*.example.com", "leading '*.'"),
        ("*example.com", "leading '*.'"),
        ("example.com:8080", "port"),
        ("::1", "in brackets, as the Host header carries it: '[::1]'"),
        ("fe80::1", "'[fe80::1]'"),
    ],
)
def test_unusable_vhost_names_say_why(name: str, words: str) -> None:
    reason = check_name(name)
    assert reason is not None
    assert words in reason


@pytest.mark.parametrize("name", ["*.", "exa mple.com", "example.com/"])
def test_names_no_host_can_match_are_refused(name: str) -> None:
    assert check_name(name) is not None


# HostTable --------------------------------------------------------------------------------------


def table() -> HostTable[str]:
    hosts: HostTable[str] = HostTable("default")
    hosts.add("example.com", "main")
    hosts.add("*.example.com", "any-sub")
    hosts.add("*.api.example.com", "api-sub")
    hosts.add("api.example.com", "api")
    return hosts


@pytest.mark.parametrize(
    ("host", "value", "how"),
    [
        ("example.com", "main", "exact name 'example.com'"),
        ("api.example.com", "api", "exact name 'api.example.com'"),
        ("www.example.com", "any-sub", "wildcard '*.example.com'"),
        ("a.b.c.example.com", "any-sub", "wildcard '*.example.com'"),
        ("v1.api.example.com", "api-sub", "wildcard '*.api.example.com'"),
        ("x.v1.api.example.com", "api-sub", "wildcard '*.api.example.com'"),
        ("other.org", "default", "no name matched: the default vhost"),
        ("", "default", "no name matched: the default vhost"),
        ("notexample.com", "default", "no name matched: the default vhost"),
        ("example.com.evil.org", "default", "no name matched: the default vhost"),
    ],
)
def test_host_lookup_exact_then_longest_wildcard_then_default(host: str, value: str, how: str) -> None:
    assert table().lookup(host) == (value, how)


def test_a_wildcard_does_not_match_the_bare_domain() -> None:
    hosts: HostTable[str] = HostTable("default")
    hosts.add("*.example.com", "sub")
    assert hosts.lookup("example.com")[0] == "default"
    assert hosts.lookup("www.example.com")[0] == "sub"


def test_an_exact_name_beats_a_wildcard_added_before_it() -> None:
    hosts: HostTable[str] = HostTable("default")
    hosts.add("*.example.com", "wild")
    hosts.add("www.example.com", "www")
    assert hosts.lookup("www.example.com")[0] == "www"
    assert hosts.lookup("cdn.example.com")[0] == "wild"


def test_the_first_vhost_to_name_a_host_keeps_it() -> None:
    hosts: HostTable[str] = HostTable("default")
    assert hosts.add("example.com", "first") is True
    assert hosts.add("example.com", "second") is False
    assert hosts.add("*.example.com", "first-wild") is True
    assert hosts.add("*.example.com", "second-wild") is False
    assert hosts.lookup("example.com")[0] == "first"
    assert hosts.lookup("a.example.com")[0] == "first-wild"


def test_lookup_takes_normalized_hosts() -> None:
    hosts: HostTable[str] = HostTable("default")
    hosts.add("example.com", "main")
    hosts.add("[::1]", "ipv6")
    assert hosts.lookup(normalize_host(b"EXAMPLE.com.:8443"))[0] == "main"
    assert hosts.lookup(normalize_host(b"[::1]:8080"))[0] == "ipv6"


# parse_path -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("/", (PREFIX, "/")),
        ("/api/", (PREFIX, "/api/")),
        ("/api", (PREFIX, "/api")),
        ("=/health", (EXACT, "/health")),
        ("~^/old/(.*)$", (REGEX, "^/old/(.*)$")),
    ],
)
def test_parse_path(spec: str, parsed: tuple[str, str]) -> None:
    assert parse_path(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("api/", "a path starts with '/'"),
        ("", "a path starts with '/'"),
        ("=health", "an exact path starts with '=/'"),
        ("~^/old/(.*$", "not a valid regular expression"),
    ],
)
def test_bad_paths_say_what_is_expected(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_path(spec)


# PathMatcher ------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["/api", "/api/"])
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api", True),
        ("/api/", True),
        ("/api/x", True),
        ("/api/x/y", True),
        ("/apix", False),
        ("/api-v2/x", False),
        ("/ap", False),
        ("/", False),
        ("/other/api/x", False),
    ],
)
def test_prefix_matches_whole_segments(spec: str, path: str, expected: bool) -> None:
    assert bool(PathMatcher(spec).match(path)) is expected


@pytest.mark.parametrize("path", ["/", "/x", "/api/x", "/a/b/c/", ""])
def test_root_prefix_matches_every_path(path: str) -> None:
    assert PathMatcher("/").match(path)


def test_mount_is_the_prefix_without_its_trailing_slash() -> None:
    assert PathMatcher("/api/").mount == "/api"
    assert PathMatcher("/api").mount == "/api"
    assert PathMatcher("/a/b/").mount == "/a/b"
    assert PathMatcher("/").mount == ""
    assert PathMatcher("=/health").mount == ""
    assert PathMatcher("~^/x").mount == ""


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/health", True), ("/health/", False), ("/health/x", False), ("/healthz", False), ("/", False)],
)
def test_exact_matches_only_that_path(path: str, expected: bool) -> None:
    assert bool(PathMatcher("=/health").match(path)) is expected


def test_regex_match_gives_its_groups() -> None:
    matcher = PathMatcher(r"~^/old/([a-z]+)/(\d+)$")
    found = matcher.match("/old/widget/42")
    assert found
    assert found.groups() == ("widget", "42")
    assert not matcher.match("/old/widget/x")
    assert not matcher.match("/new/old/widget/42")


def test_an_unanchored_regex_searches_anywhere_in_the_path() -> None:
    matcher = PathMatcher(r"~\.php$")
    assert matcher.match("/index.php")
    assert matcher.match("/a/b/c.php")
    assert not matcher.match("/index.php/x")


@pytest.mark.parametrize(("spec", "kind"), [("/a/", "prefix"), ("=/a", "exact"), ("~a", "regex")])
def test_describe(spec: str, kind: str) -> None:
    assert PathMatcher(spec).describe() == kind


# covers(): what `gateway check` warns about ---------------------------------------------------------


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("/", "/api/"),
        ("/", "=/health"),
        ("/", "~^/old/"),
        ("/", "/"),
        ("/api/", "/api/v1/"),
        ("/api", "/api/v1"),
        ("/api/", "/api"),
        ("/api", "/api/"),
        ("/api/", "=/api/health"),
        ("/api/", "=/api"),
        ("=/health", "=/health"),
    ],
)
def test_covers_when_every_later_path_meets_the_earlier_route(earlier: str, later: str) -> None:
    assert PathMatcher(earlier).covers(PathMatcher(later))


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        ("/api/", "/"),
        ("/api/", "/apix/"),
        ("/api/", "=/apix"),
        ("/api/v1/", "/api/"),
        ("/api/", "~^/api/"),
        ("=/health", "=/healthz"),
        ("=/api", "/api/"),
        ("~^/api/", "/api/v1/"),
        ("~.*", "=/x"),
        ("/static/", "/api/"),
    ],
)
def test_does_not_cover_when_some_later_path_gets_through(earlier: str, later: str) -> None:
    assert not PathMatcher(earlier).covers(PathMatcher(later))


SHADOW_CONFIG = """
[[vhost]]
names = ["a.test"]
  [[vhost.route]]
  path = "~^/x"
  handler = "redirect"
  to = "/one"
  [[vhost.route]]
  path = "~^/x"
  handler = "redirect"
  to = "/two"
  [[vhost.route]]
  path = "/y/"
  methods = ["GET", "POST"]
  handler = "redirect"
  to = "/one"
  [[vhost.route]]
  path = "/y/"
  methods = ["GET"]
  handler = "redirect"
  to = "/two"
  [[vhost.route]]
  path = "/y/"
  methods = ["PUT"]
  handler = "redirect"
  to = "/three"
"""


def test_a_route_the_same_as_an_earlier_one_is_shadowed_too(tmp_path: Path) -> None:
    """The same regex twice, or the same prefix for methods an earlier route takes already: never reached."""
    config = tmp_path / "gateway.toml"
    config.write_text(SHADOW_CONFIG)
    router = build_router(load(config))[0]
    assert router is not None
    assert [line.split(": ", 1)[1] for line in warnings(router)] == [
        "vhost[0].route[1]: '~^/x' is never reached: route[0] '~^/x' matches all its paths first",
        "vhost[0].route[3]: '/y/' is never reached: route[2] '/y/' matches all its paths and methods first",
    ]
