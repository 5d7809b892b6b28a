"""Replays gunicorn's raw request corpus against the real server, arriving in different ways.

Every file of ../../../shared/http-corpus/gunicorn/{valid,invalid} is sent whole,
byte by byte, and in seeded random chunks; after the last byte the client
half-closes and reads until the server closes. What the client observes (each
response's status and, for the echo app's answers, the method, path, query and
body it saw) must be the same for every way of sending and equal to the pinned
expectation below. Where we answer differently from gunicorn, DIFFERENCES.md
beside this file says why.

"Nothing reached the app" is checked through a journal the app writes
(recorder.py): an app may be called once a head is accepted (bodies stream), but
it must never receive the end of a request that the server refused, and the
requests it did receive in full must be exactly the ones answered by it. At the
end, each server's access log must agree with what the clients saw.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.requests.corpus import GUNICORN, corpus_files, load
from tests.support.server import Gateway, run_gateway

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

APP = "tests.requests.recorder:app"
READ_TIMEOUT = 3.0
RANDOM_SEEDS = (1, 2, 3)
MODES = ("whole", "bytes", *(f"random-{seed}" for seed in RANDOM_SEEDS))
# A short pause after each piece, so that pieces mostly reach the server as
# separate reads instead of being coalesced in the socket buffer.
PIECE_PAUSE = 0.00002

# Limit configurations. gunicorn's tests raise or lower limits per file (its
# tests/requests/**/NNN.py set cfg); these mirror them. gunicorn counts the
# CRLF in limit_request_field_size and not in limit_request_line; our
# max_header_size counts the field line without its CRLF (RFC 9112 §5's
# field-line), so gunicorn's field size N is our N - 2.
# A short shutdown_timeout: a request stuck in the server fails its own test,
# not the module's teardown as well.
SERVER = "[server]\nshutdown_timeout = 3\n"
CONFIGS: dict[str, str] = {
    "default": SERVER,
    "line-4094": SERVER + "[limits]\nmax_request_line = 4094\n",  # invalid/006: limit_request_line 4094
    "field-8": SERVER + "[limits]\nmax_header_size = 8\n",  # invalid/010: limit_request_field_size 10
    "fields-2": SERVER + "[limits]\nmax_header_count = 2\n",  # invalid/011: limit_request_fields 2
    "field-96": SERVER + "[limits]\nmax_header_size = 96\n",  # invalid/012: limit_request_field_size 98
    # gunicorn's default limit_request_field_size (8190 with CRLF): invalid/008, 017, limit_header_default_01
    "field-8188": SERVER + "[limits]\nmax_header_size = 8188\n",
    # valid/024 (limit_request_line 8200, field size 8210) and valid/026 (field size 8210)
    "large": SERVER + "[limits]\nmax_request_line = 8200\nmax_header_size = 8208\n",
}


class Reply(NamedTuple):
    """One response as a client sees it; method..body are the echo app's view of the request."""

    status: int
    method: str | None = None
    path: str | None = None
    query: str | None = None
    body: bytes | None = None

    def __repr__(self) -> str:
        if self.method is None:
            return f"<{self.status}>"
        return f"<{self.status} {self.method} {self.path!r} q={self.query!r} body={self.body!r}>"


@dataclass(frozen=True)
class Answer:
    """Everything the server sent on one connection, and how the connection ended."""

    replies: tuple[Reply, ...]
    ending: str  # "closed" (the server closed), "reset", or "open after Ns" (a hang)
    leftover: bytes = b""  # bytes that did not parse as a response
    send_error: str = ""  # the server stopped taking our bytes before we had sent them all

    def __repr__(self) -> str:
        extra = f" leftover={self.leftover[:60]!r}" if self.leftover else ""
        if self.send_error:
            extra += f" (sending failed: {self.send_error})"
        return f"{list(self.replies)} {self.ending}{extra}"


def ok(method: str, path: str, query: str = "", body: bytes = b"") -> Reply:
    """The echo app answered: it saw this method, path, query string and body."""
    return Reply(200, method, path, query, body)


def refused(status: int) -> Reply:
    return Reply(status)


