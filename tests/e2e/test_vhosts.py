"""Virtual hosts and routes over real sockets, and `gateway check/routes/explain` on the same config.

One gateway serves SITE (below) for the whole module: Starlette apps at a
vhost's root and under a prefix route, redirects, wildcard and default vhosts,
method-restricted routes, vhosts from included files and a route path taken
from the environment. The apps are in tests/e2e/vhost_apps.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.server import ROOT, Gateway, gateway_command, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

APPS = "tests.e2e.vhost_apps"
ENV = {"GW_E2E_PREFIX": "from-env"}

# The Starlette apps are named through plain-function wrappers (alpha_entry, beta_entry):
# the asgi handler refuses Starlette instances themselves (see test_a_starlette_instance_is_served).
SITE = textwrap.dedent(
    f"""
    include = ["sites/*.toml"]

    [server]
    access_log = "off"

    [[vhost]]
    names = ["alpha.test"]
      [[vhost.route]]
      path = "/"
      handler = "asgi"
      app = "{APPS}:alpha_entry"

    [[vhost]]
    names = ["beta.test", "www.beta.test"]
      [[vhost.route]]
      path = "=/api/special"
      handler = "redirect"
      to = "/special-comes-first"
      [[vhost.route]]
      path = "/api/"
      handler = "asgi"
      app = "{APPS}:beta_entry"
      [[vhost.route]]
      path = '~^/old/([a-z]+)/(\\d+)$'
      handler = "redirect"
      to = "https://new.beta.test/$1/item-$2{{query}}"
      status = 301
      [[vhost.route]]
      path = "/moved/"
      handler = "redirect"
      to = "https://moved.test/now{{path}}{{query}}"
      status = 308
      [[vhost.route]]
      path = '~^/go/([^/]*)$'
      handler = "redirect"
      to = "https://elsewhere.test/$1"
      [[vhost.route]]
      path = "/shop/"
      handler = "asgi"
      app = "{APPS}:site_shop"
      [[vhost.route]]
      path = "/shop/cart/"
      handler = "asgi"
      app = "{APPS}:site_cart"
      [[vhost.route]]
      path = "/form/"
      methods = ["GET"]
      handler = "asgi"
      app = "{APPS}:site_form_get"
      [[vhost.route]]
      path = "/form/"
      methods = ["POST"]
      handler = "asgi"
      app = "{APPS}:site_form_post"
      [[vhost.route]]
      path = "/${{GW_E2E_PREFIX}}/"
      handler = "asgi"
      app = "{APPS}:site_env"

    [[vhost]]
    names = ["*.wild.test"]
      [[vhost.route]]
      handler = "asgi"
      app = "{APPS}:site_wild"

    [[vhost]]
    names = ["*.deep.wild.test"]
      [[vhost.route]]
      handler = "asgi"
      app = "{APPS}:site_deep"

    [[vhost]]
    names = ["default.test"]
    default = true
      [[vhost.route]]
      handler = "asgi"
      app = "{APPS}:site_default"
    """
)

INCLUDED = {
    "one.toml": f'[[vhost]]\nnames = ["one.test"]\n  [[vhost.route]]\n  handler = "asgi"\n'
    f'  app = "{APPS}:site_included_one"\n',
    "two.toml": f'[[vhost]]\nnames = ["two.test"]\n  [[vhost.route]]\n  handler = "asgi"\n'
    f'  app = "{APPS}:site_included_two"\n',
}


@pytest.fixture(scope="module")
def site_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SITE written beside sites/one.toml and sites/two.toml (the include is relative to it)."""
    folder = tmp_path_factory.mktemp("vhosts")
    (folder / "sites").mkdir()
    for name, text in INCLUDED.items():
        (folder / "sites" / name).write_text(text)
    config = folder / "gateway.toml"
    config.write_text(SITE)
    return config


@pytest.fixture(scope="module")
def gw(site_config: Path) -> Iterator[Gateway]:
    with run_gateway(str(site_config), env=ENV) as running:
        yield running


@pytest.fixture(scope="module")
def client(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=5) as http:
        yield http


