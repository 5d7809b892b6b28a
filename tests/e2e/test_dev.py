"""`gateway dev`: the real supervisor and serving child over loopback, with files edited under them.

Each test writes a small site in a temp folder (an ASGI app, a static folder,
a .venv), binds 127.0.0.1:0 itself and passes it as --listen fd:N, as
tests/support/server.py does, then edits files and watches what the console
says and what clients get.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.dev.banner import banner_lines, shown_name
from gateway.dev.console import Paint, wants_colour
from gateway.dev.plan import build_plan
from tests.support.server import ROOT, read_response

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(30)]

READY = " ready "
APP = """\
import asyncio
import os

VERSION = {version!r}


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(30)
    if scope["path"] == "/crash":
        os._exit(7)
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}})
    await send({{"type": "http.response.body", "body": VERSION.encode()}})
"""
CONFIG = """\
[[vhost]]
names = ["hello.localhost", "*.hello.localhost"]
  [[vhost.route]]
  path = "/static/"
  handler = "{static}"
  root = "site/static"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "hello:app"
  pythonpath = ["site"]

[[vhost]]
names = ["*.example.com"]
default = true
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "hello:app"
  pythonpath = ["site"]
"""


@dataclass
class Dev:
    """A running `gateway dev` and the folder it serves."""

    proc: subprocess.Popen[bytes]
    folder: Path
    port: int

    def stderr(self) -> str:
        return (self.folder / "stderr.log").read_text(errors="replace")

    def stdout(self) -> str:
        return (self.folder / "stdout.log").read_text(errors="replace")

    def wait_for(self, text: str, timeout: float = 8.0, after: int = 0) -> float:
        """Seconds until text appears in stderr (past offset `after`)."""
        started = time.monotonic()
        while text not in self.stderr()[after:]:
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway dev exited with {self.proc.returncode}:\n{self.stderr()}")
            if time.monotonic() - started > timeout:
                raise AssertionError(f"{text!r} not on the console after {timeout}s:\n{self.stderr()}")
            time.sleep(0.02)
        return time.monotonic() - started

    def get(self, path: str = "/", host: str = "hello.localhost", timeout: float = 10.0) -> tuple[int, str]:
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            raw = read_response(sock, timeout)
        head, _, body = raw.partition(b"\r\n\r\n")
        if not head:
            raise ConnectionError("empty reply")
        return int(head.split()[1]), body.decode()

    def edit(self, name: str, text: str) -> int:
        """Write a file under the folder; returns the console's length before, for wait_for(after=)."""
        mark = len(self.stderr())
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return mark

    def settled(self, timeout: float = 8.0) -> set[int]:
        """The supervisor's children once the standby has started too: the serving one and the next."""
        deadline = time.monotonic() + timeout
        while len(pids := children(self.proc.pid)) != 2:
            assert time.monotonic() < deadline, f"children {pids}, expected a serving one and a standby"
            time.sleep(0.02)
        return set(pids)


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def gone(pid: int, timeout: float = 5.0) -> bool:
    """The process has exited (a zombie waiting for init to reap it counts as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        if state == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def make_site(folder: Path, static_handler: str = "static") -> Path:
    (folder / "site" / "static").mkdir(parents=True)
    (folder / "site" / "hello.py").write_text(APP.format(version="v1"))
    (folder / "site" / "static" / "page.txt").write_text("static\n")
    (folder / "site" / ".venv" / "lib").mkdir(parents=True)
    (folder / "site" / "__pycache__").mkdir()
    config = folder / "gateway.toml"
    config.write_text(CONFIG.format(static=static_handler))
    return config


@contextlib.contextmanager
def gateway_dev(
    folder: Path, args: tuple[str, ...] = (), env: dict[str, str] | None = None, stop: int = signal.SIGTERM
) -> Iterator[Dev]:
    """Start `python -m gateway dev gateway.toml` in folder; stop it with `stop` and check exit 0, no child left."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    command = [sys.executable, "-m", "gateway", "dev", "gateway.toml", "--listen", f"fd:{listener.fileno()}", *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    for name in ("NO_COLOR", "FORCE_COLOR"):
        if name not in (env or {}):
            full_env.pop(name, None)
    with open(folder / "stdout.log", "wb") as out, open(folder / "stderr.log", "wb") as err:
        proc = subprocess.Popen(command, cwd=folder, pass_fds=[listener.fileno()], stdout=out, stderr=err, env=full_env)
    listener.close()
    dev = Dev(proc, folder, port)
    try:
        dev.wait_for(READY, timeout=15)
        yield dev
    finally:
        pids = children(proc.pid)
        if proc.poll() is None:
            proc.send_signal(stop)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.returncode == 0, f"exit {proc.returncode}:\n{dev.stderr()}"
        assert all(gone(pid) for pid in pids), f"serving child {pids} outlived the supervisor"


