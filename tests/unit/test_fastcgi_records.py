"""The FastCGI record codec without sockets: exact bytes out, records back, every refusal.

Records the backend would send are built here by hand from the header layout
of the specification (§3.3), with any padding, so the reader is checked
against the format and not only against our own encoder.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

import pytest

from adapters import _fastcgi_records as fcgi
from adapters._fastcgi_records import ProtocolError, Record, RecordReader

HEADER = struct.Struct("!BBHHBB")
LARGEST_RECORD = 8 + fcgi.MAX_CONTENT + 255


def raw(record_type: int, request_id: int, content: bytes = b"", padding: int = 0, version: int = 1) -> bytes:
    """A record as a backend could send it, padding bytes deliberately not zero."""
    return HEADER.pack(version, record_type, request_id, len(content), padding, 0) + content + b"\xaa" * padding


def split(stream: bytes) -> list[tuple[int, int, int, int, bytes]]:
    """(type, request id, content length, padding length, content) of each record, walking the headers."""
    found = []
    offset = 0
    while offset < len(stream):
        version, record_type, request_id, length, padding, _ = HEADER.unpack_from(stream, offset)
        assert version == 1
        content = stream[offset + 8 : offset + 8 + length]
        found.append((record_type, request_id, length, padding, content))
        offset += 8 + length + padding
    assert offset == len(stream)
    return found


def read_all(stream: bytes) -> list[Record]:
    reader = RecordReader()
    records = reader.feed(stream)
    reader.eof()
    return records


def long_pairs() -> list[tuple[bytes, bytes]]:
    return [
        (b"SCRIPT_FILENAME", b"/srv/www/index.php"),
        (b"N" * 200, b"v"),
        (b"HTTP_COOKIE", b"c" * 200),
        (b"", b""),
        (b"HTTP_X_BIG", bytes(range(256)) * 273 + b"tail"),  # 69,892 bytes
        (b"L" * 70_000, b"V" * 70_000),
        (b"QUERY_STRING", b""),
    ]


# --- Bytes we send ---------------------------------------------------------------


def test_begin_request_bytes() -> None:
    assert fcgi.begin_request(1, True) == bytes([1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0])
    assert fcgi.begin_request(0x0102, False) == bytes([1, 1, 1, 2, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])


def test_abort_and_stdin_end_are_empty_records() -> None:
    assert fcgi.abort_request(7) == bytes([1, 2, 0, 7, 0, 0, 0, 0])
    assert fcgi.stdin_end(65535) == bytes([1, 5, 255, 255, 0, 0, 0, 0])


def test_short_pair_known_bytes() -> None:
    assert fcgi.encode_pairs([(b"SCRIPT_NAME", b"/status")]) == b"\x0b\x07SCRIPT_NAME/status"
    assert fcgi.encode_pairs([]) == b""


@pytest.mark.parametrize(
    ("value_length", "prefix"),
    [
        (0, b"\x01\x00"),
        (127, b"\x01\x7f"),
        (128, b"\x01\x80\x00\x00\x80"),
        (200, b"\x01\x80\x00\x00\xc8"),
        (70_000, b"\x01\x80\x01\x11\x70"),
    ],
)
def test_value_length_one_or_four_bytes(value_length: int, prefix: bytes) -> None:
    encoded = fcgi.encode_pairs([(b"a", b"x" * value_length)])
    assert encoded == prefix + b"a" + b"x" * value_length
    assert fcgi.decode_pairs(encoded) == [(b"a", b"x" * value_length)]


@pytest.mark.parametrize(("name_length", "prefix"), [(127, b"\x7f\x00"), (128, b"\x80\x00\x00\x80\x00")])
def test_name_length_one_or_four_bytes(name_length: int, prefix: bytes) -> None:
    encoded = fcgi.encode_pairs([(b"n" * name_length, b"")])
    assert encoded == prefix + b"n" * name_length
    assert fcgi.decode_pairs(encoded) == [(b"n" * name_length, b"")]


class Huge(bytes):
    """Claims a length we cannot afford to allocate in a test."""

    length: int

    def __new__(cls, length: int) -> Huge:
        made = super().__new__(cls, b"z")
        made.length = length
        return made

    def __len__(self) -> int:
        return self.length


def test_lengths_up_to_2_31_minus_1() -> None:
    assert fcgi.encode_pairs([(b"a", Huge(2**31 - 1))]).startswith(b"\x01\xff\xff\xff\xffa")
    with pytest.raises(ValueError, match="value of 2147483648 bytes"):
        fcgi.encode_pairs([(b"a", Huge(2**31))])
    with pytest.raises(ValueError, match="name of 2147483648 bytes"):
        fcgi.encode_pairs([(Huge(2**31), b"a")])
    with pytest.raises(ValueError, match="name"):
        fcgi.params(1, [(Huge(2**31), b"")])


def test_pairs_round_trip() -> None:
    assert fcgi.decode_pairs(fcgi.encode_pairs(long_pairs())) == long_pairs()


def test_decode_accepts_the_four_byte_form_of_a_short_length() -> None:
    assert fcgi.decode_pairs(b"\x80\x00\x00\x01\x80\x00\x00\x02abc") == [(b"a", b"bc")]


def test_params_spanning_several_records() -> None:
    stream = fcgi.params(9, long_pairs())
    records = split(stream)
    assert len(records) >= 4
    assert all(record_type == fcgi.PARAMS and request_id == 9 for record_type, request_id, *_ in records)
    assert all(0 < length <= fcgi.MAX_CONTENT for _, _, length, _, _ in records[:-1])
    assert records[-1][2] == 0  # the empty record that ends the stream
    content = b"".join(record[4] for record in records)
    assert content == fcgi.encode_pairs(long_pairs())
    assert fcgi.decode_pairs(content) == long_pairs()


def test_params_straddling_pair_reassembles_through_the_reader() -> None:
    pairs = [(b"A" * 40_000, b"B" * 40_000)]  # the pair crosses the first record's end
    records = read_all(fcgi.params(3, pairs))
    assert [len(record.content) for record in records] == [65535, 80_008 - 65535, 0]
    assert fcgi.decode_pairs(b"".join(record.content for record in records)) == pairs


def test_params_without_pairs_is_only_the_end_of_the_stream() -> None:
    assert fcgi.params(1, []) == bytes([1, 4, 0, 1, 0, 0, 0, 0])


def test_params_takes_any_iterable() -> None:
    assert fcgi.params(2, iter([(b"a", b"b")])) == fcgi.params(2, [(b"a", b"b")])


def test_stdin_splits_200000_bytes_into_four_records() -> None:
    body = random.Random(1).randbytes(200_000)
    records = split(fcgi.stdin(5, body))
    assert [(t, r, length) for t, r, length, _, _ in records] == [
        (fcgi.STDIN, 5, 65535),
        (fcgi.STDIN, 5, 65535),
        (fcgi.STDIN, 5, 65535),
        (fcgi.STDIN, 5, 200_000 - 3 * 65535),
    ]
    assert b"".join(record[4] for record in records) == body


def test_stdin_of_nothing_is_nothing() -> None:
    assert fcgi.stdin(1, b"") == b""
    assert fcgi.stdin(1, memoryview(b"")) == b""


def test_stdin_takes_a_memoryview() -> None:
    data = bytearray(b"0123456789")
    assert fcgi.stdin(1, memoryview(data)[2:5]) == fcgi.stdin(1, b"234")
    data += b"!"  # no view of the caller's buffer is left behind


def test_stdin_exactly_one_full_record() -> None:
    records = split(fcgi.stdin(1, b"x" * fcgi.MAX_CONTENT))
    assert [(length, padding) for _, _, length, padding, _ in records] == [(65535, 1)]


def test_get_values_uses_the_null_request_id() -> None:
    names = [b"FCGI_MAX_CONNS", b"FCGI_MAX_REQS", b"FCGI_MPXS_CONNS"]
    [record] = read_all(fcgi.get_values(names))
    assert (record.type, record.request_id) == (fcgi.GET_VALUES, 0)
    assert fcgi.decode_pairs(record.content) == [(name, b"") for name in names]


def test_get_values_must_fit_in_one_record() -> None:
    with pytest.raises(ValueError, match="one record"):
        fcgi.get_values([b"n" * 70_000])


def every_encoding() -> list[bytes]:
    return [
        fcgi.begin_request(1, True),
        fcgi.params(1, long_pairs()),
        fcgi.params(1, [(b"a", b"b" * n) for n in range(20)]),
        *(fcgi.stdin(1, b"s" * n) for n in (1, 7, 8, 9, 65535, 65536, 200_000)),
        fcgi.stdin_end(1),
        fcgi.abort_request(1),
        fcgi.get_values([b"FCGI_MPXS_CONNS"]),
    ]


@pytest.mark.parametrize("stream", every_encoding(), ids=range(len(every_encoding())))
def test_every_record_we_send_is_aligned_to_8_bytes(stream: bytes) -> None:
    assert len(stream) % 8 == 0
    for _, _, length, padding, _ in split(stream):
        assert (length + padding) % 8 == 0 and padding < 8


def test_what_we_send_reads_back() -> None:
    stream = b"".join(every_encoding())
    records = read_all(stream)
    assert len(records) == sum(len(split(part)) for part in every_encoding())
    assert records[0] == Record(fcgi.BEGIN_REQUEST, 1, b"\x00\x01\x01\x00\x00\x00\x00\x00")


RequestFunction = Callable[[int], bytes]
REQUEST_FUNCTIONS: dict[str, RequestFunction] = {
    "begin_request": lambda request_id: fcgi.begin_request(request_id, True),
    "params": lambda request_id: fcgi.params(request_id, [(b"a", b"b")]),
    "stdin": lambda request_id: fcgi.stdin(request_id, b"body"),
    "stdin_empty": lambda request_id: fcgi.stdin(request_id, b""),
    "stdin_end": fcgi.stdin_end,
    "abort_request": fcgi.abort_request,
}


@pytest.mark.parametrize("function", REQUEST_FUNCTIONS.values(), ids=REQUEST_FUNCTIONS.keys())
@pytest.mark.parametrize("request_id", [0, -1, 65536, 1 << 20])
def test_bad_request_id(function: RequestFunction, request_id: int) -> None:
    with pytest.raises(ValueError, match=f"request id {request_id} is outside 1..65535"):
        function(request_id)


@pytest.mark.parametrize("function", REQUEST_FUNCTIONS.values(), ids=REQUEST_FUNCTIONS.keys())
@pytest.mark.parametrize("request_id", [1, 65535])
def test_request_id_limits_are_allowed(function: RequestFunction, request_id: int) -> None:
    assert all(found[1] == request_id for found in split(function(request_id)))


# --- Bytes we receive ------------------------------------------------------------


def backend_stream() -> bytes:
    """A conversation in the backend's direction, with the paddings other implementations use."""
    return b"".join(
        [
            raw(fcgi.GET_VALUES_RESULT, 0, fcgi.encode_pairs([(b"FCGI_MPXS_CONNS", b"0")]), padding=3),
            raw(fcgi.STDOUT, 1, b"Status: 200 OK\r\nContent-Type: text/html\r\n\r\n", padding=0),
            raw(fcgi.STDERR, 1, b"PHP Notice: something", padding=255),
            raw(fcgi.STDOUT, 1, b"x" * 65535, padding=1),
            raw(fcgi.STDOUT, 2, b"", padding=7),
            raw(fcgi.STDERR, 1, b""),
            raw(fcgi.STDOUT, 1, b""),
            raw(fcgi.UNKNOWN_TYPE, 0, bytes([42, 0, 0, 0, 0, 0, 0, 0])),
            raw(fcgi.END_REQUEST, 1, struct.pack("!IB3x", 0, fcgi.REQUEST_COMPLETE), padding=16),
        ]
    )


