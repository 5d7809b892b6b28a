"""The compress stage in-process: a small ASGI app, wrap() in front, a send that records (no server)."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, cast

import brotli
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.stages import compress
from gateway.stages._compress_negotiate import MediaTypes, negotiate
from gateway.types import ASGIApp, HandlerContext, Message

CONTEXT = HandlerContext(Path("."), "test route", "")
TEXT = b"The quick brown fox jumps over the lazy dog. " * 100  # 4500 bytes, compressible
ALL = "br, zstd, gzip"


def drive(awaitable: Awaitable[None]) -> None:
    """Run a stage to completion without an event loop: nothing in these tests truly waits."""
    coroutine = cast(Coroutine[Any, Any, None], awaitable)
    with pytest.raises(StopIteration):
        coroutine.send(None)


def decoder(coding: str) -> Callable[[bytes], bytes]:
    """An incremental decoder: feed it compressed pieces, get what they decode to so far."""
    if coding == "gzip":
        return zlib.decompressobj(31).decompress
    if coding == "br":
        return brotli.Decompressor().process
    return zstandard.ZstdDecompressor().decompressobj().decompress


def options(value: object = True) -> compress.Options:
    problems: list[tuple[str, str]] = []
    parsed = compress.parse({"compress": value}, CONTEXT, lambda key, message: problems.append((key, message)))
    assert parsed is not None, problems
    return parsed


def problems_of(value: object) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    assert compress.parse({"compress": value}, CONTEXT, lambda k, m: problems.append((k, m))) is None
    return problems


def app_sending(
    chunks: Sequence[bytes] = (TEXT,),
    status: int = 200,
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"text/plain; charset=utf-8"),),
    pathsend: str | None = None,
) -> ASGIApp:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        if pathsend is not None:
            await send({"type": "http.response.pathsend", "path": pathsend})
            return
        for index, chunk in enumerate(chunks):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < len(chunks) - 1})

    return app


def call(
    app: ASGIApp,
    accept: str | None = ALL,
    method: str = "GET",
    extra: Sequence[tuple[bytes, bytes]] = (),
    on_send: Callable[[Message], None] | None = None,
    opts: compress.Options | None = None,
) -> list[Message]:
    """Run the wrapped app to completion without an event loop (nothing in it truly waits)."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)
        if on_send:
            on_send(message)

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    headers = [*([(b"accept-encoding", accept.encode())] if accept is not None else []), *extra]
    scope = {"type": "http", "method": method, "headers": headers, "path": "/"}
    drive(compress.wrap(opts or options(), app)(scope, receive, send))
    return sent


def head_of(sent: list[Message]) -> dict[bytes, bytes]:
    assert sent[0]["type"] == "http.response.start"
    return {name.lower(): value for name, value in sent[0]["headers"]}


def body_of(sent: list[Message]) -> bytes:
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert all(m["more_body"] for m in bodies[:-1]) and not bodies[-1].get("more_body", False)
    return b"".join(m["body"] for m in bodies)


# configuration ----------------------------------------------------------------------------------


def test_true_means_the_defaults_and_false_or_absent_means_off() -> None:
    parsed = options(True)
    assert parsed.algorithms == ("br", "zstd", "gzip") and parsed.min_size == 1024
    assert compress.parse({"compress": False}, CONTEXT, lambda k, m: None) is None
    assert compress.parse({}, CONTEXT, lambda k, m: None) is None


def test_a_table_sets_algorithms_sizes_types_and_levels() -> None:
    parsed = options({"algorithms": ["gzip", "br"], "min_size": "2KiB", "types": ["text/html"], "level": {"br": 6}})
    assert parsed.algorithms == ("gzip", "br") and parsed.min_size == 2048
    assert b"text/html; charset=utf-8" in parsed.types and b"text/plain" not in parsed.types
    assert set(parsed.codings) == {"gzip", "br"}


@pytest.mark.parametrize(
    ("value", "key", "fragment"),
    [
        ("yes", "compress", "expected true, false or a table"),
        ({"algoritms": ["br"]}, "compress.algoritms", "did you mean 'algorithms'?"),
        ({"algorithms": ["brotli"]}, "compress.algorithms[0]", "unknown algorithm 'brotli'"),
        ({"algorithms": []}, "compress.algorithms", "expected a list"),
        ({"algorithms": ["gzip", "gzip"]}, "compress.algorithms", "listed twice"),
        ({"min_size": "lots"}, "compress.min_size", "expected a size"),
        ({"types": "text/*"}, "compress.types", "expected a list of media types"),
        ({"types": ["text"]}, "compress.types[0]", "expected a media type"),
        ({"level": {"gzip": 12}}, "compress.level.gzip", "from 1 to 9, got 12"),
        ({"level": {"lz4": 1}}, "compress.level.lz4", "unknown algorithm"),
        ({"level": 5}, "compress.level", "expected a table"),
    ],
)
def test_bad_values_are_reported_with_their_key(value: object, key: str, fragment: str) -> None:
    problems = problems_of(value)
    assert any(k == key and fragment in m for k, m in problems), problems