def request_ignoring_errors(dev: Dev, path: str) -> None:
    with contextlib.suppress(OSError):
        dev.get(path)


class Hammer:
    """Requests in a loop on a thread, each on a new connection, recording every failure."""

    def __init__(self, dev: Dev) -> None:
        self.dev = dev
        self.bodies: list[str] = []
        self.failures: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while self.running:
            try:
                status, body = self.dev.get()
            except OSError as exc:
                self.failures.append(repr(exc))
                continue
            if status != 200:
                self.failures.append(f"{status}: {body[:200]}")
            self.bodies.append(body)

    def __enter__(self) -> Hammer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join(15)


def test_the_banner_lists_every_vhost_then_an_edit_restarts_and_no_request_fails(tmp_path: Path) -> None:
    make_site(tmp_path)
    with gateway_dev(tmp_path) as dev:
        console = dev.stderr()
        assert f"http://hello.localhost:{dev.port}/  also *.hello.localhost" in console, console
        assert f"http://www.example.com:{dev.port}/  default · also *.example.com" in console, console
        assert f"listening on http://127.0.0.1:{dev.port}" in console
        assert "curl -H 'Host: www.example.com'" in console  # a name outside .localhost needs help to reach
        assert not (tmp_path / ".gateway" / "gateway.pid").exists(), "the pid file is `gateway serve`'s"
        assert dev.get() == (200, "v1")
        with Hammer(dev) as hammer:
            time.sleep(0.3)
            started = time.monotonic()
            mark = dev.edit("site/hello.py", APP.format(version="v2"))
            while not hammer.bodies or hammer.bodies[-1] != "v2":
                assert time.monotonic() - started < 5, f"still {hammer.bodies[-1:]} after 5 s:\n{dev.stderr()}"
                time.sleep(0.01)
            took = time.monotonic() - started
            time.sleep(0.3)
        console = dev.stderr()[mark:]
        assert "reload  site/hello.py changed" in console, console
        assert "serving again" in console
        assert hammer.failures == [], hammer.failures[:5]
        assert len(hammer.bodies) >= 20 and set(hammer.bodies) == {"v1", "v2"}
        assert took < 3.0, f"the new version took {took:.2f} s"
        print(f"\nreload: new version served {took:.2f} s after the save; {len(hammer.bodies)} requests, 0 failed")
        deadline = time.monotonic() + 3  # a line is written just after its response is sent
        while (lines := dev.stdout().count(" GET ")) < len(hammer.bodies) + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lines == len(hammer.bodies) + 1, "one access line per request"
        assert "\x1b[" not in dev.stdout() + dev.stderr(), "no colour when the console is not a terminal"


def test_a_serving_process_that_crashes_is_started_again(tmp_path: Path) -> None:
    """Not left for the next save: requests would queue on listeners nobody accepts on."""
    make_site(tmp_path)
    with gateway_dev(tmp_path) as dev:
        assert dev.get() == (200, "v1")
        mark = len(dev.stderr())
        request_ignoring_errors(dev, "/crash")
        dev.wait_for("the serving process exited with code 7; starting it again", after=mark)
        dev.wait_for("serving again", after=mark)
        assert dev.get(timeout=5) == (200, "v1")


def test_import_errors_show_their_traceback_and_a_503_until_fixed_then_sigint_stops(tmp_path: Path) -> None:
    make_site(tmp_path)
    with gateway_dev(tmp_path, stop=signal.SIGINT) as dev:
        mark = dev.edit("site/hello.py", APP.format(version="v2") + "\nbroken = (\n")
        dev.wait_for("fix it and save", after=mark)
        console = dev.stderr()[mark:]
        assert 'File "' in console and "hello.py" in console and "SyntaxError" in console, console
        assert "<frozen importlib" not in console
        assert console.count("SyntaxError") == 1, "two routes import the same module: one traceback"
        status, body = dev.get()  # the listener still accepts; the answer says what is wrong
        assert status == 503 and "SyntaxError" in body and "hello.py" in body, body
        (tmp_path / "site" / "helper.py").write_text("def boom():\n    raise RuntimeError('no database')\n")
        mark = dev.edit("site/hello.py", "import helper\nhelper.boom()\n" + APP.format(version="v2"))
        dev.wait_for("fix it and save", after=mark)
        console = dev.stderr()[mark:]
        assert "Traceback (most recent call last):" in console
        assert "hello.py" in console and "helper.py" in console and "RuntimeError: no database" in console
        assert "importlib" not in console and "gateway/dev" not in console, console
        mark = dev.edit("site/hello.py", APP.format(version="v3"))
        dev.wait_for("serving again", after=mark)
        assert dev.get() == (200, "v3")
    assert "stopped" in dev.stderr()  # the fixture checked exit 0 and that no child is left


