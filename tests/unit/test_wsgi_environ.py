"""The WSGI environ, wsgi.input and wsgi.errors without sockets; the wsgi handler's options and loading."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from adapters._meta_variables import split_host
from adapters._wsgi_environ import ErrorStream, WsgiInput, base_environ, environ_for
from adapters.wsgi import WsgiHandler, WsgiOptions
from gateway.types import HandlerContext


def scope(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/app/x",
        "raw_path": b"/app/x",
        "query_string": b"",
        "root_path": "/app",
        "headers": [(b"host", b"example.com:8080")],
        "server": ("127.0.0.1", 8000),
        "client": ("10.0.0.7", 51000),
    }
    base.update(changes)
    return base


def environ(**changes: Any) -> dict[str, Any]:
    return environ_for(scope(**changes), base_environ(ErrorStream("test")))


def test_the_required_keys() -> None:
    seen = environ(method="POST", query_string=b"a=1&b=%20")
    assert seen["REQUEST_METHOD"] == "POST"
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"], seen["QUERY_STRING"]) == ("/app", "/x", "a=1&b=%20")
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"], seen["SERVER_PROTOCOL"]) == ("example.com", "8080", "HTTP/1.1")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("10.0.0.7", "51000")
    assert seen["wsgi.version"] == (1, 0)
    assert seen["wsgi.url_scheme"] == "http"
    assert (seen["wsgi.multithread"], seen["wsgi.multiprocess"], seen["wsgi.run_once"]) == (True, False, False)
    assert "REMOTE_USER" not in seen and "wsgi.input" not in seen


@pytest.mark.parametrize(
    ("raw_path", "root_path", "script_name", "path_info"),
    [
        (b"/app", "/app", "/app", ""),
        (b"/app/", "/app", "/app", "/"),
        (b"/x/y", "", "", "/x/y"),
        (b"/app/caf%C3%A9", "/app", "/app", "/caf\u00c3\u00a9"),  # the UTF-8 bytes, each as one latin-1 char
        (b"/app/a%2Fb%20c", "/app", "/app", "/a/b c"),
        (b"/app/%FF", "/app", "/app", "/\u00ff"),  # not UTF-8 at all: still the exact byte
        (b"/caf%C3%A9/x", "/caf\u00e9", "/caf\u00c3\u00a9", "/x"),  # a non-ASCII mount
    ],
)
def test_script_name_and_path_info(raw_path: bytes, root_path: str, script_name: str, path_info: str) -> None:
    seen = environ(raw_path=raw_path, root_path=root_path)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == (script_name, path_info)
    assert seen["PATH_INFO"].encode("latin-1") == path_info.encode("latin-1")


def test_path_without_raw_path() -> None:
    assert environ(raw_path=None, path="/app/caf\u00e9")["PATH_INFO"] == "/caf\u00c3\u00a9"


def test_headers() -> None:
    headers = [
        (b"host", b"example.com"),
        (b"content-type", b"text/plain"),
        (b"content-length", b"5"),
        (b"x-forwarded-for", b"1.1.1.1"),
        (b"x-forwarded-for", b"2.2.2.2"),
        (b"cookie", b"a=1"),
        (b"cookie", b"b=2"),
        (b"proxy", b"http://evil.example"),
        (b"x-auth_user", b"mallory"),
        (b"x-latin", "caf\u00e9".encode("latin-1")),
    ]
    seen = environ(headers=headers)
    assert (seen["CONTENT_TYPE"], seen["CONTENT_LENGTH"]) == ("text/plain", "5")
    assert "HTTP_CONTENT_TYPE" not in seen and "HTTP_CONTENT_LENGTH" not in seen
    assert seen["HTTP_X_FORWARDED_FOR"] == "1.1.1.1, 2.2.2.2"
    assert seen["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_PROXY" not in seen  # CVE-2016-5385
    assert not any(key.startswith("HTTP_X_AUTH") for key in seen)
    assert seen["HTTP_X_LATIN"] == "caf\u00e9"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("example.com", "80")


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("example.com", "http", ("example.com", "80")),
        ("example.com", "https", ("example.com", "443")),
        ("example.com:8443", "https", ("example.com", "8443")),
        ("[::1]:8080", "http", ("[::1]", "8080")),
        ("[::1]", "https", ("[::1]", "443")),
        ("[::1]:", "http", ("[::1]", "80")),
    ],
)
def test_split_host(host: str, scheme: str, expected: tuple[str, str]) -> None:
    assert split_host(host, scheme) == expected


def test_without_host_the_socket_names_the_server() -> None:
    seen = environ(headers=[], http_version="1.0", scheme="https")
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"], seen["wsgi.url_scheme"]) == ("127.0.0.1", "8000", "https")
    unix = environ(headers=[], server=("/run/gw.sock", None), client=None)
    assert (unix["SERVER_NAME"], unix["SERVER_PORT"]) == ("localhost", "80")
    assert "REMOTE_ADDR" not in unix


def test_remote_user_only_when_a_string() -> None:
    assert environ(user="ada")["REMOTE_USER"] == "ada"
    assert "REMOTE_USER" not in environ(user=object())


# wsgi.input ------------------------------------------------------------------------


def body(*messages: bytes) -> tuple[WsgiInput, list[int]]:
    """A WsgiInput over these messages, and a list counting the fetches made."""
    fetched: list[int] = []
    queue = list(messages)

    def fetch() -> tuple[bytes, bool]:
        fetched.append(1)
        chunk = queue.pop(0)
        return chunk, bool(queue)

    return WsgiInput(fetch), fetched


def test_read_fetches_only_what_it_needs() -> None:
    stream, fetched = body(b"abc", b"defg", b"hi")
    assert stream.read(2) == b"ab"
    assert len(fetched) == 1
    assert stream.read(3) == b"cde"
    assert len(fetched) == 2
    assert stream.read() == b"fghi"
    assert stream.read() == b"" and stream.read(5) == b""
    assert len(fetched) == 3


def test_read_sizes() -> None:
    stream, _ = body(b"", b"abc", b"", b"def")
    assert stream.read(0) == b""
    assert stream.read(None) == b"abcdef"
    stream, _ = body(b"abc")
    assert stream.read(10) == b"abc"


def test_readline_across_messages_and_limits() -> None:
    stream, _ = body(b"ab", b"c\nde", b"f\n", b"no newline")
    assert stream.readline() == b"abc\n"
    assert stream.readline(2) == b"de"
    assert stream.readline(5) == b"f\n"
    assert stream.readline() == b"no newline"
    assert stream.readline() == b""


def test_readlines_and_iteration() -> None:
    stream, _ = body(b"one\ntw", b"o\nthree")
    assert stream.readlines() == [b"one\n", b"two\n", b"three"]
    stream, _ = body(b"one\ntwo\nthree\n")
    assert stream.readlines(5) == [b"one\n", b"two\n"]
    assert list(stream) == [b"three\n"]


def test_a_large_message_is_not_copied_per_read() -> None:
    block = bytes(range(256)) * 4096  # 1 MiB in one message
    stream, _ = body(block)
    pieces = iter(lambda: stream.read(65536), b"")
    assert b"".join(pieces) == block


def test_no_body() -> None:
    stream = WsgiInput(None)
    assert (stream.read(), stream.readline(), stream.readlines(), list(stream)) == (b"", b"", [], [])


# wsgi.errors -----------------------------------------------------------------------


def test_errors_log_whole_lines(caplog: pytest.LogCaptureFixture) -> None:
    stream = ErrorStream("vhost[0] route[1] '/app'")
    with caplog.at_level(logging.ERROR, logger="gateway.adapters.wsgi"):
        stream.write("first\nsecond ")
        stream.writelines(["half", " line\n"])
        stream.write("tail")
        assert [r.getMessage() for r in caplog.records] == [
            "vhost[0] route[1] '/app': first",
            "vhost[0] route[1] '/app': second half line",
        ]
        stream.flush()
    assert caplog.records[-1].getMessage() == "vhost[0] route[1] '/app': tail"


# Options and loading ------------------------------------------------------------------


def handler(app: str, **options: Any) -> WsgiHandler:
    context = HandlerContext(Path(__file__).parent, "vhost[0] route[0] '/'", "")
    return WsgiHandler(WsgiOptions(app=app, **options), context)


def test_loads_a_wsgi_app() -> None:
    assert handler("tests.e2e.wsgi_apps.apps:environ_app").problems() == []


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("", "missing; name the application"),
        ("no_colon", "expected 'module:attribute'"),
        ("tests.e2e.wsgi_apps.nothere:app", "no module named 'tests.e2e.wsgi_apps.nothere'"),
        ("tests.e2e.wsgi_apps.apps:missing", "has no attribute 'missing'"),
        ("tests.e2e.wsgi_apps.apps:STATS", "is a dict, not a WSGI application"),
        ("tests.support.apps:echo", 'an ASGI app: serve it with handler = "asgi"'),
    ],
)
def test_problems_say_what_is_wrong(app: str, message: str) -> None:
    found = handler(app).problems()
    assert len(found) == 1 and found[0][0] == "app" and message in found[0][1], found


def test_threads_must_be_positive() -> None:
    key, text = handler("tests.e2e.wsgi_apps.apps:environ_app", threads=0).problems()[0]
    assert key == "threads" and "at least 1" in text


def test_a_load_error_names_the_route() -> None:
    with pytest.raises(Exception, match=r"^vhost\[0\] route\[0\] '/': 'x:y': no module named 'x'"):
        handler("x:y").load()


@pytest.mark.parametrize(
    ("raw_path", "path_info"),
    [
        (b"//app/x", "/x"),
        (b"/app/../app/x", "/x"),
        (b"/app/./x", "/x"),
        (b"/app//x/", "/x/"),
        (b"/app/%2e%2e/app/x", "/x"),
        (b"/app/caf%C3%A9", "/caf\xc3\xa9"),  # still the client's bytes, as latin-1
    ],
)
def test_path_info_is_the_path_the_route_was_chosen_by(raw_path: bytes, path_info: str) -> None:
    """It was the raw path decoded: /admin/../x, routed as /x past the /admin route's deny, reached the admin view."""
    seen = environ(raw_path=raw_path)
    assert (seen["SCRIPT_NAME"], seen["PATH_INFO"]) == ("/app", path_info)
