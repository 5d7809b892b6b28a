"""Clients that stop reading, pile up pipelined requests, or never send a usable request hold nothing for ever.

A client that takes none of its response for send_timeout is cut off (nginx's
send_timeout); a response waiting for the client holds the next request back;
connections refused for the connection limit do not count against it; a chunk
extension or trailer line still arriving is bounded like a header line.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import rss_kib
from tests.support.server import Gateway, read_response, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

APP = "tests.e2e.protocol_apps:app"
CONFIG = "[limits]\nsend_timeout = 2\nmax_connections = 3\nheader_timeout = 20\n"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with run_gateway(APP, config_text=CONFIG) as gateway:
        yield gateway


def reader_that_stops(gateway: Gateway) -> socket.socket:
    """A connection with a tiny receive buffer, whose owner reads nothing."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    sock.connect(gateway.address)
    return sock


def get(path: str, close: bool = False) -> bytes:
    extra = b"Connection: close\r\n" if close else b""
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"


def served(gateway: Gateway) -> bytes:
    with gateway.connect() as sock:
        sock.sendall(get("/fixed", close=True))
        return read_response(sock)


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "connection close"])
def test_a_client_that_stops_reading_is_cut_off_after_send_timeout(gw: Gateway, close: bool) -> None:
    line = "took none of the response for 2 s (send_timeout): connection closed"
    cut_before = gw.stderr().count(line)
    with reader_that_stops(gw) as sock:
        sock.sendall(get("/blob?size=16777216", close=close))  # 16 MiB in one message: most of it waits
        started = time.monotonic()
        while gw.stderr().count(line) == cut_before:
            assert time.monotonic() - started < 6, "the client was not cut off"
            time.sleep(0.05)
        assert time.monotonic() - started > 1.5, "cut off before send_timeout"
        received = 0
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < 16 * MiB, "the response was cut, not delivered"
    assert served(gw).startswith(b"HTTP/1.1 200 "), "its connection slot came back"


def test_a_client_that_stops_reading_a_file_is_cut_off_after_send_timeout(gw: Gateway, tmp_path: Path) -> None:
    """A large file goes out by sendfile beside the transport: the wait for the socket is bounded the same way."""
    big = tmp_path / "big.bin"
    big.write_bytes(b"f" * (32 * MiB))
    line = "took none of the response for 2 s (send_timeout): connection closed in the middle of a file"
    cut_before = gw.stderr().count(line)
    with reader_that_stops(gw) as sock:
        sock.sendall(get(f"/sendfile?path={big}"))
        started = time.monotonic()
        while gw.stderr().count(line) == cut_before:
            assert time.monotonic() - started < 6, "the client was not cut off"
            time.sleep(0.05)
    assert served(gw).startswith(b"HTTP/1.1 200 "), "its connection slot came back"
    assert "Traceback" not in gw.stderr()


def test_pipelined_requests_wait_while_the_client_reads_nothing(gw: Gateway, tmp_path: Path) -> None:
    """Each 1 MiB answer would otherwise be made and kept in memory: 50 requests, 50 MiB."""
    log = tmp_path / "served.log"
    rss_before = rss_kib(gw.proc.pid)
    with reader_that_stops(gw) as sock:
        sock.sendall(b"".join(get(f"/blob?log={log}") for _ in range(50)))
        time.sleep(1.5)
        made = log.read_text().count("served")
        grew = rss_kib(gw.proc.pid) - rss_before
        assert made <= 8, f"{made} responses were made for a client that reads none"
        assert grew < 20 * 1024, f"the server grew by {grew} KiB"
        total = 0
        while total < 50 * MiB:  # reading lets every one of them through, in order
            chunk = sock.recv(1 << 20)
            assert chunk, f"closed after {total} bytes"
            total += len(chunk)
    assert log.read_text().count("served") == 50


def test_connections_refused_for_the_limit_do_not_keep_others_out(gw: Gateway) -> None:
    held = [gw.connect() for _ in range(3)]  # max_connections = 3, each silent
    time.sleep(0.3)
    refused = [gw.connect() for _ in range(5)]  # beyond the limit: each will get a 503
    time.sleep(0.3)
    for sock in held:
        sock.close()
    try:
        # Within 3 s of the three leaving (the refused ones would hold their places for header_timeout, 20 s).
        deadline = time.monotonic() + 3
        while not (answer := served(gw)).startswith(b"HTTP/1.1 200 ") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 200 "), "a new client is served once the first three left"
    finally:
        for sock in refused:
            sock.close()


@pytest.mark.parametrize(
    "start",
    [
        b"5\r\nhello\r\n0\r\nX-Trail: ",  # a trailer line that never ends
        b"5;ext=",  # a chunk extension that never ends
    ],
)
def test_a_chunk_extension_or_trailer_line_is_bounded(gw: Gateway, start: bytes) -> None:
    with gw.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + start)
        answer = b""
        try:
            for _ in range(64):  # 4 MiB at the most
                sock.sendall(b"a" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