def get(client: httpx.Client, host: str, path: str, method: str = "GET") -> httpx.Response:
    return client.request(method, path, headers={"host": host})


def raw(gw: Gateway, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are; the status, headers and body of the one response."""
    with gw.connect() as sock:
        sock.sendall(request)
        data = read_response(sock)
    assert data, "the connection closed without a response"
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def site(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()["site"]


# Starlette apps: mounting (root_path) and lifespan ---------------------------------------------------


def test_starlette_at_a_vhost_root_builds_urls_without_a_prefix(client: httpx.Client) -> None:
    response = get(client, "alpha.test", "/where")
    assert response.status_code == 200
    assert response.json() == {
        "site": "alpha",
        "url_for": "http://alpha.test/where",
        "item_url": "http://alpha.test/v1/items/7",
        "root_path": "",
        "path": "/where",
        "url": "http://alpha.test/where",
        "started_by": "alpha",
        "runs": 1,
    }


def test_starlette_under_a_prefix_route_sees_the_mount_as_root_path(client: httpx.Client) -> None:
    response = get(client, "beta.test", "/api/where")
    assert response.status_code == 200
    assert response.json() == {
        "site": "beta",
        "url_for": "http://beta.test/api/where",
        "item_url": "http://beta.test/api/v1/items/7",
        "root_path": "/api",
        "path": "/api/where",
        "url": "http://beta.test/api/where",
        "started_by": "beta",
        "runs": 1,
    }


def test_a_mounted_app_routes_below_its_mount(client: httpx.Client) -> None:
    item = get(client, "beta.test", "/api/v1/items/42")
    assert item.status_code == 200
    assert item.json() == {"item": 42, "url": "http://beta.test/api/v1/items/42"}
    home = get(client, "beta.test", "/api/")
    assert home.json() == {"site": "beta", "home": True, "path": "/api/"}
    # The mount itself, without its slash, reaches the app, which sends it to its "/" route.
    bare = get(client, "beta.test", "/api")
    assert bare.status_code == 307
    assert bare.headers["location"] == "http://beta.test/api/"


def test_each_app_ran_its_own_lifespan_once(client: httpx.Client) -> None:
    alpha = get(client, "alpha.test", "/where").json()
    beta = get(client, "beta.test", "/api/where").json()
    assert (alpha["started_by"], alpha["runs"]) == ("alpha", 1)
    assert (beta["started_by"], beta["runs"]) == ("beta", 1)


def test_every_name_of_a_vhost_reaches_it_and_urls_follow_the_host(client: httpx.Client) -> None:
    response = get(client, "www.beta.test", "/api/where")
    assert response.json()["url_for"] == "http://www.beta.test/api/where"


@pytest.mark.parametrize("host", ["BETA.TEST", "beta.test.", "Beta.Test:8080", "beta.test.:8080"])
def test_host_matching_ignores_case_port_and_a_trailing_dot(client: httpx.Client, host: str) -> None:
    assert site(get(client, host, "/api/where")) == "beta"


# Redirects -------------------------------------------------------------------------------------------


def test_regex_redirect_fills_in_groups_and_the_query(client: httpx.Client) -> None:
    response = get(client, "beta.test", "/old/widget/42?colour=red&size=2")
    assert response.status_code == 301
    assert response.headers["location"] == "https://new.beta.test/widget/item-42?colour=red&size=2"
    without_query = get(client, "beta.test", "/old/widget/42")
    assert without_query.headers["location"] == "https://new.beta.test/widget/item-42"


def test_prefix_redirect_keeps_the_path_below_the_prefix_and_the_query(client: httpx.Client) -> None:
    response = get(client, "beta.test", "/moved/a/b%20c?x=1")
    assert response.status_code == 308
    assert response.headers["location"] == "https://moved.test/now/a/b%20c?x=1"
    assert get(client, "beta.test", "/moved").headers["location"] == "https://moved.test/now"
    assert get(client, "beta.test", "/moved/").headers["location"] == "https://moved.test/now/"


def test_regex_redirect_keeps_location_ascii(client: httpx.Client) -> None:
    response = get(client, "beta.test", "/go/%C3%A9t%C3%A9")
    assert response.status_code == 302
    location = dict(response.headers.raw)[b"location"]
    assert location == b"https://elsewhere.test/%C3%A9t%C3%A9"


def test_regex_redirect_with_an_encoded_newline_still_answers(gw: Gateway) -> None:
    status, headers, _ = raw(
        gw, b"GET /go/a%0d%0aSet-Cookie:%20x=1 HTTP/1.1\r\nHost: beta.test\r\nConnection: close\r\n\r\n"
    )
    assert status == 302
    assert "set-cookie" not in headers
    assert headers["location"].lower() == "https://elsewhere.test/a%0d%0aset-cookie:%20x=1"


def test_prefix_redirect_with_an_encoded_prefix_keeps_only_the_rest(client: httpx.Client) -> None:
    response = get(client, "beta.test", "/mov%65d/a%2Fb?q=1")
    assert response.status_code == 308
    assert response.headers["location"] == "https://moved.test/now/a%2Fb?q=1"


@pytest.mark.parametrize(
    ("target", "location"),
    [
        ("/moved//evil.example/x", "https://moved.test/now/evil.example/x"),  # slashes merged, as routes see it
        ("/x/../moved/a/./b", "https://moved.test/now/a/b"),
        ("/moved/%5Cx", "https://moved.test/now/%5Cx"),
        ("/moved/caf%E9", "https://moved.test/now/caf%E9"),  # not UTF-8: the byte kept
        ('/moved/q?a="<x>"&b=%41', "https://moved.test/now/q?a=%22%3Cx%3E%22&b=%41"),
    ],
)
def test_prefix_redirect_path_and_query_are_the_routed_ones_encoded_again(
    gw: Gateway, target: str, location: str
) -> None:
    request = f"GET {target} HTTP/1.1\r\nHost: beta.test\r\nConnection: close\r\n\r\n".encode("latin-1")
    status, headers, _ = raw(gw, request)
    assert (status, headers["location"]) == (308, location)


def test_a_redirect_to_the_path_alone_never_names_another_host() -> None:
    """to = "{path}" sends a browser to "//evil.example/x" (another host) if the client's raw path went out."""
    config = '[[vhost]]\nnames = ["r.test"]\n  [[vhost.route]]\n  path = "/strip/"\n  handler = "redirect"\n'
    config += '  to = "{path}{query}"\n'
    with run_gateway(config_text=config) as gateway:
        for target, location in [
            ("/strip//evil.example/x", "/evil.example/x"),
            ("/strip/\\evil.example", "/%5Cevil.example"),
        ]:
            request = f"GET {target} HTTP/1.1\r\nHost: r.test\r\nConnection: close\r\n\r\n".encode()
            status, headers, _ = raw(gateway, request)
            assert (status, headers["location"]) == (302, location)


# Host → vhost ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("a.wild.test", "wild"),
        ("a.b.wild.test", "wild"),
        ("x.deep.wild.test", "deep"),
        ("y.x.deep.wild.test", "deep"),
        ("deep.wild.test", "wild"),
        ("wild.test", "default"),
        ("unknown.test", "default"),
        ("127.0.0.1", "default"),
        ("[::1]:8080", "default"),
    ],
)
def test_wildcards_take_the_longest_suffix_and_unknown_hosts_the_default(
    client: httpx.Client, host: str, expected: str
) -> None:
    assert site(get(client, host, "/anything")) == expected