def expected_records() -> list[Record]:
    return [
        Record(fcgi.GET_VALUES_RESULT, 0, b"\x0f\x01FCGI_MPXS_CONNS0"),
        Record(fcgi.STDOUT, 1, b"Status: 200 OK\r\nContent-Type: text/html\r\n\r\n"),
        Record(fcgi.STDERR, 1, b"PHP Notice: something"),
        Record(fcgi.STDOUT, 1, b"x" * 65535),
        Record(fcgi.STDOUT, 2, b""),
        Record(fcgi.STDERR, 1, b""),
        Record(fcgi.STDOUT, 1, b""),
        Record(fcgi.UNKNOWN_TYPE, 0, bytes([42, 0, 0, 0, 0, 0, 0, 0])),
        Record(fcgi.END_REQUEST, 1, b"\x00" * 8),
    ]


def feed_in(pieces: Sequence[bytes | bytearray | memoryview]) -> list[Record]:
    reader = RecordReader()
    records = [record for piece in pieces for record in reader.feed(piece)]
    reader.eof()
    return records


def test_reader_at_once() -> None:
    assert read_all(backend_stream()) == expected_records()


def test_reader_byte_by_byte_gives_the_same_records() -> None:
    stream = backend_stream()
    assert feed_in([stream[i : i + 1] for i in range(len(stream))]) == expected_records()


