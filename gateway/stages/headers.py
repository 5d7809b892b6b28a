"""Response headers: `headers = { set, add, remove }` and `security_headers = true`.

The outermost output filter, outside every stage but https_redirect: it
edits the http.response.start that the handler, ranges and compress
produced, and the refusals of access, auth and limits too (a CORS header on
a 429, as nginx's `add_header ... always`); `remove = ["Vary"]` would undo
compress's work (and is the operator's to choose). A request a route's
rewrite sent to another route is answered with that route's headers only. Order on each response:
remove and set delete the app's fields by name, set and add append theirs,
then each security header is added only when no field of that name is left.
Date and Server are written by the core itself (`[server] server_header`),
and framing fields are the core's: those names are refused here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.config.validate import did_you_mean
from gateway.stages import Report
from gateway.types import PASSES_KEY, ASGIApp, HandlerContext, Headers, Message, Receive, Scope, Send

KEYS = ("headers", "security_headers")
ORDER = 7

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
)
_TABLE_KEYS = ("set", "add", "remove")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2 token
_VALUE = re.compile(r"[\t\x20-\x7e]*")  # visible ASCII, space and tab: no CR, LF or NUL
_CORE_FIELDS = {
    "content-length": "framing is decided by the core",
    "transfer-encoding": "framing is decided by the core",
    "connection": "the core decides keep-alive",
    "date": "the core writes Date on every response",
    "server": "the core writes Server; set [server] server_header instead",
}


@dataclass(frozen=True, slots=True)
class Options:
    """The edits, compiled: names lower-cased for matching, spelled as configured for sending."""

    drop: frozenset[bytes]  # the app's fields deleted by name (remove and set)
    append: tuple[tuple[bytes, bytes], ...]  # set and add, in config order
    defaults: tuple[tuple[bytes, bytes, bytes], ...]  # (lower name, name, value) added when absent


def parse(values: dict[str, Any], context: HandlerContext, report: Report) -> Options | None:
    """Options from a route's `headers` table and `security_headers` flag; None when neither edits anything."""
    table = values.get("headers")
    secure = values.get("security_headers", False)
    if not isinstance(secure, bool):
        report("security_headers", f"expected true or false, got {secure!r}")
        secure = False
    drop: set[bytes] = set()
    append: list[tuple[bytes, bytes]] = []
    if table is not None:
        if not isinstance(table, dict):
            report("headers", 'expected a table such as { set = { X-Frame-Options = "DENY" } }')
            return None
        _parse_table(table, drop, append, report)
    defaults = tuple((n.lower().encode(), n.encode(), v.encode()) for n, v in SECURITY_HEADERS) if secure else ()
    if not (drop or append or defaults):
        return None
    return Options(frozenset(drop), tuple(append), defaults)


def _parse_table(table: dict[str, Any], drop: set[bytes], append: list[tuple[bytes, bytes]], report: Report) -> None:
    for key in table:
        if key not in _TABLE_KEYS:
            report(f"headers.{key}", f"unknown key{did_you_mean(key, _TABLE_KEYS)}; known keys: set, add, remove")
    seen: set[str] = set()
    for verb in ("set", "add"):
        fields = table.get(verb, {})
        if not isinstance(fields, dict):
            report(f"headers.{verb}", 'expected a table of names and values such as { X-Served-By = "gateway" }')
            continue
        for name, value in fields.items():
            where = f"headers.{verb}.{name}"
            if not _valid_name(name, where, report):
                continue
            if name.lower() in seen:
                report(where, f"{name!r} appears twice in headers.set/add (names ignore case)")
                continue
            seen.add(name.lower())
            if verb == "set":
                drop.add(name.lower().encode())
            append.extend((name.encode(), v) for v in _values(value, where, report))
    removed = table.get("remove", [])
    if not isinstance(removed, list) or not all(isinstance(n, str) for n in removed):
        report("headers.remove", 'expected a list of header names such as ["X-Powered-By"]')
        return
    for index, name in enumerate(removed):
        if _valid_name(name, f"headers.remove[{index}]", report):
            drop.add(name.lower().encode())


def _valid_name(name: str, where: str, report: Report) -> bool:
    if not _TOKEN.fullmatch(name):
        report(where, f"{name!r} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)")
        return False
    reason = _CORE_FIELDS.get(name.lower())
    if reason:
        report(where, f"{name} cannot be changed here: {reason}")
        return False
    return True


def _values(value: object, where: str, report: Report) -> list[bytes]:
    """One value or a list of them (several fields of one name), each checked."""
    items = value if isinstance(value, list) else [value]
    out: list[bytes] = []
    for item in items:
        if not isinstance(item, str):
            report(where, f"expected a string or a list of strings, got {item!r}")
        elif not _VALUE.fullmatch(item):
            report(where, f"{item!r} is not a header value (printable ASCII only: no CR, LF or other controls)")
        else:
            out.append(item.strip(" \t").encode("ascii"))
    return out


def wrap(options: Options, app: ASGIApp) -> ASGIApp:
    """The app with its response heads edited."""
    drop, append, defaults = options.drop, options.append, options.defaults

    def edit(headers: Any) -> Headers:
        if drop:
            edited = [(name, value) for name, value in headers if name.lower() not in drop]
        else:
            edited = [(name, value) for name, value in headers]
        edited += append
        if defaults:
            present = {name.lower() for name, _ in edited}
            edited += [(name, value) for lower, name, value in defaults if lower not in present]
        return edited

    async def headers_stage(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        passes = scope.get(PASSES_KEY, 0)

        async def send_edited(message: Message) -> None:
            if message["type"] == "http.response.start" and scope.get(PASSES_KEY, 0) == passes:
                message = {**message, "headers": edit(message.get("headers", ()))}
            await send(message)

        await app(scope, receive, send_edited)

    return headers_stage