def test_http_1_0_without_host_goes_to_the_default_vhost(gw: Gateway) -> None:
    status, _, body = raw(gw, b"GET /who HTTP/1.0\r\n\r\n")
    assert status == 200
    assert b'"site": "default"' in body
    assert b'"http_version": "1.0"' in body


def test_an_absolute_form_target_chooses_the_vhost_over_the_host_header(gw: Gateway) -> None:
    status, _, body = raw(
        gw, b"GET http://alpha.test/where HTTP/1.1\r\nHost: default.test\r\nConnection: close\r\n\r\n"
    )
    assert status == 200
    assert b'"site":"alpha"' in body
    assert b'"url_for":"http://alpha.test/where"' in body


# Routes: order, 404, 405 ------------------------------------------------------------------------------


def test_routes_are_tried_in_config_order(client: httpx.Client) -> None:
    # An exact route listed before the /api/ mount wins over it.
    special = get(client, "beta.test", "/api/special")
    assert special.status_code == 302
    assert special.headers["location"] == "/special-comes-first"
    # The exact route takes that one path only: below it, the mounted app answers (its own 404).
    below = get(client, "beta.test", "/api/special/more")
    assert (below.status_code, below.text) == (404, "Not Found")
    # /shop/ comes first, so the more specific /shop/cart/ after it never answers.
    assert site(get(client, "beta.test", "/shop/cart/")) == "shop"
    assert site(get(client, "beta.test", "/shop/cart/items")) == "shop"


