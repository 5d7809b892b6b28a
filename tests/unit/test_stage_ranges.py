"""The ranges stage in-process: byte ranges cut from a streamed response, RFC 9110 §14."""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from gateway.stages import ranges
from gateway.stages.ranges import NOT_SATISFIABLE, if_range_holds, parse_range
from gateway.types import ASGIApp, HandlerContext, Message

CONTEXT = HandlerContext(Path("."), "test route", "")
BODY = bytes(range(256)) * 4  # 1024 bytes, every offset recognisable
CHUNKS = [BODY[:300], BODY[300:700], BODY[700:]]
HEAD = [(b"content-type", b"application/octet-stream"), (b"content-length", b"1024"), (b"etag", b'"v1"')]


def drive(awaitable: Awaitable[None]) -> None:
    """Run a stage to completion without an event loop: nothing in these tests truly waits."""
    coroutine = cast(Coroutine[Any, Any, None], awaitable)
    with pytest.raises(StopIteration):
        coroutine.send(None)


def app_sending(
    chunks: Sequence[bytes] = CHUNKS,
    status: int = 200,
    headers: Sequence[tuple[bytes, bytes]] = HEAD,
    pathsend: str | None = None,
    trace: list[str] | None = None,
) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        if pathsend is not None:
            await send({"type": "http.response.pathsend", "path": pathsend})
        for index, chunk in enumerate(chunks if pathsend is None else ()):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1})
            if trace is not None:
                trace.append(f"sent {index}")
        if trace is not None:
            trace.append("app done")

    return app


def call(app: ASGIApp, request: Sequence[tuple[bytes, bytes]] = (), method: str = "GET") -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    options = ranges.parse({}, CONTEXT, lambda k, m: None)
    assert options is not None
    drive(ranges.wrap(options, app)({"type": "http", "method": method, "headers": list(request)}, receive, send))
    return sent


def head_of(sent: list[Message]) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in sent[0]["headers"]}


def body_of(sent: list[Message]) -> bytes:
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert all(m["more_body"] for m in bodies[:-1]) and not bodies[-1].get("more_body", False)
    assert all(m["body"] for m in bodies[:-1])  # no empty messages in between
    return b"".join(m["body"] for m in bodies)


def asking(value: str, *more: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [(b"range", value.encode()), *more]


# parsing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "length", "expected"),
    [
        ("bytes=0-4", 10, (0, 5)),
        ("bytes=5-", 10, (5, 10)),
        ("bytes=-3", 10, (7, 10)),
        ("bytes=9-9", 10, (9, 10)),
        ("bytes=0-999", 10, (0, 10)),  # a last past the end means the end
        ("bytes=-999", 10, (0, 10)),  # a suffix longer than the body means all of it
        ("Bytes = 2-3 ", 10, (2, 4)),
        ("bytes=10-", 10, NOT_SATISFIABLE),
        ("bytes=10-20", 10, NOT_SATISFIABLE),
        ("bytes=-0", 10, NOT_SATISFIABLE),
        ("bytes=" + "9" * 5000 + "-", 10, NOT_SATISFIABLE),  # no int() of 5000 digits
        ("bytes=0-" + "9" * 5000, 10, (0, 10)),
        ("bytes=5-1", 10, None),
        ("bytes=0-1,3-4", 10, None),  # several ranges: the whole body instead (§14.2 allows it)
        ("items=0-1", 10, None),
        ("bytes=a-b", 10, None),
        ("bytes=-", 10, None),
        ("bytes=1", 10, None),
        ("bytes=+1-2", 10, None),
        ("bytes 0-1", 10, None),
        ("bytes=0-0", 0, None),  # nothing to cut from an empty body
    ],
)
def test_parse_range(value: str, length: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(value.encode(), length) == expected


@pytest.mark.parametrize(
    ("value", "etag", "last_modified", "holds"),
    [
        (b'"v1"', b'"v1"', None, True),
        (b'"v1"', b'"v2"', None, False),
        (b'"v1"', b'W/"v1"', None, False),  # strong comparison
        (b'W/"v1"', b'W/"v1"', None, False),
        (b'"v1"', None, None, False),
        (b"Tue, 15 Nov 1994 08:12:31 GMT", None, b"Tue, 15 Nov 1994 08:12:31 GMT", True),
        (b"Tue, 15 Nov 1994 08:12:32 GMT", None, b"Tue, 15 Nov 1994 08:12:31 GMT", False),
        (b"Tue, 15 Nov 1994 08:12:31 GMT", b'"v1"', None, False),
    ],
)
def test_if_range(value: bytes, etag: bytes | None, last_modified: bytes | None, holds: bool) -> None:
    assert if_range_holds(value, etag, last_modified) is holds


def test_configuration() -> None:
    problems: list[tuple[str, str]] = []
    assert ranges.parse({}, CONTEXT, lambda k, m: problems.append((k, m))) is not None
    assert ranges.parse({"ranges": True}, CONTEXT, lambda k, m: problems.append((k, m))) is not None
    assert ranges.parse({"ranges": False}, CONTEXT, lambda k, m: problems.append((k, m))) is None
    assert problems == []
    assert ranges.parse({"ranges": "on"}, CONTEXT, lambda k, m: problems.append((k, m))) is None
    assert problems == [("ranges", "expected true or false, got 'on'")]


# serving ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "first", "last"),
    [
        ("bytes=0-99", 0, 99),  # inside the first chunk
        ("bytes=250-750", 250, 750),  # across all three
        ("bytes=300-699", 300, 699),  # exactly the middle chunk
        ("bytes=1000-", 1000, 1023),
        ("bytes=-24", 1000, 1023),
        ("bytes=0-", 0, 1023),
    ],
)
def test_a_range_is_cut_from_the_stream(value: str, first: int, last: int) -> None:
    sent = call(app_sending(), asking(value))
    assert sent[0]["status"] == 206
    head = head_of(sent)
    assert head[b"content-range"] == b"bytes %d-%d/1024" % (first, last)
    assert head[b"content-length"] == b"%d" % (last - first + 1)
    assert head[b"etag"] == b'"v1"' and head[b"content-type"] == b"application/octet-stream"
    assert body_of(sent) == BODY[first : last + 1]