def test_an_invalid_config_shows_each_problem_and_a_fix_resumes(tmp_path: Path) -> None:
    config = make_site(tmp_path)
    with gateway_dev(tmp_path) as dev:
        good = config.read_text()
        mark = dev.edit("gateway.toml", good.replace('handler = "static"', 'handler = "statik"'))
        dev.wait_for("fix it and save", after=mark)
        console = dev.stderr()[mark:]
        assert "reload  gateway.toml changed" in console
        assert "gateway.toml: vhost[0].route[0].handler: unknown handler 'statik' (did you mean 'static'?)" in console
        assert "Traceback" not in console
        assert dev.get()[0] == 503
        mark = dev.edit("gateway.toml", good)
        dev.wait_for(READY, after=mark)
        assert dev.get() == (200, "v1")
        assert f"http://hello.localhost:{dev.port}/" in dev.stderr()[mark:], "a config change shows the banner again"


def test_an_include_and_a_new_file_its_glob_match_restart_and_a_second_ctrl_c_stops_at_once(tmp_path: Path) -> None:
    config = make_site(tmp_path)
    main, _, second = config.read_text().partition('[[vhost]]\nnames = ["*.example.com"]')
    config.write_text('include = ["sites/*.toml"]\n' + main)
    (tmp_path / "sites").mkdir()
    (tmp_path / "sites" / "a.toml").write_text('[[vhost]]\nnames = ["*.example.com"]' + second)
    with gateway_dev(tmp_path) as dev:
        assert dev.get(host="www.example.com") == (200, "v1")
        mark = dev.edit("sites/a.toml", '[[vhost]]\nnames = ["*.example.com"]' + second.replace("asgi", "asgj"))
        dev.wait_for("fix it and save", after=mark)
        assert "reload  sites/a.toml changed" in dev.stderr()[mark:]
        mark = dev.edit("sites/a.toml", '[[vhost]]\nnames = ["*.example.com"]' + second)
        dev.wait_for(READY, after=mark)
        another = second.replace("default = true\n", "")  # one default vhost at most
        mark = dev.edit("sites/b.toml", '[[vhost]]\nnames = ["b.localhost"]' + another)
        dev.wait_for(READY, after=mark)
        assert "reload  sites/b.toml changed" in dev.stderr()[mark:]
        assert f"http://b.localhost:{dev.port}/" in dev.stderr()[mark:]
        assert dev.get(host="b.localhost") == (200, "v1")
        threading.Thread(target=request_ignoring_errors, args=(dev, "/slow"), daemon=True).start()
        time.sleep(0.3)
        dev.proc.send_signal(signal.SIGINT)  # the first waits for the slow request (up to 5 s)...
        time.sleep(0.5)
        assert dev.proc.poll() is None, "a first Ctrl-C lets in-flight requests finish"
        started = time.monotonic()
        dev.proc.send_signal(signal.SIGINT)  # ...a second does not
        dev.proc.wait(5)
        assert time.monotonic() - started < 2.0


def test_venv_pycache_static_and_non_python_changes_do_not_restart(tmp_path: Path) -> None:
    make_site(tmp_path)
    (tmp_path / "templates").mkdir()
    args = ("--watch", "templates", "--ignore", "generated_*.py")
    with gateway_dev(tmp_path, args) as dev:
        before = dev.settled()
        mark = dev.edit("site/.venv/lib/module.py", "x = 1\n")
        dev.edit("site/__pycache__/hello.py", "x = 1\n")
        dev.edit("site/static/page.txt", "changed\n")
        dev.edit("site/static/script.py", "x = 1\n")  # under a static root: a file to serve, not code
        dev.edit("site/notes.txt", "not python\n")
        dev.edit("site/generated_models.py", "x = 1\n")  # --ignore
        time.sleep(1.5)
        assert "reload" not in dev.stderr()[mark:], dev.stderr()[mark:]
        assert dev.settled() == before
        status, body = dev.get("/static/page.txt")
        assert (status, body) == (200, "changed\n"), "static files are read on each request"
        mark = dev.edit("templates/page.html", "<p>hi</p>")  # --watch: any file there restarts
        dev.wait_for("serving again", after=mark)
        assert "reload  templates/page.html changed" in dev.stderr()[mark:]
        assert dev.settled() != before
        mark = dev.edit("site/pkg/models.py", "x = 1\n")  # a new package folder is walked and watched
        dev.wait_for("serving again", after=mark)
        mark = dev.edit("site/pkg/views.py", "x = 2\n")
        dev.wait_for("reload  site/pkg/views.py changed", after=mark)