@pytest.mark.parametrize("path", [b"/shop/../api/where", b"/shop/%2e%2e/api/where"])
def test_dot_segments_do_not_route_around_a_prefix(gw: Gateway, path: bytes) -> None:
    # A raw socket: httpx would remove the dot segments before sending.
    status, _, body = raw(gw, b"GET " + path + b" HTTP/1.1\r\nHost: beta.test\r\nConnection: close\r\n\r\n")
    # Refused outright, or routed as the path it resolves to: never the /shop/ route.
    assert status == 400 or b'"site":"beta"' in body, body


@pytest.mark.parametrize("path", ["/nothing", "/apix", "/api-v2/where", "/shopping", "/"])
def test_no_route_is_a_small_plain_404(client: httpx.Client, path: str) -> None:
    response = get(client, "beta.test", path)
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("404 Not Found\n")
    assert len(response.content) < 200
    assert "allow" not in response.headers


def test_a_route_of_another_method_is_405_with_allow(client: httpx.Client) -> None:
    response = get(client, "beta.test", "/form/x", method="PUT")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.text.startswith("405 Method Not Allowed\n")
    assert len(response.content) < 200


def test_methods_choose_among_routes_of_one_path_and_get_allows_head(client: httpx.Client) -> None:
    assert site(get(client, "beta.test", "/form/")) == "form-get"
    assert site(get(client, "beta.test", "/form/", method="POST")) == "form-post"
    head = get(client, "beta.test", "/form/", method="HEAD")
    assert head.status_code == 200
    assert head.content == b""


# Config: includes and ${ENV} --------------------------------------------------------------------------


def test_included_files_add_vhosts(client: httpx.Client) -> None:
    assert site(get(client, "one.test", "/")) == "included-one"
    assert site(get(client, "two.test", "/x")) == "included-two"


def test_an_environment_variable_in_a_route_path(client: httpx.Client) -> None:
    response = get(client, "beta.test", "/from-env/page")
    assert response.json() == {
        "site": "env",
        "host": "beta.test",
        "method": "GET",
        "path": "/from-env/page",
        "root_path": "/from-env",
        "http_version": "1.1",
    }
    assert get(client, "beta.test", "/${GW_E2E_PREFIX}/page").status_code == 404


# Startup failures -------------------------------------------------------------------------------------

BROKEN = """
[[vhost]]
names = ["fine.test"]
  [[vhost.route]]
  handler = "redirect"
  to = "https://example.com/"

[[vhost]]
names = ["broken.test"]
  [[vhost.route]]
  path = "/ok/"
  handler = "redirect"
  to = "https://example.com/"
  [[vhost.route]]
  path = "/api/"
  handler = "asgi"
  app = "{app}"
"""


@pytest.mark.parametrize(
    ("app", "words"),
    [
        ("no_such_module_xyz:app", "no module named 'no_such_module_xyz'"),
        ("broken_at_import:app", "importing 'broken_at_import' raised RuntimeError: this app cannot be imported"),
        ("tests.e2e.vhost_apps:no_such_app", "has no attribute 'no_such_app'"),
    ],
)
def test_an_app_that_fails_to_import_stops_serve_with_one_line(tmp_path: Path, app: str, words: str) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(BROKEN.format(app=app))
    # Beside the config, which is where apps are imported from.
    (tmp_path / "broken_at_import.py").write_text('raise RuntimeError("this app cannot be imported")\n')
    result = gateway_command("serve", str(config), "--listen", f"unix:{tmp_path / 'gw.sock'}")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {config}: vhost[1].route[1].app: '{app}': ")
    assert words in lines[0]
    assert not (tmp_path / "gw.sock").exists()


