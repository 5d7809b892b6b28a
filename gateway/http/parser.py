"""HTTP/1.1 request parsing: httptools for framing, our own rules for the rest.

Rules this module enforces (httptools/llhttp checks only framing and token
syntax; everything below is ours, in the order a request meets it):

- Limits while bytes arrive, before any app runs: the request line
  (``max_request_line`` → 414), each field line (``max_header_size`` → 431,
  also for a line still arriving), the field count (``max_header_count`` →
  431), the body (``max_body_size`` → 413, by Content-Length at once and by
  counting chunked data).
- Version: HTTP/1.0 and HTTP/1.1 only (505 otherwise, RFC 9110 §15.6.6).
- Host (RFC 9112 §3.2): exactly one on HTTP/1.1, syntactically a host
  and optional port; an absolute-form target overrides it (§3.2.2).
- Request target (RFC 9112 §3.2): origin-form, absolute-form (http/https,
  no userinfo: RFC 9110 §4.2.4), asterisk-form for OPTIONS only.
  CONNECT (authority-form) is not implemented: 501.
- Framing (RFC 9112 §6): Transfer-Encoding must be exactly "chunked" (other
  codings 501, §6.1) and never on HTTP/1.0 (400); never with Content-Length;
  field names with "_" that would read as a framing field are refused, since
  CGI-style backends cannot tell them apart.
- Singleton fields (Host, Content-Type) appear once; trailers may not carry
  framing, routing or auth fields (RFC 9110 §6.5.1) and are otherwise dropped.

The parser is sans-IO: ``feed(data)`` drives callbacks on a sink. It raises
``HttpError`` for anything it refuses; the protocol turns that into a response.
"""

from __future__ import annotations

import re
from typing import Any, Protocol
from urllib.parse import unquote

import httptools

from gateway.config.schema import Limits
from gateway.errors import HttpError
from gateway.types import Scope

# RFC 9112 §3.2 / RFC 3986 §3.2.2: reg-name or IPv4, or an IPv6 literal, then an optional port.
_HOST = re.compile(rb"(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?")
# RFC 3986 path characters besides the unreserved ones (which quote() never escapes): what
# re-encoding a decoded path leaves as it is; with "%" also, a target that may be encoded already.
PCHAR = "/:@!$&'()*+,;="
ENCODED_PATH_SAFE = PCHAR + "%"
_SLASHES = re.compile("/{2,}")
_LONGEST_METHOD = 24  # llhttp's methods (MKCALENDAR, VERSION-CONTROL...) with room to spare
_AUTHORITY_END = re.compile(rb"[/?#]")
_FRAMING_NAMES = frozenset({b"content-length", b"transfer-encoding"})
_SINGLETONS = frozenset({b"host", b"content-type"})
_SPECIAL = _SINGLETONS | _FRAMING_NAMES | {b"expect"}
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_FORBIDDEN_TRAILERS = frozenset(
    {
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"content-type",
        b"content-encoding",
        b"content-range",
        b"trailer",
        b"te",
        b"authorization",
        b"proxy-authorization",
        b"cookie",
        b"set-cookie",
        b"expect",
        b"max-forwards",
        b"range",
        b"cache-control",
    }
)
_VALID_HOST_CACHE_SIZE = 512
# Single bytes tested as ints: CPython 3.11 answers `b"#" in data` by raising and
# catching a TypeError first, 17x slower than `35 in data`.
_HASH, _UNDERSCORE, _LF = ord("#"), ord("_"), ord("\n")
_OWS = (ord(" "), ord("\t"))
_VERSIONS = {b" HTTP/1.1\r": "1.1", b" HTTP/1.0\r": "1.0"}  # a request line's end, before its LF
# Request lines seen before → (version, method, raw_path, query_string, path): a
# dict lookup instead of decoding the target again. Bounded; filled, never evicted.
RequestLine = tuple[str, str, bytes, bytes, str]
_LINE_CACHE_SIZE = 1024
_LINE_CACHE_LENGTH = 512
_lines: dict[bytes, RequestLine] = {}
# Whole request heads seen before, byte for byte, → what parsing them gave: the
# request line's values, the header list, the Host and keep-alive. A read that is
# exactly such a head is answered without httptools or the callbacks, where
# half the core's time per request goes; load balancers' health checks,
# polling clients and benchmarks repeat their heads. Only keep-alive heads
# without a body or special fields are kept (llhttp ends them in the same
# state it starts in), one table per Limits (the checks skipped depend on
# them). Bounded; filled, never evicted.
Head = tuple[dict[str, Any], tuple[tuple[bytes, bytes], ...]]  # the scope's request-line keys, the headers
_HEAD_CACHE_SIZE = 1024
_HEAD_CACHE_LENGTH = 2048
_CHUNK_LINES_SLACK = 4096  # chunk-size lines and trailer fields a read may hold beside one long line
_HEAD_END = b"\r\n\r\n"
_heads: dict[Limits, dict[bytes, Head]] = {}
# The scope keys the parser sets for each request (placeholders in the template).
_PER_REQUEST: dict[str, Any] = {
    "http_version": "1.1",
    "method": "GET",
    "path": "/",
    "raw_path": b"/",
    "query_string": b"",
    "headers": [],
}