@pytest.mark.parametrize("size", [2, 7, 8, 9, 63, 4096, 65536])
def test_reader_in_fixed_pieces(size: int) -> None:
    stream = backend_stream()
    assert feed_in([stream[i : i + size] for i in range(0, len(stream), size)]) == expected_records()


def test_reader_takes_bytearray_and_memoryview() -> None:
    stream = backend_stream()
    half = len(stream) // 2
    assert feed_in([bytearray(stream[:half]), memoryview(stream)[half:]]) == expected_records()


def test_reader_records_do_not_alias_a_reused_buffer() -> None:
    buffer = bytearray(raw(fcgi.STDOUT, 1, b"hello"))
    [record] = RecordReader().feed(memoryview(buffer))
    buffer[8:13] = b"XXXXX"
    assert record.content == b"hello"


def test_reader_feeding_nothing() -> None:
    reader = RecordReader()
    assert reader.feed(b"") == []
    reader.eof()


def test_ten_megabytes_of_stdout_in_random_pieces() -> None:
    """Linear time: only part of one record is ever held, whatever the chunking."""
    rng = random.Random(20240501)
    body = rng.randbytes(10 * 1024 * 1024)
    parts = []
    offset = 0
    while offset < len(body):
        length = rng.randint(1, fcgi.MAX_CONTENT)
        parts.append(raw(fcgi.STDOUT, 1, body[offset : offset + length], padding=rng.randint(0, 255)))
        offset += length
    parts.append(raw(fcgi.STDOUT, 1, b""))
    stream = b"".join(parts)
    reader = RecordReader()
    received = []
    offset = 0
    while offset < len(stream):
        size = rng.randint(1, 128 * 1024)
        received += reader.feed(stream[offset : offset + size])
        assert reader.buffered < LARGEST_RECORD
        offset += size
    reader.eof()
    assert all((record.type, record.request_id) == (fcgi.STDOUT, 1) for record in received)
    assert received[-1].content == b""
    assert b"".join(record.content for record in received) == body