def test_a_killed_supervisor_leaves_no_child(tmp_path: Path) -> None:
    make_site(tmp_path)
    with gateway_dev(tmp_path) as dev:
        pids = dev.settled()
        dev.proc.kill()
        dev.proc.wait()
        assert all(gone(pid) for pid in pids), "the children must stop when their supervisor dies"
        dev.proc.returncode = 0  # killed on purpose: the fixture checks the rest


def test_colour_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    make_site(tmp_path)
    for env, coloured in (({}, True), ({"NO_COLOR": "1"}, False)):
        (tmp_path / "gateway.toml").touch()
        primary, secondary = pty.openpty()
        listener = socket.create_server(("127.0.0.1", 0))
        command = [sys.executable, "-m", "gateway", "dev", "gateway.toml", "--listen", f"fd:{listener.fileno()}"]
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        full_env.pop("FORCE_COLOR", None)
        if not env:
            full_env.pop("NO_COLOR", None)
        proc = subprocess.Popen(
            command, cwd=tmp_path, pass_fds=[listener.fileno()], stdout=secondary, stderr=secondary, env=full_env
        )
        os.close(secondary)
        listener.close()
        seen = b""
        try:
            deadline = time.monotonic() + 15
            while b"ready" not in seen and time.monotonic() < deadline:
                if select.select([primary], [], [], 0.1)[0]:
                    seen += os.read(primary, 65536)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
            os.close(primary)
        assert b"ready" in seen, seen
        assert (b"\x1b[" in seen) is coloured, (env, seen)
        assert proc.returncode == 0


def test_no_color_and_force_color_decide_before_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert wants_colour(Terminal()) and not wants_colour(object())
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert wants_colour(object())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_colour(Terminal())


def test_banner_names_and_the_watch_plan(tmp_path: Path) -> None:
    from gateway.config.loader import load

    assert shown_name(("*.example.com",)) == "www.example.com"
    assert shown_name(("*.a.localhost", "a.localhost")) == "a.localhost"
    config_path = make_site(tmp_path)
    (tmp_path / "site" / "node_modules" / "x").mkdir(parents=True)
    config = load(config_path)
    plan = build_plan(config_path, config)
    site = (tmp_path / "site").resolve()
    assert site in plan.python_dirs
    assert not {site / "static", site / ".venv", site / "__pycache__", site / "node_modules"} & plan.python_dirs
    with socket.create_server(("127.0.0.1", 0)) as sock:
        lines = banner_lines(config, [sock], Paint(False))
        tls_lines = banner_lines(config, [sock], Paint(False), frozenset({sock}))
        port = sock.getsockname()[1]
    assert lines[0] == f"  http://hello.localhost:{port}/  also *.hello.localhost"
    assert tls_lines[0] == f"  https://hello.localhost:{port}/  also *.hello.localhost", "a TLS listener's URL"


POOLED_CONFIG = """\
[[vhost]]
names = ["hello.localhost"]
  [[vhost.route]]
  path = "/pooled"
  handler = "asgi"
  app = "pooled:app"
  pythonpath = ["pooled_site"]
  isolation = "process"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "hello:app"
  pythonpath = ["site"]
"""


def test_a_change_to_an_isolated_app_restarts_only_its_pool(tmp_path: Path) -> None:
    make_site(tmp_path)
    (tmp_path / "pooled_site").mkdir()
    (tmp_path / "pooled_site" / "pooled.py").write_text(APP.format(version="pool v1"))
    (tmp_path / "gateway.toml").write_text(POOLED_CONFIG)
    with gateway_dev(tmp_path) as dev:
        serving = dev.settled()
        assert dev.get("/pooled") == (200, "pool v1")
        mark = dev.edit("pooled_site/pooled.py", APP.format(version="pool v2"))
        dev.wait_for("pooled.py changed: restarting pool vhost[0].route[0]", after=mark)
        deadline = time.monotonic() + 10
        while dev.get("/pooled") != (200, "pool v2"):
            assert time.monotonic() < deadline, "the pool serves the new code"
            time.sleep(0.05)
        assert dev.settled() == serving, "the serving process (and its standby) were not restarted"
        assert dev.get("/") == (200, "v1")