class RequestSink(Protocol):
    """What the parser reports to: the connection's protocol, or a test recorder."""

    def on_request(self, scope: Scope, parser: RequestParser) -> None: ...
    def on_body(self, chunk: bytes) -> None: ...
    def on_request_end(self) -> None: ...
    def on_upgrade_request(self, scope: Scope, parser: RequestParser) -> bool: ...
    def on_upgrade_data(self, data: bytes) -> None: ...


class RequestParser:
    """Parses one connection's requests, one after another (pipelining included)."""

    __slots__ = (
        "_between",
        "_body_after_upgrade",
        "_dirty",
        "_framing_len",
        "_headers",
        "_heads",
        "_in_trailers",
        "_known",
        "_line",
        "_line_len",
        "_max_body",
        "_max_field",
        "_max_fields",
        "_max_line",
        "_max_pair",
        "_message_done",
        "_parser",
        "_recorded",
        "_recording",
        "_saw_newline",
        "_seen",
        "_trailer_count",
        "_url",
        "body_seen",
        "chunked",
        "content_length",
        "expect_continue",
        "host",
        "in_head",
        "keep_alive",
        "max_body",
        "sink",
        "template",
    )

    def __init__(self, sink: RequestSink, limits: Limits, template: dict[str, Any]) -> None:
        """in_head is True while a head has begun but not ended (the header timer runs)."""
        self.sink = sink
        # Every key a request sets is in the template already, so copying it gives a
        # dict of the final size and each request's values replace, never insert.
        self.template = {**template, **_PER_REQUEST}
        self._max_line = limits.max_request_line
        self._max_field = limits.max_header_size
        self._max_fields = limits.max_header_count
        self._max_pair = self._max_field - 2  # name and value; the line adds ": " (or ":")
        self._max_body = limits.max_body_size  # the widest any route accepts
        self.max_body = self._max_body  # this request's (the limits stage narrows it to the route's)
        self._parser = httptools.HttpRequestParser(self)
        # Bytes after a "Connection: close" request are ignored, not an error.
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.in_head = False
        self._line_len = 0
        self._message_done = False
        self._in_trailers = False
        self._framing_len = 0
        self._dirty = True
        self._line: bytes | None = None  # the request line data began with, when it did
        self._known: RequestLine | None = None  # its values, when it is in the cache
        self._heads = _heads.setdefault(limits, {})
        self._recording = False  # the head being parsed may go into _heads
        self._recorded: Head | None = None
        self._body_after_upgrade = False  # an Upgrade served as plain HTTP: httptools skipped its body
        self.on_message_begin()
        self.in_head = False
        self._between = True  # the next byte fed begins a request (or the CRLFs before one)

    def feed(self, data: bytes) -> None:
        """Parse bytes from the client; raises HttpError for a request we refuse."""
        recording = False
        if self._between:
            if len(data) <= _HEAD_CACHE_LENGTH:
                head = self._heads.get(data)
                if head is not None:
                    self._replay(head)
                    return
                recording = len(self._heads) < _HEAD_CACHE_SIZE
            self._recording = recording
            # The request line is what data begins with (or CRLFs before it; llhttp
            # allows no LF inside the line). Seen before, its values are cached; if
            # not, its version is read off its end, where httptools'
            # get_http_version() formats a string for 0.5 µs.
            end = data.find(_LF)
            line = self._line = data[:end] if end > 0 else None
            self._known = _lines.get(line) if line is not None else None
        self._message_done = False
        body_before = self.body_seen
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # httptools wraps what our callbacks raise; unwrap our refusals.
            raise _unwrap(exc) from None
        except httptools.HttpParserUpgrade as exc:
            # httptools stops after a request carrying Upgrade and cannot resume: what
            # follows is the new protocol's (a WebSocket's frames), or the body of a
            # request served as plain HTTP, or is ignored.
            if self._body_after_upgrade:
                self._read_body_after_upgrade(data[exc.args[0] :])
                return
            self.sink.on_upgrade_data(data[exc.args[0] :])
        except httptools.HttpParserError as exc:
            if str(exc) == "Invalid HTTP version":  # HTTP/1.2, HTTP/3.1: well-formed, not ours (RFC 9110 §15.6.6)
                raise HttpError(505, "This HTTP version is not supported; use HTTP/1.1.") from exc
            raise HttpError(400, _describe(exc)) from exc
        if self.in_head:
            self._check_partial_line(data)
        elif recording:
            self._remember_head(data)
        elif self.chunked and not self._message_done:
            self._check_chunk_lines(len(data), body_before)

    def _check_chunk_lines(self, size: int, body_before: int) -> None:
        """Bound what a chunked body sends besides its data: a chunk extension or trailer line still arriving.

        httptools takes either without limit; reads that carry no body byte add
        up until one does (a chunk's data ends any such line).
        """
        if self.body_seen != body_before:
            self._framing_len = 0
            return
        self._framing_len += size
        if self._framing_len > self._max_field + _CHUNK_LINES_SLACK:
            raise HttpError(431, "A chunk extension or trailer field of this request is too large.")

    def _check_partial_line(self, data: bytes) -> None:
        """Bound a field line that is still arriving (httptools buffers it whole)."""
        newline = data.rfind(b"\n")
        if self._message_done:
            # A request ended inside this data and the next head began after it, at an
            # offset httptools does not tell. The bytes after the last LF are that head's
            # partial line, but may begin with the tail of a Content-Length body before
            # it (a minified JSON body has no LF): while the head is still on its request
            # line, that line is measured from its method, which just precedes the URL.
            tail = data[newline + 1 :]
            url = self._url
            at = tail.rfind(url) if url else -1
            self._saw_newline = bool(url) and at < 0
            if not url:  # still the method, which llhttp takes only from its list
                self._line_len = min(len(tail), _LONGEST_METHOD)
            elif at >= 0:
                self._line_len = len(tail) - at + len(self._parser.get_method()) + 1
            else:  # a field line: the request line, and so the body's end, came before the last LF
                self._line_len = len(tail)
        elif newline < 0:
            self._line_len += len(data)
        else:
            self._saw_newline = True
            self._line_len = len(data) - newline - 1
        # The partial line may end in the CR of its CRLF, which the limit does not count.
        partial = self._line_len - (data[-1:] == b"\r")
        if not self._saw_newline and partial > self._max_line:
            raise HttpError(414, "The request line is too long.")
        if self._saw_newline and partial > self._max_field:
            raise HttpError(431, "A request header field is too large.")

    # httptools callbacks -------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self._between = False
        self._line_len = 0
        self._framing_len = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._url = b""
        self._saw_newline = False
        self.host: bytes | None = None
        if self._dirty:
            # Only requests with special headers or a body changed these.
            self._dirty = False
            self._seen: set[bytes] | None = None
            self.content_length: int | None = None
            self.chunked = False
            self.expect_continue = False
            self.body_seen = 0
            self._trailer_count = 0
            self.max_body = self._max_body

    def limit_body(self, max_body: int) -> None:
        """This request's body limit (a route's own); the next request starts from the widest again."""
        self.max_body = max_body
        self._dirty = True

    def on_url(self, url: bytes) -> None:
        if self._url:
            url = self._url + url
        self._url = url
        # The line is "METHOD SP target SP HTTP/x.y". No method llhttp knows is
        # longer than 22 letters, so below that margin the exact sum is not needed.
        if len(url) + 32 > self._max_line:
            method_len = len(self._parser.get_method())
            if method_len + len(url) + 10 > self._max_line:
                raise HttpError(414, "The request line is too long.")

    def on_header(self, name: bytes, value: bytes) -> None:
        if value and value[-1] in _OWS:  # llhttp keeps trailing whitespace, which is not the value's (RFC 9112 §5)
            value = value.rstrip(b" \t")
        headers = self._headers
        if self._in_trailers or len(headers) >= self._max_fields or len(name) + len(value) > self._max_pair:
            self._other_field(name, value)
            return
        name = name.lower()
        if name in _SPECIAL:
            if name == b"host" and self.host is None:
                self.host = value  # the one special field of most requests, without a call
            else:
                self._special_header(name, value)
        elif _UNDERSCORE in name and name.replace(b"_", b"-") in _FRAMING_NAMES:
            raise HttpError(400, "A header field name with '_' reads as a framing field.")
        headers.append((name, value))

    def _other_field(self, name: bytes, value: bytes) -> None:
        """A field beyond the count or size limits (431), or a trailer's (checked, then dropped)."""
        if self._in_trailers:
            self._trailer_count += 1
        if len(self._headers) + self._trailer_count >= self._max_fields + self._in_trailers:
            raise HttpError(431, "The request has too many header fields.")
        if len(name) + len(value) > self._max_pair:
            raise HttpError(431, "A request header field is too large.")
        self._check_trailer(name.lower())

    def _special_header(self, name: bytes, value: bytes) -> None:
        if name == b"host":
            if self.host is not None:
                raise HttpError(400, "The host header field appears more than once.")
            self.host = value
            return
        self._dirty = True
        if name in _SINGLETONS:
            self._check_singleton(name)
        if name == b"content-length":
            self.content_length = int(value)
        elif name == b"transfer-encoding":
            self._check_transfer_coding(value)
        elif name == b"expect":
            self._check_expect(value)

    def _check_singleton(self, name: bytes) -> None:
        if self._seen is None:
            self._seen = {name}
        elif name in self._seen:
            raise HttpError(400, f"The {name.decode()} header field appears more than once.")
        else:
            self._seen.add(name)

    def _check_trailer(self, name: bytes) -> None:
        if name in _FORBIDDEN_TRAILERS:
            raise HttpError(400, f"The {name.decode()} field is not allowed in a trailer.")

    def _check_transfer_coding(self, value: bytes) -> None:
        if self.chunked or value.strip(b" \t").lower() != b"chunked":
            raise HttpError(501, "Only the chunked transfer coding is implemented.")
        self.chunked = True

    def _check_expect(self, value: bytes) -> None:
        if value.strip(b" \t").lower() != b"100-continue":
            raise HttpError(417, "Only 'Expect: 100-continue' is supported.")
        self.expect_continue = True

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._in_trailers = True
        known = self._known
        if known is None:
            version, method, raw_path, query, path = self._read_request_line()
        else:
            # A request line seen before: the same bytes parse to the same values.
            self._known = self._line = None
            version, method, raw_path, query, path = known
            if self._dirty:
                self._check_framing(version)
            if self.host not in _valid_hosts:
                _check_host(self.host, version)
        parser = self._parser
        upgrade = parser.should_upgrade()
        self.keep_alive = not upgrade and parser.should_keep_alive()
        if self._recording:
            self._recording = False
            if self.keep_alive and not self._dirty:
                line = {"http_version": version, "method": method, "path": path, "raw_path": raw_path}
                line["query_string"] = query
                self._recorded = (line, tuple(self._headers))
        scope = self.template.copy()
        scope["http_version"] = version
        scope["method"] = method
        scope["path"] = path
        scope["raw_path"] = raw_path
        scope["query_string"] = query
        scope["headers"] = self._headers
        if upgrade:
            taken = self.sink.on_upgrade_request(scope, self)
            self._body_after_upgrade = not taken and (self.chunked or bool(self.content_length))
        else:
            self.sink.on_request(scope, self)

    def _read_request_line(self) -> RequestLine:
        """The version, method and target of a request line not in the cache, checked in order."""
        parser = self._parser
        line = self._line
        self._line = None
        version = (line is not None and _VERSIONS.get(line[-10:])) or parser.get_http_version()
        if version != "1.1" and version != "1.0":
            raise HttpError(505, f"HTTP/{version} is not supported; use HTTP/1.1.")
        raw_method = parser.get_method()
        method = _METHODS.get(raw_method) or raw_method.decode("ascii")
        if self._dirty:
            self._check_framing(version)
        url = self._url
        plain = url[:1] == b"/" and _HASH not in url
        if plain:
            raw_path, _, query = url.partition(b"?")
        else:
            if self.host not in _valid_hosts:  # RFC 9112 §3.2: a Host is due even beside an absolute target
                _check_host(self.host, version)
            raw_path, query = self._other_target(url, method)
        if self.host not in _valid_hosts:
            _check_host(self.host, version, "The request target's host" if not plain else "The Host header")
        parsed = (version, method, raw_path, query, routing_path(raw_path))
        if plain and line is not None and len(line) <= _LINE_CACHE_LENGTH and len(_lines) < _LINE_CACHE_SIZE:
            self._remember_line(line, raw_method, url, parsed)
        return parsed

    @staticmethod
    def _remember_line(line: bytes, raw_method: bytes, url: bytes, parsed: RequestLine) -> None:
        """Cache a request line's values, if line is exactly the line llhttp parsed (not CRLFs before one)."""
        if line == b"%s %s HTTP/%s\r" % (raw_method, url, parsed[0].encode("ascii")):
            _lines[line] = parsed

    def _check_framing(self, version: str) -> None:
        if self.expect_continue and version == "1.0":
            self.expect_continue = False  # RFC 9110 §10.1.1: ignored on HTTP/1.0, which has no 1xx
        if self.chunked and version == "1.0":
            raise HttpError(400, "Transfer-Encoding is not allowed in HTTP/1.0.")
        if self.content_length is not None and self.content_length > self._max_body:
            raise HttpError(413, "The request body is larger than this server accepts.")

    def _other_target(self, url: bytes, method: str) -> tuple[bytes, bytes]:
        """Targets other than a plain origin-form path (RFC 9112 §3.2)."""
        if url[:1] == b"/":
            raw_path, _, query = url.partition(b"#")[0].partition(b"?")
            return raw_path, query
        if url == b"*":
            if method != "OPTIONS":
                raise HttpError(400, "The '*' request target is only for OPTIONS.")
            return b"*", b""
        if method == "CONNECT":
            raise HttpError(501, "CONNECT is not implemented by this server.")
        return self._absolute_target(url)

    def _absolute_target(self, url: bytes) -> tuple[bytes, bytes]:
        """RFC 9112 §3.2.2: the target's authority replaces the Host header."""
        try:
            parsed = httptools.parse_url(url)
        except httptools.HttpParserInvalidURLError as exc:
            raise HttpError(400, "The request target is not a valid URL.") from exc
        if parsed.schema.lower() not in (b"http", b"https") or not parsed.host:  # schemes are case-insensitive
            raise HttpError(400, "The request target must be a path or an http(s) URL.")
        if parsed.userinfo:
            raise HttpError(400, "The request target must not carry user information.")
        # RFC 3986 §3.2: the authority ends at the first "/", "?" or "#" ("http://a.test?x=1" has no path).
        authority = _AUTHORITY_END.split(url.split(b"//", 1)[1], maxsplit=1)[0]
        self.host = authority
        headers = [(n, v) for n, v in self._headers if n != b"host"]
        headers.append((b"host", authority))
        self._headers = headers
        return parsed.path or b"/", parsed.query or b""

    def on_body(self, body: bytes) -> None:
        self._dirty = True
        self.body_seen += len(body)
        if self.body_seen > self.max_body:
            raise HttpError(413, "The request body is larger than this server accepts.")
        self.sink.on_body(body)

    def on_message_complete(self) -> None:
        if self._body_after_upgrade:
            return  # httptools' end of a body it skipped: the body is still to come (_read_body_after_upgrade)
        self._message_done = True
        self._between = True
        self._in_trailers = False
        self.sink.on_request_end()

    def _remember_head(self, data: bytes) -> None:
        """Keep data's parse if data was one whole bodyless keep-alive head and nothing more."""
        recorded = self._recorded
        self._recorded = None
        if recorded is not None and self._between and data.find(_HEAD_END) == len(data) - 4:
            self._heads[data] = recorded

    def _read_body_after_upgrade(self, rest: bytes) -> None:
        """The body of a request whose Upgrade (h2c, say) is served as plain HTTP (RFC 9110 §7.8).

        httptools skips the body of any request with Upgrade and cannot resume. A
        parser of its own reads it instead: given a head with the same framing,
        whose callbacks _BodyAfterUpgrade mutes, then the rest of the bytes. The
        connection closes after the response (an upgrade request is not kept
        alive), so that parser reads nothing after the body.
        """
        framing = b"transfer-encoding: chunked" if self.chunked else b"content-length: %d" % (self.content_length or 0)
        self._parser = httptools.HttpRequestParser(_BodyAfterUpgrade(self))
        self.feed(b"PUT / HTTP/1.1\r\n" + framing + b"\r\n\r\n" + rest)

    def body_after_upgrade_ended(self) -> None:
        self._body_after_upgrade = False
        self.on_message_complete()

    def _replay(self, head: Head) -> None:
        """A head parsed before (see _heads): the callbacks httptools would make, from its values.

        Only what the sink reads is set: the parser's own per-message state
        (host, header list, URL) is reset by the next on_message_begin.
        """
        line, headers = head
        if self._dirty:  # the last request changed the per-request state
            self.on_message_begin()
            self.in_head = False
            self._between = True
        self.keep_alive = True
        scope = self.template.copy()
        scope.update(line)
        scope["headers"] = list(headers)  # the app's own: it may change the list
        self.sink.on_request(scope, self)
        self.sink.on_request_end()