def test_end_request_status() -> None:
    assert fcgi.end_request_status(struct.pack("!IB3x", 0, fcgi.REQUEST_COMPLETE)) == (0, fcgi.REQUEST_COMPLETE)
    assert fcgi.end_request_status(struct.pack("!IB3x", 0xFFFFFFFF, fcgi.UNKNOWN_ROLE)) == (4294967295, 3)
    assert fcgi.end_request_status(bytes([0, 0, 1, 2, fcgi.OVERLOADED, 9, 9, 9, 9])) == (258, 2)


@pytest.mark.parametrize("length", [0, 5, 7])
def test_end_request_status_too_short(length: int) -> None:
    with pytest.raises(ProtocolError, match=f"END_REQUEST content of {length} bytes"):
        fcgi.end_request_status(bytes(length))


def test_constants_are_the_specification_numbers() -> None:
    types = [
        fcgi.BEGIN_REQUEST,
        fcgi.ABORT_REQUEST,
        fcgi.END_REQUEST,
        fcgi.PARAMS,
        fcgi.STDIN,
        fcgi.STDOUT,
        fcgi.STDERR,
        fcgi.DATA,
        fcgi.GET_VALUES,
        fcgi.GET_VALUES_RESULT,
        fcgi.UNKNOWN_TYPE,
    ]
    assert types == list(range(1, 12))
    assert (fcgi.VERSION, fcgi.RESPONDER, fcgi.KEEP_CONN, fcgi.MAX_CONTENT) == (1, 1, 1, 65535)
    assert (fcgi.REQUEST_COMPLETE, fcgi.CANT_MPX_CONN, fcgi.OVERLOADED, fcgi.UNKNOWN_ROLE) == (0, 1, 2, 3)