def test_a_starlette_instance_is_served(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  handler = "asgi"\n  app = "{APPS}:alpha"\n')
    result = gateway_command("check", str(config))
    assert result.returncode == 0, result.stderr


# gateway check / routes / explain on SITE ------------------------------------------------------------


def test_check_summarises_and_warns_about_the_shadowed_route(site_config: Path) -> None:
    result = gateway_command("check", str(site_config), env=ENV)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        f"{site_config}: OK",
        "  listen: 127.0.0.1:8080",
        "  limits: body ≤ 10485760 B, head in 10s, body idle 30s, app answers in 300s, 1024 connections",
        "  vhost[0] alpha.test: / → asgi",
        "  vhost[1] beta.test, www.beta.test: =/api/special → redirect, /api/ → asgi, "
        "~^/old/([a-z]+)/(\\d+)$ → redirect, /moved/ → redirect, ~^/go/([^/]*)$ → redirect, /shop/ → asgi, "
        "/shop/cart/ → asgi, /form/ → asgi, /form/ → asgi, /from-env/ → asgi",
        "  vhost[2] *.wild.test: / → asgi",
        "  vhost[3] *.deep.wild.test: / → asgi",
        "  vhost[4] default.test: / → asgi",
        "  vhost[5] one.test: / → asgi",
        "  vhost[6] two.test: / → asgi",
    ]
    assert result.stderr.splitlines() == [
        f"warning: {site_config}: vhost[1].route[6]: '/shop/cart/' is never reached: "
        "route[5] '/shop/' matches all its paths first"
    ]


def test_check_refuses_a_missing_module_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(BROKEN.format(app="no_such_module_xyz:app"))
    result = gateway_command("check", str(config))
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {config}: vhost[1].route[1].app: 'no_such_module_xyz:app': no module named 'no_such_module_xyz' "
        f"(looked in '{tmp_path}' and the installed packages)\n"
    )


def test_check_without_the_environment_variable_names_the_route(site_config: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "GW_E2E_PREFIX"}
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "check", str(site_config)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2, result
    assert result.stderr == (
        f"error: {site_config}: vhost[1].route[9].path: environment variable GW_E2E_PREFIX is not set "
        "(write ${GW_E2E_PREFIX:-default} for a fallback)\n"
    )


def test_routes_prints_every_vhost_and_its_routes_in_order(site_config: Path) -> None:
    result = gateway_command("routes", str(site_config), env=ENV)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("limits in force: body ≤ 10485760 B")
    # Route 2, a regex, has its own test below (test_routes_prints_a_regex_path_as_written).
    assert [line for line in lines[1:12] if not line.startswith("  route 2 ")] == [
        "vhost[0]: alpha.test",
        f'''  route 0 '/' (prefix) → asgi (app = "{APPS}:alpha_entry")''',
        "vhost[1]: beta.test, www.beta.test",
        """  route 0 '=/api/special' (exact) → redirect (to = "/special-comes-first")""",
        f'''  route 1 '/api/' (prefix) → asgi (app = "{APPS}:beta_entry")''',
        """  route 3 '/moved/' (prefix) → redirect (to = "https://moved.test/now{path}{query}", status = 308)""",
        """  route 4 '~^/go/([^/]*)$' (regex) → redirect (to = "https://elsewhere.test/$1")""",
        f'''  route 5 '/shop/' (prefix) → asgi (app = "{APPS}:site_shop")''',
        f'''  route 6 '/shop/cart/' (prefix) → asgi (app = "{APPS}:site_cart")''',
        f'''  route 7 '/form/' (prefix) [GET, HEAD] → asgi (app = "{APPS}:site_form_get")''',
    ]
    assert f"""  route 8 '/form/' (prefix) [POST] → asgi (app = "{APPS}:site_form_post")""" in lines
    assert "vhost[4] (default): default.test" in lines
    assert "vhost[6]: two.test" in lines
    assert lines[-1] == f"""  route 0 '/' (prefix) → asgi (app = "{APPS}:site_included_two")"""