def test_the_response_ends_when_the_range_has_gone_out() -> None:
    """The client is not kept waiting for the rest of the body; the rest is swallowed."""
    trace: list[str] = []
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        trace.append("final" if message["type"] == "http.response.body" and not message["more_body"] else "out")

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    options = ranges.Options()
    scope = {"type": "http", "method": "GET", "headers": asking("bytes=0-9")}
    drive(ranges.wrap(options, app_sending(trace=trace))(scope, receive, send))
    assert trace == ["out", "final", "sent 0", "sent 1", "sent 2", "app done"]
    assert body_of(sent) == BODY[:10]


def test_a_body_shorter_than_its_length_ends_early() -> None:
    """The core sees fewer bytes than Content-Length and closes the connection."""
    sent = call(app_sending([BODY[:300], BODY[300:500]]), asking("bytes=400-900"))
    assert sent[0]["status"] == 206 and body_of(sent) == BODY[400:500]


def test_past_the_end_is_416() -> None:
    sent = call(app_sending(), asking("bytes=1024-"))
    assert sent[0]["status"] == 416
    assert head_of(sent) == {b"content-range": b"bytes */1024", b"content-length": b"0"}
    assert body_of(sent) == b""


@pytest.mark.parametrize(
    "request_headers",
    [
        asking("bytes=0-1,5-6"),
        asking("bytes=9-1"),
        asking("lines=1-2"),
        asking("bytes=0-9", (b"if-range", b'"v0"')),
        asking("bytes=0-9", (b"if-range", b'W/"v1"')),
        asking("bytes=0-9", (b"if-range", b"Tue, 15 Nov 1994 08:12:31 GMT")),
    ],
)
def test_the_whole_body_with_accept_ranges_otherwise(request_headers: list[tuple[bytes, bytes]]) -> None:
    sent = call(app_sending(), request_headers)
    assert sent[0]["status"] == 200 and head_of(sent)[b"accept-ranges"] == b"bytes"
    assert body_of(sent) == BODY


def test_a_request_without_range_passes_untouched() -> None:
    sent = call(app_sending(), [])
    assert sent[0]["status"] == 200 and b"accept-ranges" not in head_of(sent), "no wrapper, no cost"
    assert body_of(sent) == BODY


def test_a_matching_if_range_gets_the_range() -> None:
    sent = call(app_sending(), asking("bytes=0-9", (b"if-range", b'"v1"')))
    assert sent[0]["status"] == 206 and body_of(sent) == BODY[:10]


def test_head_advertises_but_is_never_cut() -> None:
    sent = call(app_sending(), asking("bytes=0-9"), method="HEAD")
    assert sent[0]["status"] == 200 and head_of(sent)[b"accept-ranges"] == b"bytes"


@pytest.mark.parametrize(
    ("why", "status", "headers", "method"),
    [
        ("not 200", 404, HEAD, "GET"),
        ("no length", 200, [(b"content-type", b"text/plain")], "GET"),
        ("encoded", 200, [*HEAD, (b"content-encoding", b"gzip")], "GET"),
        ("does its own", 200, [*HEAD, (b"accept-ranges", b"bytes")], "GET"),
        ("refuses", 200, [*HEAD, (b"Accept-Ranges", b"none")], "GET"),
        ("already partial", 200, [*HEAD, (b"content-range", b"bytes 0-1023/2048")], "GET"),
        ("two lengths", 200, [*HEAD, (b"content-length", b"5")], "GET"),
        ("not GET", 200, HEAD, "POST"),
    ],
)
def test_responses_that_are_not_eligible_pass_untouched(
    why: str, status: int, headers: list[tuple[bytes, bytes]], method: str
) -> None:
    sent = call(app_sending(status=status, headers=headers), asking("bytes=0-9"), method)
    assert sent[0]["status"] == status and sent[0]["headers"] == headers, why
    assert body_of(sent) == BODY


def test_a_pathsend_file_is_sliced(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    data = BODY * 600  # 600 KiB: more than one read
    path.write_bytes(data)
    headers = [(b"content-type", b"application/octet-stream"), (b"content-length", b"%d" % len(data))]
    sent = call(app_sending(headers=headers, pathsend=str(path)), asking("bytes=1000-400000"))
    assert sent[0]["status"] == 206 and body_of(sent) == data[1000:400001]
    whole = call(app_sending(headers=headers, pathsend=str(path)))
    assert whole[1] == {"type": "http.response.pathsend", "path": str(path)}


def test_416_swallows_a_pathsend(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(BODY)
    sent = call(app_sending(pathsend=str(path)), asking("bytes=5000-"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
