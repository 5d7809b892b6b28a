"""The head of a CGI response (RFC 3875 §6), sans-IO: for CGI scripts' stdout and FastCGI's STDOUT.

Bytes go in as they arrive; once the blank line that ends the header block
is in, feed() returns a CgiHead and `body` holds what followed it. What a
program may get wrong is a CgiResponseError whose message goes to the error
log (the client gets a 502): no blank line before the output ends or within
max_size, a line that is not `name: value`, a Status that is not three digits
from 200 to 599.

Lenient where programs are: lines end in LF or CRLF (§6.3.4 says NL, and
scripts print "\\n"); a response without Content-Type passes (PHP's
header_remove() produces those). Framing is the core's job, so hop-by-hop
headers from the program (Connection, Transfer-Encoding, ...) are dropped.
An "nph" response starts with its own status line (§5), read the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([0-9]{3})(?: (.*))?\Z")
# Hop-by-hop fields are the connection's, Date and Server the core's (it writes its own: never two).
_NOT_PASSED = frozenset(
    {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade", b"proxy-connection"}
    | {b"date", b"server"}
)
MAX_HEAD = 64 * 1024


class CgiResponseError(Exception):
    """The program's output is not a CGI response; the message says why, for the error log."""


@dataclass(slots=True)
class CgiHead:
    """A parsed header block: what the gateway answers with, and what §6.2 calls the response kind."""

    status: int
    headers: list[tuple[bytes, bytes]]  # lower-case names, Status removed
    location: bytes | None = None
    explicit_status: bool = False  # a Status field (or an nph status line) was there
    length: int | None = None  # the program's own Content-Length

    def short_of(self, written: int) -> str:
        """What the log says of a body that ended before its Content-Length."""
        return f"its output ended after {written} bytes of its Content-Length of {self.length}"

    @property
    def local_redirect(self) -> bool:
        """§6.2.2: `Location: /path` and nothing else asks the server to serve that path instead."""
        return (
            self.location is not None
            and self.location.startswith(b"/")
            and not self.explicit_status
            and all(name == b"location" for name, _ in self.headers)
        )


class CgiHeadReader:
    """Incremental reader of one response head."""

    __slots__ = ("body", "buffer", "max_size", "nph")

    def __init__(self, max_size: int = MAX_HEAD, nph: bool = False) -> None:
        self.max_size = max_size
        self.nph = nph
        self.buffer = b""
        self.body = b""  # the bytes after the head, once feed() returned it

    def feed(self, data: bytes) -> CgiHead | None:
        """The head once complete (then `body` holds the rest), else None."""
        buffer = self.buffer + data if self.buffer else data
        end, rest = _head_end(buffer)
        if end < 0:
            if len(buffer) > self.max_size:
                raise CgiResponseError(f"no end of the headers within {self.max_size} bytes of output")
            self.buffer = buffer
            return None
        if end > self.max_size:
            raise CgiResponseError(f"headers longer than {self.max_size} bytes")
        self.buffer = b""
        self.body = buffer[rest:]
        return parse_head(buffer[:end], self.nph)

    def eof(self) -> None:
        """The output ended before a head was complete."""
        if self.buffer:
            raise CgiResponseError("the output ended inside the headers (no blank line after them)")
        raise CgiResponseError("the program wrote nothing (a CGI response starts with headers)")


def _head_end(buffer: bytes) -> tuple[int, int]:
    """(end of the header lines, start of the body), (-1, -1) while the blank line is still missing."""
    if buffer.startswith(b"\n"):
        return 0, 1
    if buffer.startswith(b"\r\n"):
        return 0, 2
    found = buffer.find(b"\n\n")
    crlf = buffer.find(b"\n\r\n")
    if crlf >= 0 and (found < 0 or crlf < found):
        return crlf, crlf + 3
    return (found, found + 2) if found >= 0 else (-1, -1)


def parse_head(block: bytes, nph: bool = False) -> CgiHead:
    """A CgiHead from the header lines (without the blank line)."""
    lines = block.split(b"\n")
    status = 0
    explicit = False
    if nph:
        match = _STATUS_LINE.match(lines[0].rstrip(b"\r"))
        if match is None:
            raise CgiResponseError(f"an nph program must start with a status line, got {_shown(lines[0])}")
        status = _status_code(match.group(1))
        explicit = True
        lines = lines[1:]
    if block == b"":
        raise CgiResponseError("the output starts with a blank line: no headers at all")
    headers: list[tuple[bytes, bytes]] = []
    location = length = None
    typed: int | None = None  # where the Content-Type is in headers
    for line in lines:
        name, value = _field(line.rstrip(b"\r"))
        if name == b"status":
            if explicit:
                raise CgiResponseError("more than one Status")
            status = _status_code(value.split(b" ", 1)[0])
            explicit = True
        elif name in _NOT_PASSED:
            continue
        else:
            if name == b"location":
                location = value
            elif name == b"content-length":
                if not value.isdigit():
                    raise CgiResponseError(f"Content-Length is not a number: {_shown(value)}")
                if length is not None:
                    # Two lengths: which one frames the body? (RFC 9112 §6.3: unrecoverable.) One is enough.
                    if int(value) != int(length):
                        raise CgiResponseError(f"two different Content-Lengths: {_shown(length)}, {_shown(value)}")
                    continue
                length = value
            elif name == b"content-type":
                if typed is not None:  # one value only (RFC 9110 §8.3): the last one, as Apache takes it
                    headers[typed] = (name, value)
                    continue
                typed = len(headers)
            headers.append((name, value))
    if not explicit:
        status = 302 if location is not None else 200
    return CgiHead(status, headers, location, explicit, int(length) if length is not None else None)


def _field(line: bytes) -> tuple[bytes, bytes]:
    """(lower-case name, value) of a header line; lines a program repeats are parsed once."""
    known = _fields.get(line)
    if known is not None:
        return known
    name, colon, value = line.partition(b":")
    if not colon or not _TOKEN.match(name):
        raise CgiResponseError(f"not a header line: {_shown(line)}")
    value = value.strip(b" \t")
    if _BAD_VALUE.search(value):
        raise CgiResponseError(f"control characters in the {name.decode()} header")
    field = name.lower(), value
    if len(_fields) < _FIELD_CACHE_SIZE and len(line) <= _FIELD_CACHE_LENGTH and field[0] != b"set-cookie":
        _fields[line] = field
    return field


# Header lines seen before (X-Powered-By, Content-Type, ...) → (name, value): two regex
# searches saved per line. Bounded, filled and never evicted; cookies (unique) stay out.
_FIELD_CACHE_SIZE = 1024
_FIELD_CACHE_LENGTH = 256
_fields: dict[bytes, tuple[bytes, bytes]] = {}


def _status_code(text: bytes) -> int:
    if len(text) != 3 or not text.isdigit() or not 200 <= int(text) <= 599:
        raise CgiResponseError(f"Status must be a code from 200 to 599, got {_shown(text)}")
    return int(text)


def _shown(data: bytes) -> str:
    """Program output in a log line: short and printable."""
    text = repr(data[:80])[2:-1]
    return f"'{text}…'" if len(data) > 80 else f"'{text}'"