def test_routes_prints_a_regex_path_as_written(site_config: Path) -> None:
    result = gateway_command("routes", str(site_config), env=ENV)
    assert (
        "  route 2 '~^/old/([a-z]+)/(\\d+)$' (regex) → redirect "
        '(to = "https://new.beta.test/$1/item-$2{query}", status = 301)'
    ) in result.stdout.splitlines()


def test_explain_says_why_a_post_is_refused(site_config: Path) -> None:
    result = gateway_command("explain", str(site_config), "http://beta.test/form/x", "-X", "PUT", env=ENV)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == "host 'beta.test' → vhost[1] (beta.test, www.beta.test): exact name 'beta.test'"
    assert "  route 0 '=/api/special' (exact): no match" in lines
    assert "  route 7 '/form/': path matches, method PUT not in GET, HEAD" in lines
    assert "  route 8 '/form/': path matches, method PUT not in POST" in lines
    assert "405" in lines[-1]


def test_explain_states_the_405_and_its_allow_header(site_config: Path) -> None:
    result = gateway_command("explain", str(site_config), "http://beta.test/form/x", "-X", "PUT", env=ENV)
    last = result.stdout.splitlines()[-1]
    assert "405" in last and "404" not in last
    assert "GET, HEAD, POST" in last


def test_explain_a_wildcard_match_and_the_mount(site_config: Path) -> None:
    result = gateway_command("explain", str(site_config), "http://x.Deep.wild.test:8080/a/b", env=ENV)
    assert result.returncode == 0, result
    assert result.stdout.splitlines() == [
        "host 'x.Deep.wild.test:8080' → vhost[3] (*.deep.wild.test): wildcard '*.deep.wild.test'",
        "  route 0 '/' (prefix): matches",
        f'handler: asgi (app = "{APPS}:site_deep")',
        "limits: body ≤ 10485760 B, head in 10s, body idle 30s, app answers in 300s, 1024 connections",
    ]
    mounted = gateway_command("explain", str(site_config), "/api/where", "-H", "Host: beta.test", env=ENV)
    assert mounted.returncode == 0, mounted
    assert "mounted at '/api': the app sees root_path='/api', path='/api/where'" in mounted.stdout.splitlines()
    garbled = gateway_command("explain", str(site_config), "/api/where", "-H", "Host beta.test", env=ENV)
    assert garbled.returncode == 2
    assert "--header 'Host beta.test': write it as 'Name: value'" in garbled.stderr


def test_explain_an_unknown_host_lands_on_the_default(site_config: Path) -> None:
    result = gateway_command("explain", str(site_config), "http://nobody.test/", env=ENV)
    assert result.returncode == 0, result
    lines = result.stdout.splitlines()
    assert lines[0] == "host 'nobody.test' → vhost[4] (default.test): no name matched: the default vhost"
    assert lines[1] == "  route 0 '/' (prefix): matches"


# Two routes or vhosts naming the same thing -----------------------------------------------------------

SHARED = f"""
[server]
access_log = "off"

[[vhost]]
names = ["alpha.test"]
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "{APPS}:alpha_entry"

[[vhost]]
names = ["alpha.test", "other.test"]
  [[vhost.route]]
  path = "/x/"
  handler = "asgi"
  app = "{APPS}:alpha_entry"
"""


def test_check_warns_when_two_vhosts_share_a_name(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(SHARED)
    result = gateway_command("check", str(config))
    assert result.returncode == 0, result
    assert result.stderr.splitlines() == [
        f"warning: {config}: vhost[1].names: 'alpha.test' is already a name of vhost[0] ({config}), "
        "which answers for it"
    ]


def test_one_app_named_by_two_routes_starts_once() -> None:
    with run_gateway(config_text=SHARED) as gateway, httpx.Client(base_url=gateway.url, timeout=5) as http:
        first = get(http, "alpha.test", "/where").json()
        second = get(http, "other.test", "/x/where").json()
    assert second["url_for"] == "http://other.test/x/where"
    assert (first["runs"], second["runs"]) == (1, 1)