def test_record_is_frozen() -> None:
    record = Record(fcgi.STDOUT, 1, b"")
    with pytest.raises(AttributeError):
        record.content = b"x"  # type: ignore[misc]


# --- Refusals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "message"),
    [
        (raw(fcgi.STDOUT, 1, b"hi", version=0), "version 0, expected 1"),
        (raw(fcgi.STDOUT, 1, b"hi", version=2), "version 2, expected 1"),
        (b"HTTP/1.1 200 OK\r\n\r\n", "version 72, expected 1"),
        (raw(0, 1, b"hi"), "unknown type 0"),
        (raw(12, 1, b"hi"), "unknown type 12"),
        (raw(255, 0), "unknown type 255"),
        (raw(fcgi.STDOUT, 0, b"hi"), "STDOUT record for the null request id 0"),
        (raw(fcgi.END_REQUEST, 0, bytes(8)), "END_REQUEST record for the null request id 0"),
        (raw(fcgi.BEGIN_REQUEST, 0, bytes(8)), "BEGIN_REQUEST record for the null request id 0"),
    ],
)
def test_reader_refuses(stream: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        RecordReader().feed(stream)


def test_reader_refuses_a_bad_header_before_its_content_arrives() -> None:
    reader = RecordReader()
    assert reader.feed(raw(fcgi.STDOUT, 1, b"ok")) == [Record(fcgi.STDOUT, 1, b"ok")]
    with pytest.raises(ProtocolError, match="version 9"):
        reader.feed(raw(fcgi.STDOUT, 1, b"x" * 1000, version=9)[:8])


def test_reader_refuses_a_bad_record_after_good_ones_in_the_same_piece() -> None:
    with pytest.raises(ProtocolError, match="unknown type 99"):
        RecordReader().feed(raw(fcgi.STDOUT, 1, b"ok") + raw(99, 1))


def test_reader_takes_management_records_for_the_null_request_id() -> None:
    stream = raw(fcgi.GET_VALUES, 0) + raw(fcgi.GET_VALUES_RESULT, 0) + raw(fcgi.UNKNOWN_TYPE, 0, bytes(8))
    assert [record.type for record in read_all(stream)] == [fcgi.GET_VALUES, fcgi.GET_VALUES_RESULT, fcgi.UNKNOWN_TYPE]


def test_reader_bounds_what_it_holds() -> None:
    reader = RecordReader(max_buffer=100)
    stream = raw(fcgi.STDOUT, 1, b"x" * 1000)
    assert reader.feed(stream[:100]) == []
    with pytest.raises(ProtocolError, match="101 bytes without completing a record"):
        reader.feed(stream[100:101])


def test_reader_bound_counts_only_an_incomplete_record() -> None:
    reader = RecordReader(max_buffer=100)
    records = reader.feed(raw(fcgi.STDOUT, 1, b"x" * 1000) * 3 + raw(fcgi.STDOUT, 1, b"y" * 50))
    assert len(records) == 4
    reader.eof()


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(1, id="inside-the-header"),
        pytest.param(8, id="after-the-header"),
        pytest.param(10, id="inside-the-content"),
        pytest.param(13, id="before-the-padding"),
        pytest.param(15, id="inside-the-padding"),
    ],
)
def test_eof_in_the_middle_of_a_record(cut: int) -> None:
    reader = RecordReader()
    assert reader.feed(raw(fcgi.STDOUT, 1, b"first") + raw(fcgi.STDOUT, 1, b"hello", padding=3)[:cut]) == [
        Record(fcgi.STDOUT, 1, b"first")
    ]
    with pytest.raises(ProtocolError, match=f"ended in the middle of a record \\({cut} bytes"):
        reader.eof()