# negotiation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        ("gzip", "gzip"),
        ("gzip, deflate, br, zstd", "br"),  # equal weights: the server's order
        ("gzip, zstd", "zstd"),
        ("br;q=0.5, gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.8, zstd;q=0.1", "gzip"),
        ("BR", "br"),
        ("x-gzip", "gzip"),
        ("*", "br"),
        ("br;q=0, *", "zstd"),
        ("br;q=0, zstd;q=0, *;q=0.3", "gzip"),
        ("gzip;q=0", None),
        ("*;q=0", None),
        ("identity", None),
        ("", None),
        ("deflate", None),
        ("gzip;q=0.5, identity", None),  # the client rates identity higher
        ("gzip, identity;q=0.5", "gzip"),
        ("gzip;q=nonsense", None),
        ("gzip;q=2", None),
        (" gzip ; q=0.9 ,br;Q=0.95", "br"),
    ],
)
def test_negotiate_follows_q_values_then_server_order(accept: str, chosen: str | None) -> None:
    assert negotiate(accept.encode(), ("br", "zstd", "gzip")) == chosen


def test_negotiate_prefers_the_configured_order() -> None:
    assert negotiate(b"br, gzip", ("gzip", "br")) == "gzip"


@pytest.mark.parametrize(
    ("content_type", "matches"),
    [
        (b"text/html", True),
        (b"TEXT/CSS; charset=utf-8", True),
        (b"application/json", True),
        (b"application/problem+json", True),
        (b"application/atom+xml", True),
        (b"image/svg+xml", True),
        (b"image/png", False),
        (b"application/octet-stream", False),
        (b"application/jsonx", False),
        (b"text", False),
        (b"", False),
    ],
)
def test_default_types(content_type: bytes, matches: bool) -> None:
    assert (content_type in MediaTypes(compress.DEFAULT_TYPES)) is matches


def test_any_type_pattern() -> None:
    assert b"image/png" in MediaTypes(["*/*"])


# compressing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_a_whole_body_is_compressed_and_the_head_follows(coding: str) -> None:
    headers = [
        (b"Content-Type", b"application/json"),
        (b"Content-Length", b"%d" % len(TEXT)),
        (b"ETag", b'"v1"'),
        (b"Accept-Ranges", b"bytes"),
        (b"X-App", b"kept"),
    ]
    sent = call(app_sending([TEXT], headers=headers), accept=coding)
    head = head_of(sent)
    assert head[b"content-encoding"] == coding.encode()
    assert head[b"vary"] == b"Accept-Encoding"
    assert head[b"etag"] == b'W/"v1"'
    assert b"content-length" not in head and b"accept-ranges" not in head
    assert head[b"x-app"] == b"kept"
    assert len(sent) == 2
    assert decoder(coding)(body_of(sent)) == TEXT


def test_weak_etags_stay_as_they_are() -> None:
    headers = [(b"content-type", b"text/html"), (b"etag", b'W/"v1"')]
    assert head_of(call(app_sending(headers=headers)))[b"etag"] == b'W/"v1"'


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_a_streamed_response_stays_streamed(coding: str) -> None:
    """Each chunk arrives as its own compressed message, decodable before the next one is sent."""
    chunks = [b"data: first event\n\n" * 3, b"data: second event\n\n" * 5, b"data: last event\n\n"]
    decode = decoder(coding)
    decoded: list[bytes] = []

    def on_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            decoded.append(decode(message["body"]))

    sent = call(app_sending(chunks, headers=[(b"content-type", b"text/event-stream")]), coding, on_send=on_send)
    assert head_of(sent)[b"content-encoding"] == coding.encode()
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) >= 3
    assert decoded[:3] == chunks  # each message held exactly its chunk, flushed
    assert b"".join(decoded) == b"".join(chunks)