def _target(name: str) -> str:
    """The request target of a corpus file (for files whose path is too long to write out)."""
    return load(GUNICORN / name).split(b" ", 2)[1].decode("ascii")


# Our expected answer for each valid file. gunicorn hands every one of these to
# the app (some only with a non-default cfg); DIFFERENCES.md lists each refusal
# here with gunicorn's answer and the RFC section behind ours.
VALID: dict[tuple[str, str], tuple[Reply, ...]] = {
    ("001", "default"): (ok("PUT", "/stuff/here", "foo=bar", b'{"nom": "nom"}'),),
    ("002", "default"): (ok("GET", "/test"),),
    ("003", "default"): (ok("GET", "/favicon.ico"),),
    ("004", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("005", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("006", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("007", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("008", "default"): (ok("GET", "/unusual_content_length", body=b"HELLO"),),
    ("009", "default"): (refused(501),),  # Transfer-Encoding: identity
    ("010", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("011", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("012", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("013", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("014", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("015", "default"): (ok("GET", "/test"),),
    ("017", "default"): (ok("GET", "/stuff/here", "foo=bar"),),
    ("018", "default"): (refused(400),),  # HTTP/1.1 without Host (first of two)
    ("019", "default"): (ok("GET", "/first"),),  # HTTP/1.0 without keep-alive: the connection ends
    ("020", "default"): (ok("GET", "/first", body=b"GET /second HTTP/1.1\r\n\r\n"),),
    ("021", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("022", "default"): (ok("GET", "/first"), refused(400)),  # the second: HTTP/1.1 without Host
    ("023", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("024", "default"): (refused(431),),  # an 8204-byte field line; gunicorn's test raises its limit
    ("024", "large"): (ok("PUT", _target("valid/024.http")),),
    ("025", "default"): (refused(501),),  # Transfer-Encoding: gzip
    ("025_line", "default"): (refused(501),),  # Transfer-Encoding: gzip,chunked
    ("026", "default"): (refused(431),),  # an 8204-byte field line; gunicorn's test raises its limit
    ("026", "large"): (ok("GET", "/"),),
    ("027", "default"): (refused(400),),  # raw non-ASCII bytes in the target
    ("028", "default"): (refused(400),),  # "Content-Length : 3"
    ("029", "default"): (refused(501),),  # Transfer-Encoding: identity
    ("030", "default"): (refused(501),),  # Transfer-Encoding: identity
    ("031", "default"): (refused(400),),  # method "-BLARGH"
    ("031compat", "default"): (refused(400),),  # method "-blargh"
    ("031compat2", "default"): (refused(400),),  # method "-blargh"
    ("040", "default"): (refused(400),),  # Transfer_Encoding / Content_Length
    ("040_compat", "default"): (refused(400),),  # Transfer_Encoding / Content_Length
    ("099", "default"): (refused(400),),  # declares 17914 body bytes, sends 8599, then ends
    ("100", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("compat_obs_fold", "default"): (refused(400),),  # obs-fold
    ("compat_obs_fold_huge", "default"): (refused(400),),  # obs-fold
    ("padding_01", "default"): (ok("GET", "/"),),
    ("rfc9110_body_framing_get_cl_nonzero_01", "default"): (ok("GET", "/foo", body=b"hello"),),
    ("rfc9110_body_framing_get_cl_zero_01", "default"): (ok("GET", "/foo"),),
    ("rfc9110_body_framing_http10_cl_01", "default"): (ok("POST", "/foo", body=b"hello"),),
    ("rfc9110_field_name_special_chars_01", "default"): (ok("GET", "/foo"),),
    ("rfc9110_field_value_htab_trim_01", "default"): (ok("GET", "/foo"),),
    ("rfc9110_field_value_obs_text_01", "default"): (ok("GET", "/foo"),),
    ("rfc9112_chunked_ext_quoted_01", "default"): (ok("POST", "/upload", body=b"hello"),),
    ("rfc9112_chunked_size_leading_zeros_01", "default"): (ok("POST", "/upload", body=b"hello"),),
    ("rfc9112_chunked_size_uppercase_hex_01", "default"): (ok("POST", "/upload", body=b"0123456789"),),
    ("rfc9112_smuggle_gzip_chunked_01", "default"): (refused(501),),  # Transfer-Encoding: gzip, chunked
    ("rfc9112_smuggle_te_identity_chunked_01", "default"): (refused(501),),  # identity, chunked
    ("rfc9112_target_absolute_01", "default"): (ok("GET", "/foo", "q=1"),),
    ("rfc9112_target_absolute_https_01", "default"): (ok("GET", "/foo"),),
    ("rfc9112_target_absolute_ipv6_01", "default"): (ok("GET", "/foo"),),
    ("rfc9112_target_absolute_userinfo_01", "default"): (refused(400),),  # userinfo in the target
    ("rfc9112_target_asterisk_options_01", "default"): (ok("OPTIONS", "*"),),
    ("rfc9112_target_authority_connect_01", "default"): (refused(501),),  # CONNECT
    ("rfc9112_target_authority_ipv6_01", "default"): (refused(501),),  # CONNECT
}

# Our expected status for each invalid file: one refusal, then the connection
# closes. A set where the request has several faults whose statuses differ and
# the RFCs do not say which to report first. The few that are invalid only
# under a gunicorn test limit are replayed under the mirrored limit too, and at
# our own limits they are ordinary requests (the corpus README: "judge those
# against our own limits"), listed in DIFFERENCES.md.
INVALID: dict[tuple[str, str], tuple[Reply | frozenset[int], ...]] = {
    ("001", "default"): (refused(400),),  # the head ends before its blank line
    ("002", "default"): (refused(400),),  # no request target
    ("003", "default"): (refused(400),),  # LF instead of SP in the request line
    ("003b", "default"): (refused(400),),  # ':' in the method
    ("003c", "default"): (refused(400),),  # method "-bl"
    ("004", "default"): (refused(400),),  # FTP/1.1
    ("005", "default"): (refused(400),),  # NUL in a field name
    ("006", "default"): (ok("PUT", _target("invalid/006.http")),),  # a 4112-byte request line: within 8190
    ("006", "line-4094"): (refused(414),),
    ("007", "default"): (refused(431),),  # an 8203-byte field line
    ("008", "default"): (ok("PUT", "/stuff/here", "foo=bar"),),  # 8189-byte field lines: within 8190
    ("008", "field-8188"): (refused(431),),
    ("009", "default"): (refused(431),),  # 103 header fields
    ("010", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("010", "field-8"): (refused(431),),
    ("011", "default"): (ok("GET", "/test"),),  # 3 fields: within 100
    ("011", "fields-2"): (refused(431),),
    ("012", "default"): (ok("GET", "/test"),),  # a 97-byte field line: within 8190
    ("012", "field-96"): (refused(431),),
    ("013", "default"): (refused(400),),  # obs-fold
    ("014", "default"): (refused(400),),  # Content-Length: -1
    ("015", "default"): (refused(400),),  # Content-Length: bla-bla-bla
    ("016", "default"): (refused(400),),  # target "s://]ufd/:"
    ("017", "default"): (refused(400),),  # HTTP/1.1 without Host (its 8189-byte field is within 8190)
    ("017", "field-8188"): (refused(431),),
    ("018", "default"): (refused(400),),  # HTTP/111
    ("019", "default"): (refused(400),),  # HTTP/1.1 without Host
    ("020", "default"): (refused(400),),  # "Content-Length : 3"
    ("021", "default"): (refused(400),),  # two different Content-Length values
    ("022", "default"): (refused(400),),  # Content-Length: -0
    ("023", "default"): (refused(400),),  # Content-Length: 0_1
    ("024", "default"): (refused(400),),  # Content-Length: +1
    ("040", "default"): (refused(400),),  # Transfer_Encoding / Content_Length
    ("041", "default"): (refused(400),),  # two Content-Type fields
    ("042", "default"): (refused(400),),  # two Host fields
    ("chunked_01", "default"): (refused(400),),  # no Host; chunk size "6_0"
    ("chunked_02", "default"): (refused(400),),  # Content-Length with Transfer-Encoding
    ("chunked_03", "default"): (refused(400),),  # chunked not last / twice in one field (RFC 9112 §6.3)
    ("chunked_04", "default"): (frozenset({400, 501}),),  # no Host; identity (501); chunked twice (400)
    ("chunked_05", "default"): (refused(400),),  # Transfer-Encoding in HTTP/1.0
    ("chunked_06", "default"): (refused(400),),  # chunked not last (RFC 9112 §6.3: MUST 400)
    ("chunked_07", "default"): (refused(400),),  # Transfer_Encoding
    ("chunked_08", "default"): (refused(400),),  # chunked not last (RFC 9112 §6.3: MUST 400)
    ("chunked_09", "default"): (refused(400),),  # no Host; "0 " chunk size
    ("chunked_10", "default"): (refused(400),),  # no Host; " 0" chunk size
    ("chunked_11", "default"): (refused(400),),  # no Host; bare LF after the chunk size
    ("chunked_12", "default"): (refused(400),),  # no Host; no chunk size
    ("chunked_13", "default"): (refused(400),),  # no Host; empty chunk size
    ("chunked_14", "default"): (refused(400),),  # no Host; bare CR in a chunk extension
    ("invalid_field_value_01", "default"): (refused(400),),  # bare LF ends a field line
    ("limit_header_default_01", "default"): (ok("GET", "/"),),  # an 8190-byte field line: within 8190
    ("limit_header_default_01", "field-8188"): (refused(431),),
    ("nonascii_01", "default"): (refused(400),),  # non-ASCII in the method
    ("nonascii_02", "default"): (refused(400),),  # non-ASCII in the method
    ("nonascii_03", "default"): (refused(400),),  # non-ASCII in a field name
    ("nonascii_04", "default"): (refused(400),),  # non-ASCII in a field name
    ("obs_fold_01", "default"): (refused(400),),  # obs-fold
    ("prefix_01", "default"): (refused(400),),  # NUL in the method
    ("prefix_02", "default"): (refused(400),),  # NUL in the method
    ("prefix_03", "default"): (refused(400),),  # Content-Length: 0 1
    ("prefix_04", "default"): (refused(400),),  # Content-Length: 3 1
    ("prefix_05", "default"): (refused(400),),  # method "GET:"
    ("prefix_06", "default"): (refused(400),),  # a malformed HTTP-version
    ("rfc9110_field_value_ctl_bel_01", "default"): (refused(400),),  # BEL in a field value
    ("rfc9110_field_value_ctl_del_01", "default"): (refused(400),),  # DEL in a field value
    ("rfc9110_trailer_forbidden_cl_01", "default"): (refused(400),),  # Content-Length in a trailer
    ("rfc9110_trailer_forbidden_host_01", "default"): (refused(400),),  # Host in a trailer
    ("rfc9110_trailer_forbidden_te_01", "default"): (refused(400),),  # Transfer-Encoding in a trailer
    ("rfc9112_chunked_missing_final_crlf_01", "default"): (refused(400),),  # ends before the last CRLF
    ("rfc9112_chunked_size_minus_sign_01", "default"): (refused(400),),  # chunk size "-5"
    ("rfc9112_chunked_size_plus_sign_01", "default"): (refused(400),),  # chunk size "+5"
    ("rfc9112_smuggle_cl_list_form_01", "default"): (refused(400),),  # Content-Length: 5, 5
    ("rfc9112_smuggle_cl_te_chunked_01", "default"): (refused(400),),  # Content-Length and chunked
    ("rfc9112_target_asterisk_non_options_01", "default"): (refused(400),),  # GET *
    ("rfc9112_target_authority_non_connect_01", "default"): (refused(400),),  # GET example.com:443
    ("rfc9112_target_relative_01", "default"): (refused(400),),  # GET foo/bar
    ("version_01", "default"): (refused(400),),  # HTTP/0.99: not an HTTP-version
    ("version_02", "default"): (refused(505),),  # HTTP/2.0 over HTTP/1.1 framing
}


# Sending and reading ------------------------------------------------------------


def pieces(data: bytes, mode: str) -> list[bytes]:
    """The data cut as a mode says: whole, one byte at a time, or seeded random sizes."""
    if mode == "whole":
        return [data]
    if mode == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(f"{mode}:{len(data)}")
    upper = max(1, min(512, len(data) // 3))
    cut, position = [], 0
    while position < len(data):
        size = rng.randint(1, upper)
        cut.append(data[position : position + size])
        position += size
    return cut


def exchange(gateway: Gateway, data: bytes, mode: str) -> tuple[Answer, int]:
    """Send data as mode says, half-close, read until the server closes; also our local port."""
    sock = gateway.connect()
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = sock.getsockname()[1]
        pause = 0.0 if mode == "whole" else PIECE_PAUSE
        send_error = ""
        try:
            for piece in pieces(data, mode):
                sock.sendall(piece)
                if pause:
                    time.sleep(pause)
            sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            # The server closed without reading what we sent (RFC 9112 §9.6 asks it
            # to half-close and keep reading instead); its answer may still be here.
            send_error = exc.strerror or type(exc).__name__
        received, ending = read_until_close(sock)
    finally:
        sock.close()
    replies, leftover = parse_replies(received)
    return Answer(tuple(replies), ending, leftover, send_error), port


def read_until_close(sock: socket.socket) -> tuple[bytes, str]:
    chunks: list[bytes] = []
    deadline = time.monotonic() + READ_TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return b"".join(chunks), f"open after {READ_TIMEOUT}s"
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return b"".join(chunks), "reset"
        if not data:
            return b"".join(chunks), "closed"
        chunks.append(data)


def parse_replies(data: bytes) -> tuple[list[Reply], bytes]:
    """Split what the server sent into responses (Content-Length, chunked, or to the end)."""
    replies: list[Reply] = []
    rest = data
    while rest:
        head, found, after = rest.partition(b"\r\n\r\n")
        if not found or not head.startswith(b"HTTP/1."):
            return replies, rest
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" in headers:
            length = int(headers[b"content-length"])
            if len(after) < length:
                return replies, rest
            body, rest = after[:length], after[length:]
        elif headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            decoded = _dechunk(after)
            if decoded is None:
                return replies, rest
            body, rest = decoded
        else:
            body, rest = after, b""
        replies.append(_reply(status, headers, body))
    return replies, b""


def _dechunk(data: bytes) -> tuple[bytes, bytes] | None:
    body, rest = b"", data
    while True:
        size_line, found, rest = rest.partition(b"\r\n")
        if not found:
            return None
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            _, found, rest = rest.partition(b"\r\n")  # no trailers from our server
            return (body, rest) if found else None
        body, rest = body + rest[:size], rest[size + 2 :]


def _reply(status: int, headers: dict[bytes, bytes], body: bytes) -> Reply:
    if status == 200 and headers.get(b"content-type") == b"application/json":
        seen = json.loads(body)
        return Reply(200, seen["method"], seen["path"], seen["query_string"], seen["body"].encode("latin-1"))
    return Reply(status)


# Servers --------------------------------------------------------------------------


@dataclass
class Server:
    """One running gateway with a limit configuration, and a tally of what clients saw."""

    gateway: Gateway
    journal: Path
    tally: Counter[str] = field(default_factory=Counter)

    def journal_size(self) -> int:
        return self.journal.stat().st_size if self.journal.exists() else 0

    def journal_since(self, offset: int, port: int) -> list[dict[str, object]]:
        if not self.journal.exists():
            return []
        with self.journal.open("rb") as handle:
            handle.seek(offset)
            lines = handle.read().decode("utf-8").splitlines()
        return [entry for entry in map(json.loads, lines) if entry["port"] == port]


class Servers:
    """Starts one gateway per limit configuration, on first use, for the whole module."""

    def __init__(self, stack: contextlib.ExitStack, directory: Path) -> None:
        self.stack = stack
        self.directory = directory
        self.running: dict[str, Server] = {}

    def get(self, config: str) -> Server:
        if config not in self.running:
            journal = self.directory / f"{config}.journal"
            gateway = self.stack.enter_context(
                run_gateway(APP, config_text=CONFIGS[config], env={"CORPUS_JOURNAL": str(journal)})
            )
            self.running[config] = Server(gateway, journal)
        return self.running[config]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    with contextlib.ExitStack() as stack:
        yield Servers(stack, tmp_path_factory.mktemp("corpus"))


# The replay -------------------------------------------------------------------------


def _matches(answer: Answer, expected: tuple[Reply | frozenset[int], ...]) -> bool:
    if answer.ending != "closed" or answer.leftover or answer.send_error or len(answer.replies) != len(expected):
        return False
    for reply, want in zip(answer.replies, expected, strict=True):
        if isinstance(want, frozenset):
            if reply.method is not None or reply.status not in want:
                return False
        elif reply != want:
            return False
    return True


def replay(server: Server, name: str, expected: tuple[Reply | frozenset[int], ...]) -> None:
    data = load(GUNICORN / f"{name}.http")
    answers: dict[str, Answer] = {}
    reached: dict[str, list[dict[str, object]]] = {}
    for mode in MODES:
        offset = server.journal_size()
        answer, port = exchange(server.gateway, data, mode)
        answers[mode] = answer
        reached[mode] = server.journal_since(offset, port)
        for reply in answer.replies:
            server.tally["app" if reply.method is not None else "refused"] += 1

    table = "\n".join(f"  {mode:>9}: {answer!r}" for mode, answer in answers.items())
    wrong = [mode for mode, answer in answers.items() if not _matches(answer, expected)]
    assert not wrong, f"{name}: expected {list(expected)} then close; got:\n{table}"

    # The app received in full exactly the requests it answered: none that was refused.
    for mode, answer in answers.items():
        answered = [(r.method, r.path) for r in answer.replies if r.method is not None]
        completed = [(e["method"], e["path"]) for e in reached[mode] if e["event"] == "complete"]
        assert completed == answered, f"{name} ({mode}): the app received {completed}, but answered {answered}"


def _ids(cases: dict[tuple[str, str], object]) -> list[str]:
    return [name if config == "default" else f"{name}[{config}]" for name, config in cases]


@pytest.mark.parametrize(("name", "config"), list(VALID), ids=_ids(VALID))
def test_valid_request(servers: Servers, name: str, config: str) -> None:
    replay(servers.get(config), f"valid/{name}", VALID[name, config])


@pytest.mark.parametrize(("name", "config"), list(INVALID), ids=_ids(INVALID))
def test_invalid_request(servers: Servers, name: str, config: str) -> None:
    expected = INVALID[name, config]
    replay(servers.get(config), f"invalid/{name}", expected)


def test_every_corpus_file_has_an_expectation() -> None:
    for kind, table in (("valid", VALID), ("invalid", INVALID)):
        on_disk = {path.stem for path in corpus_files(kind)}
        assert on_disk, f"no corpus files under {GUNICORN / kind}"
        assert on_disk == {name for name, _ in table}, f"{kind}: files and table differ"


_STATUS_200 = re.compile(r'\] "[^"]*" 200 ')


def test_access_log_agrees_with_what_clients_saw(servers: Servers) -> None:
    """Runs last: each server logged one line per answer, app lines for the app's answers only."""
    if not servers.running:
        pytest.skip("no corpus replay ran in this session")
    for config, server in servers.running.items():
        expected_lines = server.tally["app"] + server.tally["refused"]
        deadline = time.monotonic() + 5.0
        while True:
            lines = server.gateway.stdout().splitlines()
            if len(lines) >= expected_lines or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        # A refusal is logged as "-" when the head was refused, with its request line when its body was.
        refused_lines = [line for line in lines if not _STATUS_200.search(line)]
        app_lines = [line for line in lines if _STATUS_200.search(line)]
        assert len(refused_lines) == server.tally["refused"], f"{config}: {len(refused_lines)} refused lines"
        assert len(app_lines) == server.tally["app"], f"{config}: {len(app_lines)} app lines"
        assert all('] "-" ' not in line for line in app_lines), f"{config}: {app_lines[:3]}"