class _BodyAfterUpgrade:
    """httptools' target while it reads the body of a request whose Upgrade was not taken: only the body counts."""

    __slots__ = ("parser",)

    def __init__(self, parser: RequestParser) -> None:
        self.parser: RequestParser | None = parser

    def on_body(self, body: bytes) -> None:
        if self.parser is not None:
            self.parser.on_body(body)

    def on_message_complete(self) -> None:
        parser, self.parser = self.parser, None  # what follows the body is not read (the connection closes)
        if parser is not None:
            parser.body_after_upgrade_ended()


def _check_host(host: bytes | None, version: str, what: str = "The Host header") -> None:
    """A Host not seen before (or none): HTTP/1.1 needs one, and it must be a host and optional port."""
    if host is None:
        if version == "1.1":
            raise HttpError(400, "HTTP/1.1 requests must carry a Host header.")
        return
    if _HOST.fullmatch(host) is None:
        raise HttpError(400, f"{what} is not a valid host name.")
    if len(_valid_hosts) < _VALID_HOST_CACHE_SIZE:
        _valid_hosts.add(host)


_valid_hosts: set[bytes] = set()


def routing_path(raw_path: bytes) -> str:
    """The path routes and apps see: decoded, dot segments removed, repeated slashes merged.

    Merging is nginx's merge_slashes: "//admin/x" must meet the "/admin"
    route's auth, not fall through to "/" (whose file handler would map the
    empty segment away and serve /admin/x all the same). raw_path keeps what
    the client sent.
    """
    path = raw_path.decode("latin-1")
    return clean_path(unquote(path) if "%" in path else path)


