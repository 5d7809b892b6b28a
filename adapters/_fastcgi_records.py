"""FastCGI 1.0 records without I/O: bytes to send are built here, bytes received are cut into records here.

The client (sockets, pools, timeouts) stays elsewhere so that this codec can be
tested byte for byte without an event loop. Section numbers are those of the
FastCGI Specification 1.0 (Open Market, 1996).

Rules:
- A record is an 8-byte header (version, type, request id, content length,
  padding length, reserved), 0..65535 content bytes and 0..255 padding bytes
  (§3.3). We pad what we send to a multiple of 8, as §3.3 recommends; we
  accept any padding we are sent.
- Request id 0 is the null request id, for management records only (§3.3).
  Requests we start use 1..65535; anything else is a ValueError here rather
  than a record the backend would silently ignore.
- PARAMS and STDIN are streams (§3.3): non-empty records, then one empty record
  that ends the stream. A stream's value is the concatenation of its records'
  content, so a name-value pair may straddle two PARAMS records. ``stdin()``
  never emits the empty record, since a body arrives in several pieces;
  ``stdin_end()`` does.
- Name-value pairs (§3.4): each length in one byte when below 128, otherwise in
  four bytes with the high bit set, so a name or value is at most 2**31-1 bytes.
  The decoder also takes the four-byte form of a short length.
- GET_VALUES is a discrete management record (§4.1): its pairs must fit in one.
- What the backend sends is checked as soon as a header is complete, so that a
  peer that does not speak FastCGI is refused before we wait for its "content":
  version 1 only, types 1..11 only, request id 0 only on management types.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

VERSION = 1

BEGIN_REQUEST = 1
ABORT_REQUEST = 2
END_REQUEST = 3
PARAMS = 4
STDIN = 5
STDOUT = 6
STDERR = 7
DATA = 8
GET_VALUES = 9
GET_VALUES_RESULT = 10
UNKNOWN_TYPE = 11

RESPONDER = 1
KEEP_CONN = 1

REQUEST_COMPLETE = 0
CANT_MPX_CONN = 1
OVERLOADED = 2
UNKNOWN_ROLE = 3

MAX_CONTENT = 65535
_MAX_PAIR_LENGTH = 0x7FFFFFFF  # four-byte lengths keep their high bit as the marker (§3.4)

_HEADER = struct.Struct("!BBHHBx")  # version, type, request id, content length, padding length, reserved
_HEADER_SIZE = _HEADER.size
_BEGIN_BODY = struct.Struct("!HB5x")  # role, flags, reserved (§5.1)
_END_BODY = struct.Struct("!IB3x")  # app status, protocol status, reserved (§5.5)
_LONG_LENGTH = struct.Struct("!I")
_LONG_MARK = 0x80000000
_PADDINGS = tuple(bytes(n) for n in range(8))
_PARAMS_END = {1: _HEADER.pack(VERSION, PARAMS, 1, 0, 0)}  # the empty PARAMS record of request id 1, every request's
_MANAGEMENT_TYPES = frozenset({GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE})
_RESPONSE_TYPES = frozenset({STDOUT, STDERR, END_REQUEST})  # what a response is made of, checked inline
_TYPE_NAMES = {
    BEGIN_REQUEST: "BEGIN_REQUEST",
    ABORT_REQUEST: "ABORT_REQUEST",
    END_REQUEST: "END_REQUEST",
    PARAMS: "PARAMS",
    STDIN: "STDIN",
    STDOUT: "STDOUT",
    STDERR: "STDERR",
    DATA: "DATA",
    GET_VALUES: "GET_VALUES",
    GET_VALUES_RESULT: "GET_VALUES_RESULT",
    UNKNOWN_TYPE: "UNKNOWN_TYPE",
}

_Chunk = bytes | memoryview


class ProtocolError(Exception):
    """The backend sent bytes that are not FastCGI; the message says what, for the error log."""


class Record(NamedTuple):
    """One record as received: its padding is already dropped.

    A NamedTuple rather than a frozen dataclass: as immutable, and made in half
    the time (a frozen dataclass sets each field through object.__setattr__).
    """

    type: int
    request_id: int
    content: bytes


# --- What the web server sends -------------------------------------------------


def begin_request(request_id: int, keep_conn: bool) -> bytes:
    """Start a request in the Responder role; keep_conn asks the backend to leave the connection open."""
    _check_request_id(request_id)
    return _record(BEGIN_REQUEST, request_id, _BEGIN_BODY.pack(RESPONDER, KEEP_CONN if keep_conn else 0))


def params(request_id: int, pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """The whole PARAMS stream: the encoded pairs in as many records as needed, then the empty record."""
    _check_request_id(request_id)
    parts: list[_Chunk] = []
    _append_stream(parts, PARAMS, request_id, encode_pairs(pairs))
    parts.append(_record(PARAMS, request_id, b""))
    return b"".join(parts)


def params_records(request_id: int, encoded: bytes) -> bytes:
    """The PARAMS stream for pairs already encoded (encode_pair), with its closing empty record."""
    if len(encoded) <= MAX_CONTENT:
        length = len(encoded)
        header = _HEADER.pack(VERSION, PARAMS, request_id, length, -length % 8)
        end = _PARAMS_END.get(request_id) or _record(PARAMS, request_id, b"")
        return b"".join((header, encoded, _PADDINGS[-length % 8], end))
    parts: list[_Chunk] = []
    _append_stream(parts, PARAMS, request_id, encoded)
    parts.append(_record(PARAMS, request_id, b""))
    return b"".join(parts)


def encode_pair(name: bytes, value: bytes) -> bytes:
    """One name-value pair (§3.4); the common short case without a loop or a struct."""
    if len(name) < 128 and len(value) < 128:
        return b"".join((_ONE_BYTE[len(name)], _ONE_BYTE[len(value)], name, value))
    return _lengths(len(name), len(value)) + name + value


_ONE_BYTE = tuple(bytes((n,)) for n in range(128))  # a short length as its byte (bytes((a, b)) is slower)


def stdin(request_id: int, data: bytes | memoryview) -> bytes:
    """One piece of the request body as STDIN records; empty data gives b"" (the end is stdin_end())."""
    _check_request_id(request_id)
    parts: list[_Chunk] = []
    _append_stream(parts, STDIN, request_id, data)
    return b"".join(parts)


def stdin_end(request_id: int) -> bytes:
    """The empty STDIN record: the request body is complete."""
    _check_request_id(request_id)
    return _record(STDIN, request_id, b"")


def abort_request(request_id: int) -> bytes:
    """Ask the backend to end the request early (§5.4); it still answers with END_REQUEST."""
    _check_request_id(request_id)
    return _record(ABORT_REQUEST, request_id, b"")


def get_values(names: Iterable[bytes]) -> bytes:
    """A GET_VALUES query (§4.1), e.g. for b"FCGI_MPXS_CONNS"; the names go as pairs with empty values."""
    content = encode_pairs((name, b"") for name in names)
    if len(content) > MAX_CONTENT:
        raise ValueError(f"FastCGI GET_VALUES content of {len(content)} bytes does not fit in one record")
    return _record(GET_VALUES, 0, content)


def _check_request_id(request_id: int) -> None:
    if not 1 <= request_id <= 0xFFFF:
        raise ValueError(f"FastCGI request id {request_id} is outside 1..65535")


def _record(record_type: int, request_id: int, content: bytes) -> bytes:
    return _header(record_type, request_id, len(content)) + content + _PADDINGS[-len(content) % 8]


def _header(record_type: int, request_id: int, length: int) -> bytes:
    return _HEADER.pack(VERSION, record_type, request_id, length, -length % 8)


def _append_stream(parts: list[_Chunk], record_type: int, request_id: int, data: bytes | memoryview) -> None:
    """Add the non-empty records carrying data; the slices are views, so the final join is the only copy."""
    view = memoryview(data).cast("B")
    for start in range(0, len(view), MAX_CONTENT):
        chunk = view[start : start + MAX_CONTENT]
        parts += (_header(record_type, request_id, len(chunk)), chunk, _PADDINGS[-len(chunk) % 8])


# --- Name-value pairs (§3.4) ---------------------------------------------------


def encode_pairs(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    """Pairs as PARAMS or GET_VALUES content; a name or value over 2**31-1 bytes is a ValueError."""
    parts: list[bytes] = []
    for name, value in pairs:
        parts += (_lengths(len(name), len(value)), name, value)
    return b"".join(parts)


def _lengths(name_length: int, value_length: int) -> bytes:
    if name_length < 0x80 and value_length < 0x80:
        return bytes((name_length, value_length))
    return _length(name_length, "name") + _length(value_length, "value")


def _length(length: int, what: str) -> bytes:
    if length < 0x80:
        return bytes((length,))
    if length > _MAX_PAIR_LENGTH:
        raise ValueError(f"FastCGI {what} of {length} bytes is longer than 2**31-1")
    return _LONG_LENGTH.pack(length | _LONG_MARK)


def decode_pairs(data: bytes) -> list[tuple[bytes, bytes]]:
    """Pairs from a complete PARAMS stream or a GET_VALUES(_RESULT) record; truncation is a ProtocolError."""
    pairs: list[tuple[bytes, bytes]] = []
    offset = 0
    while offset < len(data):
        name_length, offset = _read_length(data, offset)
        value_length, offset = _read_length(data, offset)
        middle = offset + name_length
        end = middle + value_length
        if end > len(data):
            raise ProtocolError(f"FastCGI name-value pair needs {end - offset} bytes, {len(data) - offset} remain")
        pairs.append((data[offset:middle], data[middle:end]))
        offset = end
    return pairs


def _read_length(data: bytes, offset: int) -> tuple[int, int]:
    """A pair length at offset and the offset after it."""
    if offset >= len(data):
        raise ProtocolError("FastCGI name-value pair cut off before its lengths")
    if data[offset] < 0x80:
        return data[offset], offset + 1
    if offset + 4 > len(data):
        raise ProtocolError("FastCGI name-value pair cut off inside a four-byte length")
    return _LONG_LENGTH.unpack_from(data, offset)[0] & _MAX_PAIR_LENGTH, offset + 4


# --- What the backend sends -----------------------------------------------------


def end_request_status(content: bytes) -> tuple[int, int]:
    """(app status, protocol status) from an END_REQUEST record's content (§5.5)."""
    if len(content) < _END_BODY.size:
        raise ProtocolError(f"FastCGI END_REQUEST content of {len(content)} bytes, expected {_END_BODY.size}")
    app_status, protocol_status = _END_BODY.unpack_from(content)
    return app_status, protocol_status