def test_empty_chunks_in_a_stream_send_nothing() -> None:
    sent = call(app_sending([TEXT, b"", TEXT]), "gzip")
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) == 2 and all(m["body"] for m in bodies)
    assert decoder("gzip")(body_of(sent)) == TEXT * 2


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
def test_pathsend_files_are_read_and_compressed(coding: str, tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    data = TEXT * 200  # 900 KB: several reads
    path.write_bytes(data)
    sent = call(app_sending(pathsend=str(path)), coding)
    assert head_of(sent)[b"content-encoding"] == coding.encode()
    assert all(m["type"] == "http.response.body" for m in sent[1:])
    assert decoder(coding)(body_of(sent)) == data


def test_small_pathsend_files_go_out_untouched(tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_bytes(b"tiny")
    sent = call(app_sending(pathsend=str(path)))
    assert b"content-encoding" not in head_of(sent) and head_of(sent)[b"vary"] == b"Accept-Encoding"
    assert sent[1] == {"type": "http.response.pathsend", "path": str(path)}


# what is not compressed -------------------------------------------------------------------------


def not_compressed(sent: list[Message], body: bytes = TEXT) -> dict[bytes, bytes]:
    head = head_of(sent)
    assert b"content-encoding" not in head or head[b"content-encoding"] == b"gzip-by-app"
    assert body_of(sent) == body
    return head


@pytest.mark.parametrize(
    ("why", "status", "headers"),
    [
        ("already encoded", 200, [(b"content-type", b"text/plain"), (b"content-encoding", b"gzip-by-app")]),
        ("no content", 204, [(b"content-type", b"text/plain")]),
        ("not modified image", 304, [(b"content-type", b"image/png")]),
        ("partial image", 206, [(b"content-type", b"image/png"), (b"content-range", b"bytes 0-9/100")]),
        ("partial of no type", 206, [(b"content-range", b"bytes 0-9/100")]),
        ("informational", 103, [(b"content-type", b"text/plain")]),
        ("image", 200, [(b"content-type", b"image/png")]),
        ("no type", 200, []),
        ("no-transform", 200, [(b"content-type", b"text/plain"), (b"cache-control", b"public, No-Transform")]),
    ],
)
def test_responses_that_are_not_compressible_pass_untouched(
    why: str, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    sent = call(app_sending([TEXT], status=status, headers=headers))
    assert sent[0]["headers"] == headers, why  # not even Vary
    assert body_of(sent) == TEXT


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (304, [(b"content-type", b"text/plain")]),
        (304, [(b"etag", b'"v1"')]),  # a 304 often has no Content-Type: taken as what could be compressed
        (206, [(b"content-type", b"text/plain"), (b"content-range", b"bytes 0-9/100")]),
    ],
)
def test_a_304_or_206_of_what_could_be_compressed_varies_as_the_full_response(
    status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    """RFC 9110 §15.4.5 and §15.3.7: they carry the Vary the 200 would have; nothing in them is compressed."""
    sent = call(app_sending([b""], status=status, headers=headers))
    assert sent[0]["headers"] == [*headers, (b"vary", b"Accept-Encoding")]


@pytest.mark.parametrize(
    ("if_none_match", "etag"),
    [(b'W/"v1"', b'W/"v1"'), (b'"v1"', b'"v1"'), (b'"v0", W/"v1"', b'W/"v1"'), (b'W/"v1", "v1"', b'"v1"')],
)
def test_a_304_has_the_etag_the_client_holds(if_none_match: bytes, etag: bytes) -> None:
    """A compressed 200 had W/"v1" (the app's "v1" made weak): its 304 says so, or a cache cannot match it."""
    headers = [(b"etag", b'"v1"'), (b"content-type", b"text/plain")]
    sent = call(app_sending([b""], status=304, headers=headers), extra=[(b"if-none-match", if_none_match)])
    assert dict(sent[0]["headers"])[b"etag"] == etag


def test_a_range_request_is_not_compressed_but_varies() -> None:
    sent = call(app_sending(), extra=[(b"range", b"bytes=0-10")])
    assert not_compressed(sent)[b"vary"] == b"Accept-Encoding"


@pytest.mark.parametrize("accept", [None, "identity", "gzip;q=0", "deflate"])
def test_clients_that_accept_nothing_get_identity_with_vary(accept: str | None) -> None:
    assert not_compressed(call(app_sending(), accept))[b"vary"] == b"Accept-Encoding"


def test_a_small_whole_body_is_not_compressed() -> None:
    sent = call(app_sending([b"x" * 1023]))
    assert not_compressed(sent, b"x" * 1023)[b"vary"] == b"Accept-Encoding"
    assert len(call(app_sending([b"x" * 1024]))[-1]["body"]) < 1024  # at the threshold it is


def test_a_small_content_length_is_not_compressed_even_when_streamed() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"20")]
    sent = call(app_sending([b"a" * 10, b"b" * 10], headers=headers))
    assert not_compressed(sent, b"a" * 10 + b"b" * 10)[b"content-length"] == b"20"


