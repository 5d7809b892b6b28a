"""The cgi handler without sockets: its config problems, the environment it builds, its queue, its logs."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from adapters import cgi
from adapters._cgi_exchange import read_stderr
from adapters._cgi_process import ProcessGroup
from adapters._cgi_redirect import HOPS, MAX_REDIRECTS, RedirectError, redirect_receive, redirect_scope
from adapters._cgi_scripts import Script
from adapters._stderr_log import LINE_MAX as STDERR_LINE_MAX
from adapters._stderr_log import LINES_MAX as STDERR_LINES_MAX
from adapters._stderr_log import StderrLog
from adapters.cgi import CgiApp, CgiHandler, CgiOptions, Overloaded, Slots
from gateway.config.loader import load
from gateway.routing.router import build_router
from gateway.types import HandlerContext, Message


def handler(tmp_path: Path, **options: Any) -> CgiHandler:
    options.setdefault("root", "cgi-bin")
    (tmp_path / "cgi-bin").mkdir(exist_ok=True)
    return CgiHandler(CgiOptions(**options), HandlerContext(tmp_path, "route", "/cgi-bin"))


def keys(found: list[tuple[str, str]]) -> list[str]:
    return [key for key, _ in found]


# Config problems ----------------------------------------------------------------------


def test_a_good_route_has_no_problems(tmp_path: Path) -> None:
    interpreters = {".py": sys.executable, ".sh": "sh -e"}
    assert handler(tmp_path, interpreters=interpreters, env={"LANG": "C.UTF-8"}).problems() == []


def test_problems_name_their_key(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert handler(tmp_path, root="").problems()[0][0] == "root"
    assert "does not exist" in handler(tmp_path, root="nowhere").problems()[0][1]
    assert "is not a directory" in handler(tmp_path, root="file").problems()[0][1]
    found = handler(
        tmp_path,
        index=("../x.cgi", ".hidden"),
        interpreters={"pl": "perl", ".zz": "no-such-interpreter-here", ".sh": '"unclosed'},
        env={"A=B": "x", "OK": "a\0b"},
        timeout=0,
        max_processes=0,
        queue=-1,
    ).problems()
    assert keys(found) == [
        "index",
        "index",
        "interpreters.pl",
        'interpreters.".zz"',
        'interpreters.".sh"',
        "env.A=B",
        "env",
        "timeout",
        "max_processes",
        "queue",
    ]
    assert "'no-such-interpreter-here' not found" in dict(found)['interpreters.".zz"']


def test_user_needs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert handler(tmp_path, user="nobody").problems() == [
        ("user", "switching to 'nobody' needs the gateway to run as root (it runs as uid 1000)")
    ]
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert handler(tmp_path, user="no-such-user-xyz").problems() == [
        ("user", "no user 'no-such-user-xyz' on this system")
    ]


def test_config_keys_reach_the_handler(tmp_path: Path) -> None:
    (tmp_path / "cgi-bin").mkdir()
    config_file = tmp_path / "gateway.toml"
    config_file.write_text(
        """
[[vhost]]
names = ["cgi.test"]
  [[vhost.route]]
  path = "/cgi-bin/"
  handler = "cgi"
  root = "cgi-bin"
  interpreters = { ".pl" = "no-such-perl-here" }
  env = { "A" = "1" }
  timeout = "2m"
  queue_timeout = "500ms"
  max_processes = 0