def test_eof_between_records_is_fine() -> None:
    reader = RecordReader()
    reader.feed(raw(fcgi.STDOUT, 1, b"all"))
    reader.eof()
    RecordReader().eof()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x05", "before its lengths"),
        (b"\x80\x00\x00", "inside a four-byte length"),
        (b"\x01\x80\x00", "inside a four-byte length"),
        (b"\x03\x01ab", "needs 4 bytes, 2 remain"),
        (b"\x01\x03abc", "needs 4 bytes, 3 remain"),
        (b"\x01\x01ab\x01\x80\x00\x00\x80a", "needs 129 bytes, 1 remain"),
        (b"\x80\x00\x00\x01\xff\xff\xff", "cut off inside a four-byte length"),
    ],
)
def test_decode_pairs_refuses_truncation(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        fcgi.decode_pairs(data)


def test_decode_pairs_of_nothing() -> None:
    assert fcgi.decode_pairs(b"") == []


# --- A whole response in one read (the php handler's taskless path) -------------


def php_page(protocol_status: int = fcgi.REQUEST_COMPLETE, request_id: int = 1) -> list[bytes]:
    """A page as php-cgi writes it: output in two records, a notice, the empty STDOUT, END_REQUEST; odd paddings."""
    return [
        raw(fcgi.STDOUT, request_id, b"Content-type: text/html\r\n\r\n", padding=5),
        raw(fcgi.STDERR, request_id, b"PHP Notice: x\n", padding=2),
        raw(fcgi.STDOUT, request_id, b"<p>hello</p>"),
        raw(fcgi.STDOUT, request_id, b""),
        raw(fcgi.END_REQUEST, request_id, struct.pack("!IB3x", 0, protocol_status), padding=8),
    ]


def test_a_whole_response_gives_its_output_and_its_stderr() -> None:
    assert fcgi.whole_response(b"".join(php_page()), 1) == (
        b"Content-type: text/html\r\n\r\n<p>hello</p>",
        b"PHP Notice: x\n",
    )


@pytest.mark.parametrize("padding", [0, 3])
@pytest.mark.parametrize("request_id", [1, 2])
def test_php_cgis_usual_page_of_one_stdout_record_then_the_end(padding: int, request_id: int) -> None:
    """What php-cgi writes for a small page (checked with php-cgi 8.2): its output, then END_REQUEST."""
    page = b"Content-type: text/html\r\n\r\nhi"
    end = raw(fcgi.END_REQUEST, request_id, struct.pack("!IB3x", 0, fcgi.REQUEST_COMPLETE))
    assert fcgi.whole_response(raw(fcgi.STDOUT, request_id, page, padding) + end, request_id) == (page, b"")
    two = raw(fcgi.STDOUT, request_id, b"a") + raw(fcgi.STDOUT, request_id, b"b", padding) + end
    assert fcgi.whole_response(two, request_id) == (b"ab", b"")
    assert fcgi.whole_response(raw(fcgi.STDOUT, request_id, page, padding)[:-1] + end, request_id) is None
    assert fcgi.whole_response(raw(fcgi.STDOUT, 9, page, padding) + end, request_id) is None
    failed = raw(fcgi.END_REQUEST, request_id, struct.pack("!IB3x", 255, fcgi.REQUEST_COMPLETE))  # exit(255)
    assert fcgi.whole_response(raw(fcgi.STDOUT, request_id, page) + failed, request_id) == (page, b"")


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"".join(php_page()[:-1]), id="no END_REQUEST yet"),
        pytest.param(b"".join(php_page())[:-1], id="END_REQUEST cut short"),
        pytest.param(b"".join(php_page()) + raw(fcgi.STDOUT, 1, b"x"), id="bytes after END_REQUEST"),
        pytest.param(b"".join(php_page(fcgi.OVERLOADED)), id="overloaded"),
        pytest.param(b"".join(php_page(request_id=7)), id="another request id"),
        pytest.param(raw(fcgi.GET_VALUES_RESULT, 0) + b"".join(php_page()), id="a management record first"),
        pytest.param(b"".join(php_page())[:8].replace(b"\x01", b"\x02", 1) + b"".join(php_page())[8:], id="version 2"),
        pytest.param(b"", id="nothing"),
    ],
)
def test_anything_but_exactly_one_whole_successful_response_is_left_to_the_reader(stream: bytes) -> None:
    assert fcgi.whole_response(stream, 1) is None
