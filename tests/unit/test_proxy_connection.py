"""Response parsing on an upstream connection: bytes fed in, head and body out (a fake transport, no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters._proxy_connection import HIGH_WATER, UpstreamConnection


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False
        self.paused = False

    def get_extra_info(self, name: str) -> Any:
        return None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


def exchange(*pieces: bytes, head_request: bool = False, eof: bool = False) -> tuple[UpstreamConnection, bytes]:
    """Feed a response in pieces; the connection and the body it collected."""

    async def run() -> tuple[UpstreamConnection, bytes]:
        connection = UpstreamConnection()
        connection.connection_made(FakeTransport())
        connection.begin(head_request)
        body = b""
        for piece in pieces:
            connection.data_received(piece)
            body += connection.take() if connection.pending else b""
        if eof:
            connection.eof_received()
            connection.connection_lost(None)
        return connection, body

    return asyncio.run(run())


def test_a_sized_response_in_pieces() -> None:
    connection, body = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n", b"\r\nhel", b"lo")
    assert connection.head is not None and connection.head.status == 200
    assert connection.head.headers == [(b"content-length", b"5"), (b"x-a", b"1")]
    assert body == b"hello" and connection.complete and connection.finish()


def test_chunked_body_is_unframed() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    connection, body = exchange(chunked + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert body == b"abcde" and connection.complete and connection.finish()


def test_informational_responses_are_skipped() -> None:
    connection, body = exchange(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
    assert connection.head is None and not connection.complete
    connection, body = exchange(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    assert connection.head is not None and connection.head.status == 201 and body == b"ok"
    assert connection.head.headers == [(b"content-length", b"2")]


def test_a_head_response_ends_at_its_head() -> None:
    connection, body = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", head_request=True)
    assert connection.complete and body == b"" and connection.finish(), "the connection can carry the next request"


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status: int) -> None:
    connection, body = exchange(b"HTTP/1.1 %d X\r\nContent-Length: 7\r\n\r\n" % status)
    assert connection.complete and body == b"" and connection.finish()


def test_a_coding_on_a_response_without_a_body_needs_no_decoding() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    connection, _ = exchange(head, head_request=True)
    assert connection.error is None and connection.complete and connection.head is not None
    connection, _ = exchange(b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: gzip\r\n\r\n")
    assert connection.error is None and connection.complete
    connection, _ = exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\ncoded")
    assert connection.error is not None and "cannot decode" in connection.error


def test_trailers_are_dropped_and_get_a_size_limit_of_their_own() -> None:
    big = b"X-Big: " + b"a" * 60_000 + b"\r\n"  # most of MAX_HEAD in the head
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n" + big + b"\r\n"
    connection, body = exchange(chunked + b"2\r\nok\r\n0\r\nX-Trailer: " + b"t" * 10_000 + b"\r\n\r\n")
    assert connection.error is None and body == b"ok" and connection.complete
    assert connection.head is not None and b"x-trailer" not in dict(connection.head.headers)


@pytest.mark.parametrize(
    "start",
    [
        b"HTTP/1.1 200 OK\r\nX-Big: ",  # a header line that never ends
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: ",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;ext=",  # a chunk extension
    ],
    ids=["header", "trailer", "chunk-extension"],
)
def test_a_line_without_end_is_refused_at_the_head_limit(start: bytes) -> None:
    """httptools keeps such a line whole until it ends (copying it on every read): bounded here."""
    pieces = [start] + [b"a" * 8192] * 12  # 96 KiB past the start
    connection, _ = exchange(*pieces)
    assert connection.error is not None and "without an end" in connection.error
    assert connection.closed


def test_a_long_chunked_body_in_small_reads_is_not_framing() -> None:
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    pieces = [head] + [b"400\r\n" + b"x" * 1024 + b"\r\n"] * 200 + [b"0\r\n\r\n"]
    connection, body = exchange(*pieces)
    assert connection.error is None and len(body) == 200 * 1024 and connection.complete


def test_a_body_after_a_head_response_makes_the_connection_unusable() -> None:
    connection, _ = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", head_request=True)
    assert connection.complete and not connection.finish()


def test_no_framing_reads_until_close() -> None:
    connection, body = exchange(b"HTTP/1.1 200 OK\r\n\r\nsome ", b"bytes", eof=True)
    assert connection.head is not None and connection.head.until_close
    body += connection.take()
    assert body == b"some bytes" and connection.complete and not connection.finish()


def test_a_close_in_the_middle_of_a_sized_body_is_not_complete() -> None:
    connection, body = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", eof=True)
    assert connection.closed and not connection.complete and body == b"abc"


def test_connection_close_and_http_1_0_are_not_kept() -> None:
    connection, _ = exchange(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert connection.complete and not connection.finish()
    connection, _ = exchange(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert connection.complete and not connection.finish()


def test_bytes_after_the_response_make_the_connection_unusable() -> None:
    connection, _ = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n")
    assert connection.complete and not connection.finish()


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "Expected HTTP/"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n", "101"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", "larger than"),
    ],
)
def test_malformed_responses(data: bytes, error: str) -> None:
    connection, _ = exchange(data)
    assert connection.error is not None and error in connection.error
    assert connection.closed and not connection.finish()


def test_reading_pauses_above_the_high_water_mark() -> None:
    async def run() -> None:
        transport = FakeTransport()
        connection = UpstreamConnection()
        connection.connection_made(transport)
        connection.begin(False)
        size = HIGH_WATER * 2
        connection.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        connection.data_received(b"x" * (HIGH_WATER + 1))
        assert transport.paused
        assert len(connection.take()) == HIGH_WATER + 1
        assert not transport.paused

    asyncio.run(run())


def test_bytes_while_idle_close_the_connection() -> None:
    async def run() -> None:
        connection = UpstreamConnection()
        connection.connection_made(FakeTransport())
        connection.begin(False)
        connection.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        assert connection.finish()
        connection.data_received(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
        assert connection.closed

    asyncio.run(run())


def test_wait_times_out_after_silence() -> None:
    async def run() -> None:
        connection = UpstreamConnection()
        connection.connection_made(FakeTransport())
        connection.begin(False)
        with pytest.raises(TimeoutError):
            await connection.wait(0.05)
        waiting = asyncio.ensure_future(connection.wait(5))
        await asyncio.sleep(0.01)
        connection.data_received(b"HTTP/1.1 200 OK\r\n")
        await asyncio.wait_for(waiting, 1)

    asyncio.run(run())