def test_a_streamed_body_of_unknown_size_is_compressed_even_when_small() -> None:
    sent = call(app_sending([b"a", b"b"]), "gzip")
    assert head_of(sent)[b"content-encoding"] == b"gzip"
    assert decoder("gzip")(body_of(sent)) == b"ab"


def test_min_size_zero_compresses_everything() -> None:
    sent = call(app_sending([b"hi"]), "gzip", opts=options({"min_size": 0}))
    assert decoder("gzip")(body_of(sent)) == b"hi"


def test_non_http_scopes_pass_through() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], send))

    async def send(message: Message) -> None: ...

    stage = compress.wrap(options(), app)
    drive(stage({"type": "websocket", "headers": []}, send, send))  # type: ignore[arg-type]
    assert seen == [("websocket", send)]


def test_an_unknown_message_before_the_body_releases_the_head_uncompressed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.debug", "info": 1})
        await send({"type": "http.response.body", "body": TEXT})

    sent = call(app)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.debug", "http.response.body"]
    assert not_compressed(sent)


# Vary -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vary", "expected"),
    [
        ([(b"Vary", b"Cookie")], [(b"Vary", b"Cookie, Accept-Encoding")]),
        ([(b"vary", b"Accept-Encoding, Cookie")], [(b"vary", b"Accept-Encoding, Cookie")]),
        ([(b"vary", b"cookie"), (b"vary", b"accept-encoding")], [(b"vary", b"cookie"), (b"vary", b"accept-encoding")]),
        ([(b"vary", b"*")], [(b"vary", b"*")]),
    ],
)
def test_vary_is_merged_into_the_apps(vary: list[tuple[bytes, bytes]], expected: list[tuple[bytes, bytes]]) -> None:
    sent = call(app_sending(headers=[(b"content-type", b"text/plain"), *vary]), accept=None)
    assert [(n, v) for n, v in sent[0]["headers"] if n.lower() == b"vary"] == expected


# HEAD -------------------------------------------------------------------------------------------


def test_head_gets_the_head_a_get_would_get_and_no_body() -> None:
    headers = [(b"content-type", b"text/html"), (b"content-length", b"4500"), (b"etag", b'"x"')]
    get_head = head_of(call(app_sending([TEXT], headers=headers), "br"))
    sent = call(app_sending([b""], headers=headers), "br", method="HEAD")
    assert head_of(sent) == get_head
    assert body_of(sent) == b""
    assert sent[1]["more_body"]  # the size stays unsaid: the core must not write Content-Length: 0


def test_head_with_a_small_content_length_is_not_compressed() -> None:
    headers = [(b"content-type", b"text/html"), (b"content-length", b"10")]
    sent = call(app_sending([b""], headers=headers), method="HEAD")
    assert sent[0]["headers"][-1] == (b"vary", b"Accept-Encoding") and b"content-encoding" not in head_of(sent)


def test_head_whose_app_sent_a_body_anyway_gets_no_compressed_bytes() -> None:
    sent = call(app_sending([TEXT[:2000], TEXT[2000:]]), "gzip", method="HEAD")
    assert head_of(sent)[b"content-encoding"] == b"gzip" and body_of(sent) == b""


# the property: streamed bodies round-trip ---------------------------------------------------------

STREAMS = st.lists(
    st.binary(max_size=3000) | st.sampled_from([b"", TEXT[:700], b"\x00" * 5000]), min_size=1, max_size=8
)
ANY_SIZE = {"min_size": 0}


@pytest.mark.parametrize("coding", ["br", "zstd", "gzip"])
@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=STREAMS)
def test_streamed_bodies_round_trip(coding: str, chunks: list[bytes]) -> None:
    """Whatever is streamed decodes to the same bytes, and every prefix is decodable on arrival."""
    decode = decoder(coding)
    received: list[bytes] = []

    def on_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            received.append(decode(message["body"]))

    opts = options({"algorithms": [coding], **ANY_SIZE})
    sent = call(app_sending(chunks), coding, on_send=on_send, opts=opts)
    assert head_of(sent)[b"content-encoding"] == coding.encode()
    assert b"".join(received) == b"".join(chunks)
    if len(chunks) > 1:  # streamed: what arrived so far decodes to what was sent so far
        nonempty = [c for c in chunks[:-1] if c]
        assert received[: len(nonempty)] == nonempty
