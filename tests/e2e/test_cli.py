"""The `gateway` command as a user runs it: exit codes, one-line errors, and embedding."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

import gateway
from tests.support.server import ROOT, gateway_command, read_one_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

GATEWAY_SCRIPT = Path(sys.executable).parent / "gateway"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def assert_one_error_line(stderr: str) -> str:
    """A mistake is explained in one line for people: no traceback, no stack of frames."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


def test_missing_module_is_exit_2_with_one_readable_line(tmp_path: Path) -> None:
    result = gateway_command("serve", "no_such_module_xyz:app", "--listen", f"unix:{tmp_path / 'gw.sock'}")
    assert result.returncode == 2, result
    line = assert_one_error_line(result.stderr)
    assert "no_such_module_xyz" in line
    assert "no module named" in line.lower()
    assert not (tmp_path / "gw.sock").exists(), "nothing should be bound when the app cannot load"


def test_an_app_module_that_exits_on_import_is_exit_2_with_one_readable_line(tmp_path: Path) -> None:
    """sys.exit() (or argparse) at import time ended `gateway check` with the module's status and no word of why."""
    (tmp_path / "cli_app.py").write_text("import sys\nsys.exit(3)\napp = None\n")
    (tmp_path / "gateway.toml").write_text('app = "cli_app:app"\n')
    result = gateway_command("check", str(tmp_path / "gateway.toml"), env={"PYTHONPATH": f"{tmp_path}:{ROOT}"})
    assert result.returncode == 2, result
    line = assert_one_error_line(result.stderr)
    assert "'cli_app:app': importing 'cli_app' called sys.exit(3)" in line


def test_missing_attribute_is_exit_2_with_one_readable_line() -> None:
    result = gateway_command("serve", "tests.support.apps:no_such_app", "--listen", "127.0.0.1:0")
    assert result.returncode == 2, result
    line = assert_one_error_line(result.stderr)
    assert "no_such_app" in line


def test_app_spec_without_a_colon_is_exit_2() -> None:
    result = gateway_command("serve", "tests.support.apps", "--listen", "127.0.0.1:0")
    assert result.returncode == 2, result
    assert "module:attribute" in assert_one_error_line(result.stderr)


