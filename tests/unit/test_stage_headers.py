"""The headers stage in-process: set, add, remove and security_headers on a recorded response head."""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.stages import headers
from gateway.types import ASGIApp, HandlerContext, Message

CONTEXT = HandlerContext(Path("."), "test route", "")
APP_HEADERS = [
    (b"content-type", b"text/html"),
    (b"X-Powered-By", b"PHP/8.2"),
    (b"x-frame-options", b"ALLOWALL"),
    (b"Link", b"</a.css>; rel=preload"),
]


def drive(awaitable: Awaitable[None]) -> None:
    """Run a stage to completion without an event loop: nothing in these tests truly waits."""
    coroutine = cast(Coroutine[Any, Any, None], awaitable)
    with pytest.raises(StopIteration):
        coroutine.send(None)


def parse(values: dict[str, Any]) -> tuple[headers.Options | None, list[tuple[str, str]]]:
    problems: list[tuple[str, str]] = []
    return headers.parse(values, CONTEXT, lambda key, message: problems.append((key, message))), problems


def app_sending(head: Sequence[tuple[bytes, bytes]] = APP_HEADERS, status: int = 200) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(head)})
        await send({"type": "http.response.body", "body": b"hello"})

    return app


def call(values: dict[str, Any], app: ASGIApp | None = None) -> list[Message]:
    options, problems = parse(values)
    assert options is not None and not problems, problems
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    drive(headers.wrap(options, app or app_sending())({"type": "http", "method": "GET", "headers": []}, receive, send))
    return sent


def fields(sent: list[Message]) -> list[tuple[bytes, bytes]]:
    return [(bytes(name), bytes(value)) for name, value in sent[0]["headers"]]


# editing ----------------------------------------------------------------------------------------


def test_set_replaces_whatever_the_case() -> None:
    sent = call({"headers": {"set": {"X-Frame-Options": "DENY"}}})
    assert [f for f in fields(sent) if f[0].lower() == b"x-frame-options"] == [(b"X-Frame-Options", b"DENY")]


def test_add_appends_beside_the_apps_fields() -> None:
    sent = call({"headers": {"add": {"Link": "</b.js>; rel=preload", "X-Served-By": "gateway"}}})
    assert (b"Link", b"</a.css>; rel=preload") in fields(sent)
    assert (b"Link", b"</b.js>; rel=preload") in fields(sent)
    assert (b"X-Served-By", b"gateway") in fields(sent)


def test_a_list_value_adds_several_fields() -> None:
    sent = call({"headers": {"add": {"Set-Cookie": ["a=1", "b=2"]}}})
    assert [v for n, v in fields(sent) if n == b"Set-Cookie"] == [b"a=1", b"b=2"]


def test_remove_deletes_whatever_the_case() -> None:
    sent = call({"headers": {"remove": ["x-powered-by", "LINK"]}})
    assert fields(sent) == [(b"content-type", b"text/html"), (b"x-frame-options", b"ALLOWALL")]


def test_bodies_and_statuses_pass_untouched() -> None:
    sent = call({"headers": {"set": {"X-A": "1"}}}, app_sending(status=404))
    assert sent[0]["status"] == 404 and sent[1] == {"type": "http.response.body", "body": b"hello"}


def test_security_headers_are_added_unless_the_app_set_them() -> None:
    sent = call({"security_headers": True})
    names = [n.lower() for n, _ in fields(sent)]
    assert (b"x-frame-options", b"ALLOWALL") in fields(sent) and names.count(b"x-frame-options") == 1
    assert (b"X-Content-Type-Options", b"nosniff") in fields(sent)
    assert (b"Referrer-Policy", b"strict-origin-when-cross-origin") in fields(sent)


def test_security_headers_fill_in_what_is_missing() -> None:
    sent = call({"security_headers": True}, app_sending([(b"content-type", b"text/plain")]))
    assert (b"X-Frame-Options", b"SAMEORIGIN") in fields(sent)


def test_set_wins_over_the_security_default() -> None:
    sent = call({"security_headers": True, "headers": {"set": {"X-Frame-Options": "DENY"}}})
    assert [v for n, v in fields(sent) if n.lower() == b"x-frame-options"] == [b"DENY"]


def test_non_http_scopes_pass_through() -> None:
    options, _ = parse({"security_headers": True})
    assert options is not None
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    drive(headers.wrap(options, app)({"type": "lifespan"}, app, app))  # type: ignore[arg-type]
    assert seen == ["lifespan"]


# configuration ----------------------------------------------------------------------------------


def test_nothing_to_do_means_off() -> None:
    assert parse({}) == (None, [])
    assert parse({"security_headers": False, "headers": {}}) == (None, [])


@pytest.mark.parametrize(
    ("values", "key", "fragment"),
    [
        ({"headers": "X-A: 1"}, "headers", "expected a table"),
        ({"headers": {"sett": {}}}, "headers.sett", "did you mean 'set'?"),
        ({"headers": {"set": ["X-A"]}}, "headers.set", "expected a table of names and values"),
        ({"headers": {"set": {"Bad Name": "1"}}}, "headers.set.Bad Name", "is not a header name"),
        ({"headers": {"set": {"X-A:": "1"}}}, "headers.set.X-A:", "is not a header name"),
        ({"headers": {"add": {"X-A": "1\r\nX-Injected: 1"}}}, "headers.add.X-A", "no CR, LF"),
        ({"headers": {"add": {"X-A": "caf\u00e9"}}}, "headers.add.X-A", "printable ASCII"),
        ({"headers": {"add": {"X-A": 5}}}, "headers.add.X-A", "expected a string"),
        ({"headers": {"set": {"X-A": "1"}, "add": {"x-a": "2"}}}, "headers.add.x-a", "appears twice"),
        ({"headers": {"remove": "X-A"}}, "headers.remove", "expected a list"),
        ({"headers": {"remove": ["X A"]}}, "headers.remove[0]", "is not a header name"),
        ({"headers": {"set": {"Content-Length": "5"}}}, "headers.set.Content-Length", "framing"),
        ({"headers": {"remove": ["Server"]}}, "headers.remove[0]", "server_header"),
        ({"headers": {"add": {"Date": "x"}}}, "headers.add.Date", "the core writes Date"),
        ({"security_headers": "yes"}, "security_headers", "expected true or false"),
    ],
)
def test_bad_values_are_reported_with_their_key(values: dict[str, Any], key: str, fragment: str) -> None:
    _, problems = parse(values)
    assert any(k == key and fragment in m for k, m in problems), problems


def test_values_are_trimmed() -> None:
    options, _ = parse({"headers": {"set": {"X-A": "  1 "}}})
    assert options is not None and options.append == ((b"X-A", b"1"),)