def clean_path(path: str) -> str:
    """A decoded path with its dot segments resolved and repeated slashes merged (the routing path's rules).

    The WSGI environ applies them to its own decoding (bytes as latin-1), so
    an app's PATH_INFO is the path its route was chosen by.
    """
    if "/." in path:
        path = remove_dot_segments(path)
    if "//" in path:
        path = _SLASHES.sub("/", path)
    return path


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 on the decoded path, so "/shop/../admin" routes as "/admin".

    A path that climbs above the root is refused (as nginx does) rather than clamped.
    """
    segments = path.split("/")
    if not any(s == "." or s == ".." for s in segments):
        return path
    kept: list[str] = []
    for segment in segments[1:]:
        if segment == "..":
            if not kept:
                raise HttpError(400, "The request path climbs above the root ('..').")
            kept.pop()
        elif segment != ".":
            kept.append(segment)
    trailing = segments[-1] in (".", "..")
    return "/" + "/".join(kept) + ("/" if trailing and kept else "")


def _unwrap(exc: Exception) -> Exception:
    """The exception a callback raised: an HttpError, or a bug (the protocol logs it)."""
    original = exc.__cause__ or exc.__context__
    return original if isinstance(original, Exception) else exc


def _describe(exc: Exception) -> str:
    reason = str(exc) or type(exc).__name__
    return f"The request is malformed ({reason})."