def test_unknown_config_key_is_exit_2_with_did_you_mean(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('app = "tests.support.apps:echo"\n[limits]\nmax_body = "1MiB"\n')
    result = gateway_command("serve", str(config), "--listen", "127.0.0.1:0")
    assert result.returncode == 2, result
    line = assert_one_error_line(result.stderr)
    assert f"{config}: limits.max_body: unknown key" in line
    assert "did you mean 'max_body_size'?" in line


def test_serve_without_anything_to_serve_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[limits]\nmax_body_size = 10\n")
    result = gateway_command("serve", str(config))
    assert result.returncode == 2, result
    assert "nothing to serve" in assert_one_error_line(result.stderr)


def test_an_unknown_log_level_is_a_usage_error() -> None:
    result = gateway_command("serve", "tests.support.apps:echo", "--log-level", "loud")
    assert result.returncode == 2, result
    text = " ".join(result.stderr.replace("│", " ").split())  # typer draws the usage error in a box
    assert "Invalid value for '--log-level': expected one of debug, info, warning, error, got 'loud'" in text
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("where", ["server", "vhost"])
def test_an_access_log_that_cannot_be_opened_is_one_line_naming_its_key(tmp_path: Path, where: str) -> None:
    """The folder exists (so `check` passes) but the file cannot be made: a traceback before."""
    config = tmp_path / "gateway.toml"
    table = "[server]\n" if where == "server" else ""
    vhost = '[[vhost]]\nnames = ["a.test"]\n' + ('access_log = "/proc/nope.log"\n' if where == "vhost" else "")
    route = '  [[vhost.route]]\n  handler = "redirect"\n  to = "https://a.test{path}"\n'
    config.write_text(table + ('access_log = "/proc/nope.log"\n' if table else "") + vhost + route)
    result = gateway_command("serve", str(config), "--listen", f"unix:{tmp_path / 'gw.sock'}")
    assert result.returncode == 3, result
    key = "server.access_log" if where == "server" else "vhost[0].access_log"
    assert f"{key} = '/proc/nope.log': cannot open it for writing" in result.stderr
    assert "Traceback" not in result.stderr


def test_port_already_in_use_is_exit_3_with_a_hint() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = gateway_command("serve", "tests.support.apps:echo", "--listen", f"127.0.0.1:{port}")
    assert result.returncode == 3, result
    line = assert_one_error_line(result.stderr)
    assert f"127.0.0.1:{port}" in line
    assert "another server" in line


def test_check_accepts_a_good_config_and_summarises_it(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(
        textwrap.dedent(
            """
            app = "tests.support.apps:echo"
            [server]
            listen = ["127.0.0.1:8088", "unix:/tmp/gw.sock"]
            [limits]
            max_body_size = "1MiB"
            header_timeout = "5s"
            request_timeout = "2m"
            max_connections = 50
            """
        )
    )
    result = gateway_command("check", str(config))
    assert result.returncode == 0, result
    assert result.stderr == ""
    out = result.stdout
    assert out.splitlines()[0] == f"{config}: OK"
    assert "127.0.0.1:8088, unix:/tmp/gw.sock" in out
    assert "tests.support.apps:echo" in out
    assert "1048576" in out and "5s" in out and "120s" in out and "50 connections" in out


@pytest.mark.parametrize("key", ["max_requests = 100", 'max_memory = "512MiB"'])
def test_check_says_a_single_process_does_not_recycle(tmp_path: Path, key: str) -> None:
    """gunicorn users expect max_requests to work with one worker: said, rather than silently not done."""
    config = tmp_path / "gateway.toml"
    config.write_text(f'app = "tests.support.apps:echo"\n[server]\n{key}\n')
    result = gateway_command("check", str(config))
    assert result.returncode == 0, result
    name = key.split(" ")[0]
    assert f"warning: {config}: server.{name} replaces workers under a supervisor; with workers = 1" in result.stderr
    config.write_text(f'app = "tests.support.apps:echo"\n[server]\nworkers = 2\n{key}\n')
    assert gateway_command("check", str(config)).stderr == ""


def test_check_reports_every_problem_and_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text('[server]\nlisen = ["127.0.0.1:8080"]\n[limits]\nheader_timeout = "soon"\n')
    result = gateway_command("check", str(config))
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0] == (
        f"error: {config}: server.lisen: unknown key (did you mean 'listen'?); known keys: "
        + ", ".join(
            [
                "listen",
                "workers",
                "runtime_dir",
                "pid_file",
                "max_requests",
                "max_requests_jitter",
                "max_memory",
                "access_log",
                "access_log_format",
                "shutdown_timeout",
                "loop",
                "server_header",
                "backlog",
                "trusted_proxies",
                "ws_max_message_size",
                "ws_ping_interval",
                "ws_ping_timeout",
                "ws_idle_timeout",
                "ws_per_message_deflate",
            ]
        )
    )
    assert lines[1].startswith(f"error: {config}: limits.header_timeout: expected seconds")


def test_check_on_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    result = gateway_command("check", str(tmp_path / "absent.toml"))
    assert result.returncode == 2, result
    assert "cannot read the file" in assert_one_error_line(result.stderr)


@pytest.mark.parametrize("args", [("version",), ("--version",), ("-V",)])
def test_version_prints_the_package_version(args: tuple[str, ...]) -> None:
    result = gateway_command(*args)
    assert result.returncode == 0, result
    assert result.stdout.startswith(f"gateway {gateway.__version__} (Python ")
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in result.stdout


@pytest.mark.parametrize("args", [("-h",), ("serve", "-h")])
def test_dash_h_is_help_as_dash_dash_help(args: tuple[str, ...]) -> None:
    short, long = gateway_command(*args), gateway_command(*args[:-1], "--help")
    assert (short.returncode, short.stdout) == (0, long.stdout)


@pytest.mark.parametrize("args", [("version",), ("--help",), ("serve", "--help"), ("check", "--help")])
def test_python_dash_m_gateway_is_the_gateway_command(args: tuple[str, ...]) -> None:
    assert GATEWAY_SCRIPT.exists(), "pip install did not make the gateway console script (pyproject's scripts)"
    script = subprocess.run(
        [str(GATEWAY_SCRIPT), *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=20, check=False
    )
    module = gateway_command(*args)
    assert (module.returncode, script.returncode) == (0, 0), (module, script)
    # Help names the program as it was invoked; apart from that the two say the same.
    assert _words(module.stdout.replace("python -m gateway", "gateway")) == _words(script.stdout)


def _words(text: str) -> list[str]:
    return [word.strip("─╭╮╰╯│") for word in text.split() if word.strip("─╭╮╰╯│")]


def test_serve_help_documents_the_listen_forms() -> None:
    result = gateway_command("serve", "--help")
    assert result.returncode == 0
    for form in ("--listen", "unix:/path", "fd:N"):
        assert form in result.stdout


def test_serve_from_a_config_file_naming_the_app() -> None:
    config = 'app = "tests.support.apps:echo"\n[server]\nserver_header = "test-gw"\n'
    with run_gateway(config_text=config) as gw:
        response = httpx.get(gw.url + "/from-config", timeout=5)
    assert response.status_code == 200
    assert response.json()["path"] == "/from-config"
    assert response.headers["server"] == "test-gw"


EMBED = """
import sys
import gateway
sys.exit(gateway.run("tests.support.apps:echo", listen=("fd:{fd}",)))
"""


def test_embedding_gateway_run_serves_requests(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    script = tmp_path / "embed.py"
    script.write_text(EMBED.format(fd=listener.fileno()))
    with open(tmp_path / "stderr.log", "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=ROOT,
            env=ENV,
            pass_fds=[listener.fileno()],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    listener.close()
    try:
        # The socket is listening already: the request waits in its backlog until the server accepts.
        with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
            sock.sendall(b"GET /embedded?x=1 HTTP/1.1\r\nHost: embed\r\n\r\n")
            status, _, body = read_one_response(sock, timeout=15)
        assert status == 200, body
        assert b'"path": "/embedded"' in body
        assert b'"query_string": "x=1"' in body
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise
    assert code == 0, (tmp_path / "stderr.log").read_text()


def test_relative_access_logs_are_the_config_folders_whatever_the_current_folder(tmp_path: Path) -> None:
    """logrotate runs `gateway reopen-logs` from /: a relative access_log must not depend on where a command runs."""
    (tmp_path / "logs").mkdir()
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[server]\naccess_log = "logs/access.log"\n'
        '[[vhost]]\nnames = ["a.test"]\naccess_log = "logs/vhost.log"\n'
        '  [[vhost.route]]\n  handler = "health"\n'
    )
    checked = gateway_command("check", str(config), cwd=Path("/"))
    assert checked.returncode == 0, checked.stderr
    with run_gateway(str(config)) as running:  # its own current folder is the project's
        assert httpx.get(f"{running.url}/", headers={"host": "a.test"}).status_code == 200
        reopened = gateway_command("reopen-logs", str(config), cwd=Path("/"))
        assert reopened.returncode == 0, reopened.stderr
        running.wait_for_log("reopened 2 access log file(s)")
    assert "GET / HTTP/1.1" in (tmp_path / "logs" / "vhost.log").read_text()


@pytest.mark.parametrize("second", ["other.toml", "tests.support.apps:echo"])
def test_serve_refuses_targets_it_would_drop(tmp_path: Path, second: str) -> None:
    """Two configs, or an app beside a config with vhosts: one of them used to be dropped without a word."""
    site = '[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  handler = "health"\n'
    for name in ("gateway.toml", "other.toml"):
        (tmp_path / name).write_text(site)
    second_target = str(tmp_path / second) if second.endswith(".toml") else second
    result = gateway_command("serve", str(tmp_path / "gateway.toml"), second_target, "--listen", "127.0.0.1:0")
    assert result.returncode == 2
    line = assert_one_error_line(result.stderr)
    assert ("one config file at a time" if second.endswith(".toml") else "name one or the other") in line


def test_serve_refuses_a_runtime_dir_it_cannot_use(tmp_path: Path) -> None:
    """Without its pid file and admin socket a gateway could not be stopped, reloaded or asked for its status."""
    (tmp_path / "a-file").write_text("not a folder\n")
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[server]\nruntime_dir = "a-file"\n[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  handler = "health"\n'
    )
    result = gateway_command("serve", str(config), "--listen", "127.0.0.1:0", timeout=20)
    assert result.returncode == 3, result
    assert "cannot create the folder" in result.stderr and "set server.runtime_dir" in result.stderr


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("http://bücher.example/", "vhost[0]"),  # the Host a browser sends: punycode
        ("shop.test/cart", "vhost[1]"),  # no scheme, as curl takes it
        ("http://user@shop.test:8080/cart", "vhost[1]"),  # user information is not part of Host
    ],
)
def test_explain_reads_a_url_as_a_client_would_send_it(tmp_path: Path, url: str, vhost: str) -> None:
    config = tmp_path / "gateway.toml"
    site = '[[vhost]]\nnames = ["{name}"]\n  [[vhost.route]]\n  handler = "health"\n'
    config.write_text(site.format(name="xn--bcher-kva.example") + site.format(name="shop.test"))
    result = gateway_command("explain", str(config), url)
    assert result.returncode == 0, result.stderr
    assert f"→ {vhost} " in result.stdout.splitlines()[0] and "exact name" in result.stdout, result.stdout


def test_check_reports_the_other_routes_problems_beside_a_bad_regex(tmp_path: Path) -> None:
    """All problems at once: a route path that does not compile used to hide every handler's problems."""
    config = tmp_path / "gateway.toml"
    config.write_text(
        '[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  path = "~^/(x"\n  handler = "health"\n'
        f'  [[vhost.route]]\n  path = "/s/"\n  handler = "static"\n  root = "{tmp_path / "missing"}"\n'
    )
    result = gateway_command("check", str(config))
    assert result.returncode == 2
    keys = [line.split(": ")[2] for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert keys == ["vhost[0].route[0].path", "vhost[0].route[1].root"], result.stderr


@pytest.mark.parametrize("name", ["site.conf", "SITE.TOML"])
def test_serve_takes_a_config_file_of_any_name(tmp_path: Path, name: str) -> None:
    """gateway check took gateway.conf; serve read it as module:attribute."""
    config = tmp_path / name
    config.write_text('[[vhost]]\nnames = ["a.test"]\n  [[vhost.route]]\n  handler = "health"\n')
    with run_gateway(str(config)) as running:
        assert httpx.get(f"{running.url}/", headers={"host": "a.test"}).status_code == 200