def whole_response(data: bytes, request_id: int) -> tuple[bytes, bytes] | None:
    """STDOUT and STDERR of request_id when data is exactly one whole, successful response; else None.

    Whole: its records, the last an END_REQUEST with REQUEST_COMPLETE
    ending data. What php-cgi sends for a page it did not flush early comes
    in one read like that; anything else (a part, another request id, a
    status the exchange must report) is None, for the RecordReader to read
    as usual.
    """
    size = len(data)
    if data.endswith(_ENDS_WELL.get(request_id) or _ends_well(request_id)):  # php-cgi's usual page: STDOUT, END
        version, record_type, record_id, length, padding = _HEADER.unpack_from(data)
        one_stdout = record_type == STDOUT and version == VERSION and record_id == request_id
        if one_stdout and _HEADER_SIZE + length + padding + _END_SIZE == size:
            return data[_HEADER_SIZE : _HEADER_SIZE + length], b""
    out: list[bytes] = []
    err: list[bytes] = []
    offset = 0
    while offset + _HEADER_SIZE <= size:
        version, record_type, record_id, length, padding = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER_SIZE
        end = start + length
        offset = end + padding
        if version != VERSION or record_id != request_id or offset > size:
            return None
        if record_type == STDOUT:
            if length:
                out.append(data[start:end])
        elif record_type == STDERR:
            err.append(data[start:end])
        elif record_type != END_REQUEST or offset != size or length < _END_BODY.size:
            return None
        else:  # byte 4 of END_REQUEST's content is its protocol status (§5.5)
            complete = data[start + 4] == REQUEST_COMPLETE
            return (out[0] if len(out) == 1 else b"".join(out), b"".join(err)) if complete else None
    return None