"""
    )
    config = load(config_file)
    _, problems = build_router(config)
    assert [(key, message) for _, key, message in problems] == [
        ('vhost[0].route[0].interpreters.".pl"', "'no-such-perl-here' not found (a program on PATH or a path to one)"),
        ("vhost[0].route[0].max_processes", "must be at least 1"),
    ]
    options = config.vhosts[0].routes[0].options
    assert (options.timeout, options.queue_timeout, options.env) == (120.0, 0.5, {"A": "1"})


def test_interpreter_lookup() -> None:
    sh = shutil.which("sh")
    assert sh is not None
    assert cgi._interpreter("sh -e") == (os.fsencode(sh), b"-e")
    assert cgi._interpreter(sys.executable) == (os.fsencode(sys.executable),)
    assert cgi._interpreter("/nonexistent/perl") is None
    assert cgi._interpreter("/tmp") is None
    assert cgi._interpreter("") is None


# The environment ----------------------------------------------------------------------


def scope(**extra: Any) -> dict[str, Any]:
    base = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/cgi-bin/x.cgi/info",
        "raw_path": b"/cgi-bin/x.cgi/info",
        "query_string": b"a=1",
        "root_path": "",
        "headers": [(b"host", b"example.com"), (b"proxy", b"http://evil"), (b"transfer-encoding", b"chunked")],
        "client": ("10.0.0.1", 5000),
        "server": ("10.0.0.2", 80),
    }
    return base | extra


def test_environment_is_clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_SECRET", "do-not-leak")
    route = handler(tmp_path, env={"LANG": "C.UTF-8", "PATH": "/opt/bin:/usr/bin"})
    app = route.app()
    assert isinstance(app, CgiApp)
    script = Script("/cgi-bin/x.cgi", os.fsencode(tmp_path / "cgi-bin" / "x.cgi"), "/info", None)
    env = app.environment(script, scope(scheme="https", user="alice", auth_type="Basic"), 42)
    assert env[b"PATH"] == b"/opt/bin:/usr/bin"  # the route's env may set PATH
    assert env[b"LANG"] == b"C.UTF-8"
    assert env[b"CONTENT_LENGTH"] == b"42"  # a chunked body's length, counted while spooling
    assert (env[b"AUTH_TYPE"], env[b"REMOTE_USER"], env[b"HTTPS"]) == (b"Basic", b"alice", b"on")
    assert env[b"SCRIPT_NAME"] == b"/cgi-bin/x.cgi" and env[b"PATH_INFO"] == b"/info"
    assert b"HTTP_PROXY" not in env and b"GATEWAY_SECRET" not in env
    assert all(value.decode("latin-1") != "do-not-leak" for value in env.values())


def test_default_path(tmp_path: Path) -> None:
    app = handler(tmp_path).app()
    assert isinstance(app, CgiApp)
    script = Script("/cgi-bin/x.cgi", b"/x.cgi", "", None)
    env = app.environment(script, scope(method="GET", headers=[]), 0)
    assert env[b"PATH"] == b"/usr/local/bin:/usr/bin:/bin"
    assert b"CONTENT_LENGTH" not in env


# The process slots --------------------------------------------------------------------


def test_slots_queue_then_refuse() -> None:
    async def main() -> list[str]:
        slots = Slots(1, 1, 5.0)
        events: list[str] = []
        release = asyncio.Event()

        async def hold(name: str) -> None:
            try:
                async with slots.slot():
                    events.append(f"{name} runs")
                    await release.wait()
            except Overloaded as exc:
                events.append(f"{name} refused: {exc}")

        first = asyncio.ensure_future(hold("first"))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(hold("second"))  # waits in the queue
        await asyncio.sleep(0)
        await hold("third")  # the queue (1) is full
        release.set()
        await asyncio.gather(first, second)
        return events

    assert asyncio.run(main()) == [
        "first runs",
        "third refused: 1 requests already wait for a process",
        "second runs",
    ]


def test_slots_queue_timeout() -> None:
    async def main() -> str:
        slots = Slots(1, 5, 0.05)
        async with slots.slot():
            try:
                async with slots.slot():
                    return "ran"
            except Overloaded as exc:
                assert slots.waiting == 0
                return str(exc)

    assert asyncio.run(main()) == "no process free within queue_timeout (0.05 s)"


# stderr to the log --------------------------------------------------------------------


def test_stderr_lines_are_bounded_and_escaped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.adapters.cgi")
    log = StderrLog("/srv/x.cgi", logging.getLogger("gateway.adapters.cgi"))
    log.feed(b"first\nsec")
    log.feed(b"ond\r\n\x1b[31mred\x1b[0m\tok\n")
    log.feed(b"y" * (STDERR_LINE_MAX * 3))
    log.feed(b"y\n")
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "/srv/x.cgi: first",
        "/srv/x.cgi: second",
        "/srv/x.cgi: \\x1b[31mred\\x1b[0m\tok",
        "/srv/x.cgi: " + "y" * STDERR_LINE_MAX + " [cut]",
    ]


def test_stderr_flood_is_cut_at_a_number_of_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gateway.adapters.cgi")

    async def main() -> None:
        stream = asyncio.StreamReader()
        stream.feed_data(b"line\n" * (STDERR_LINES_MAX * 10) + b"tail without newline")
        stream.feed_eof()
        await read_stderr(StderrLog("x.cgi", logging.getLogger("gateway.adapters.cgi")), stream)

    asyncio.run(main())
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == STDERR_LINES_MAX + 1
    assert messages[-1] == f"x.cgi: more than {STDERR_LINES_MAX} lines on stderr; the rest is dropped"


# Local redirects ----------------------------------------------------------------------


def test_redirect_scope_is_a_get_of_the_new_path() -> None:
    original = scope(**{"gateway.route_match": object(), "state": {"a": 1}})
    original["headers"] = [(b"host", b"h"), (b"content-length", b"3"), (b"content-type", b"x"), (b"cookie", b"c=1")]
    target = redirect_scope(original, b"/docs/a%20b/../c?x=1#frag")
    assert (target["method"], target["path"], target["raw_path"]) == ("GET", "/docs/c", b"/docs/a%20b/../c")
    assert target["query_string"] == b"x=1"
    assert target["headers"] == [(b"host", b"h"), (b"cookie", b"c=1")]
    assert "gateway.route_match" not in target and "state" not in target
    assert target[HOPS] == 1 and HOPS not in original
    assert redirect_scope(target, b"/y")[HOPS] == 2


def test_redirect_limits() -> None:
    hopped = scope(**{HOPS: MAX_REDIRECTS})
    with pytest.raises(RedirectError, match="more than 5 local redirects"):
        redirect_scope(hopped, b"/again")
    with pytest.raises(RedirectError, match="climbs above the root"):
        redirect_scope(scope(), b"/../etc/passwd")


def test_redirect_receive_gives_an_empty_body_then_waits_for_the_disconnect() -> None:
    async def main() -> list[Message]:
        messages: list[Message] = [{"type": "http.request", "body": b"late", "more_body": False}]
        messages.append({"type": "http.disconnect"})

        async def receive() -> Message:
            return messages.pop(0)

        inner = redirect_receive(receive)
        return [await inner(), await inner()]

    assert asyncio.run(main()) == [
        {"type": "http.request", "body": b"", "more_body": False},
        {"type": "http.disconnect"},
    ]


# Starting programs --------------------------------------------------------------------


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "no pidfd"])
def test_a_programs_exit_is_seen_and_its_streams_read(monkeypatch: pytest.MonkeyPatch, pidfd: bool) -> None:
    """Where the kernel has no pidfd_open a thread waits for the exit instead."""
    if not pidfd:

        def no_pidfd(pid: int) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd)

    async def go() -> tuple[bytes, bytes, int | None, set[object]]:
        live: set[ProcessGroup] = set()
        group = ProcessGroup(live)
        script = b"import sys; sys.stdout.write(sys.stdin.read().upper()); sys.stderr.write('done'); sys.exit(3)"
        program = await group.spawn([os.fsencode(sys.executable), b"-c", script], {}, b"/", stdin=True)
        assert live == {group}
        assert program.stdin is not None
        program.stdin.write(b"hello")
        program.stdin.close()
        out, err = await program.stdout.read(), await program.stderr.read()
        await asyncio.wait_for(group.exited, 5)
        return out, err, program.returncode, set(live)

    assert asyncio.run(go()) == (b"HELLO", b"done", 3, set())