def _ends_well(request_id: int) -> bytes:
    """The END_REQUEST record of a request that completed with app status 0 (remembered per request id)."""
    record = _HEADER.pack(VERSION, END_REQUEST, request_id, _END_BODY.size, 0) + _END_BODY.pack(0, REQUEST_COMPLETE)
    if len(_ENDS_WELL) < 64:
        _ENDS_WELL[request_id] = record
    return record


_ENDS_WELL: dict[int, bytes] = {}
_END_SIZE = _HEADER_SIZE + _END_BODY.size

# Record(...) runs the __new__ NamedTuple generates in Python; tuple.__new__ makes the same record in C.
_new_record = tuple.__new__


class RecordReader:
    """Incremental: feed() any chunking of the byte stream; returns the complete records so far.

    Only the bytes of one incomplete record are ever held, and records are
    cut from a memoryview at an offset, so a long STDOUT stream parses in
    linear time whatever the chunking. When nothing is held, records are cut
    straight from the data fed and only a trailing partial record is buffered.
    """

    __slots__ = ("_buffer", "_max_buffer")

    def __init__(self, max_buffer: int = 1 << 20) -> None:
        self._buffer = bytearray()
        self._max_buffer = max_buffer

    @property
    def buffered(self) -> int:
        """Bytes held of a record not yet complete."""
        return len(self._buffer)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Record]:
        if self._buffer:
            self._buffer += data
            with memoryview(self._buffer) as view:
                records, used = _parse(view)
            del self._buffer[:used]
        elif data.__class__ is bytes:  # what a transport gives: sliced as it is, no view needed
            records, used = _parse(data)
            if used < len(data):
                self._buffer += data[used:]
        else:
            with memoryview(data).cast("B") as view:
                records, used = _parse(view)
                self._buffer += view[used:]
        if len(self._buffer) > self._max_buffer:
            raise ProtocolError(f"FastCGI backend sent {len(self._buffer)} bytes without completing a record")
        return records

    def eof(self) -> None:
        """The backend closed the connection: complain if it did so inside a record."""
        if self._buffer:
            raise ProtocolError(
                f"FastCGI stream ended in the middle of a record ({len(self._buffer)} bytes of it received)"
            )


def _parse(view: memoryview | bytes) -> tuple[list[Record], int]:
    """The complete records at the start of view, and how many bytes they took."""
    records: list[Record] = []
    offset = 0
    while len(view) - offset >= _HEADER_SIZE:
        version, record_type, request_id, length, padding = _HEADER.unpack_from(view, offset)
        if version != VERSION or record_type not in _RESPONSE_TYPES or not request_id:
            _check_header(version, record_type, request_id)  # says what is wrong, or allows a management record
        start = offset + _HEADER_SIZE
        end = start + length
        if end + padding > len(view):
            break
        records.append(_new_record(Record, (record_type, request_id, bytes(view[start:end]))))
        offset = end + padding
    return records, offset


def _check_header(version: int, record_type: int, request_id: int) -> None:
    if version != VERSION:
        raise ProtocolError(f"FastCGI record with version {version}, expected {VERSION}: is the backend FastCGI?")
    if record_type not in _TYPE_NAMES:
        raise ProtocolError(f"FastCGI record of unknown type {record_type}")
    if request_id == 0 and record_type not in _MANAGEMENT_TYPES:
        raise ProtocolError(f"FastCGI {_TYPE_NAMES[record_type]} record for the null request id 0")
