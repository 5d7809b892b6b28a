"""Whole responses an app answers at once, without a task (the core's `gateway_respond_now` extension).

Why: for a small file served from memory, the ASGI round trip (a task, a
coroutine, two message dicts, the head assembled from a header list) costs
more than everything else the request needs; bench/static.py runs beside
nginx. An app that can answer some requests synchronously carries
`gateway_respond_now(scope)` (see gateway/types.py): the core calls it for a
request without a body when no other response is in progress, and writes
what it returns in one transport.write.

Rules:
- The answer is (status, fields, body): fields are the header lines, each
  ending in CRLF and holding Content-Length, built by the app from values it
  trusts (no CR or LF inside). The core adds the status line, Date and
  Server, and Connection as keep-alive decides, as for any response.
- HEAD, 1xx, 204 and 304 send no body; everything else sends body whole.
- None means "not this one": the request goes the usual ASGI way, and the
  app must not have changed the scope.
- The response completes once the parser has returned (the protocol calls
  complete()), so the rest of the bytes just read are parsed first, exactly
  as if a task had answered: the next request waits in the pipeline.
- An app may instead return a Later (gateway/types.py): the request gets a
  cycle of its own, as a task's request would, and the app answers it from
  another callback (the php handler: when php-cgi's records arrive).
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import TYPE_CHECKING

from gateway.http.cycle import NO_BODY_STATUSES, RequestCycle
from gateway.http.responses import APP_FAILED, STATUS_LINES, status_line
from gateway.types import Later, Scope

if TYPE_CHECKING:
    from gateway.http.protocol import HttpProtocol

logger = logging.getLogger("gateway.error")
_KEEP_ALIVE_1_0 = b"connection: keep-alive\r\n\r\n"
_CLOSE = b"connection: close\r\n\r\n"
_OK = STATUS_LINES[200]


def answer(protocol: HttpProtocol, scope: Scope, keep_alive: bool, now: float) -> bool:
    """Write the app's whole response to a bodyless request if it has one; False to run the app as usual.

    The request is recorded on the connection's own cycle for answers at once,
    reused from one such request to the next: it never reaches a task, and
    making and freeing a RequestCycle per request cost more than the rest of
    this function.
    """
    try:
        found = protocol.respond_now(scope)  # type: ignore[misc]
    except Exception:
        logger.exception("Exception in app while serving %s %s", scope["method"], scope["path"])
        cycle = RequestCycle(protocol, scope, keep_alive, now)
        protocol.cycle = protocol.reading_cycle = cycle
        cycle.response_complete = True
        protocol.close_with_error(cycle, 500, APP_FAILED)
        return True
    if found is None:
        return False
    if found.__class__ is not tuple:
        _begin_later(protocol, scope, keep_alive, now, found)
        return True
    status, fields, body = found
    reused = protocol.answered_cycle
    if reused is None:
        reused = protocol.answered_cycle = RequestCycle(protocol, scope, keep_alive, now)
        reused.deadline = 0.0  # answered before any timer could fire
        # A bodyless request is complete once llhttp reports its end, in the same
        # feed, before the protocol completes the response: no reset needed.
        reused.response_started = reused.response_complete = reused.request_complete = True
    cycle = reused
    cycle.scope = scope
    cycle.keep_alive = keep_alive
    cycle.started = perf_counter()
    cycle.begun = now
    cycle.status = status
    end = _CLOSE
    if keep_alive:
        end = b"\r\n" if scope["http_version"] == "1.1" else _KEEP_ALIVE_1_0
    is_head = cycle.is_head = scope["method"] == "HEAD"
    if status == 200 and not is_head:
        protocol.transport.write(b"".join((_OK, protocol.common.block, fields, end, body)))
        cycle.sent = len(body)
    else:
        line = STATUS_LINES.get(status) or status_line(status)
        if is_head or status in NO_BODY_STATUSES or status < 200:
            protocol.transport.write(line + protocol.common.block + fields + end)
            cycle.sent = 0
        else:
            protocol.transport.write(b"".join((line, protocol.common.block, fields, end, body)))
            cycle.sent = len(body)
    protocol.cycle = protocol.reading_cycle = protocol.answered = cycle
    return True


def _begin_later(protocol: HttpProtocol, scope: Scope, keep_alive: bool, now: float, later: Later) -> None:
    """A request the app answers from a callback: a cycle of its own, with later in a task's place.

    What cancels a task (request_timeout, shutdown) cancels later; the
    response completes when the app calls cycle.respond() or its task,
    started by cycle.hand_over(), ends.
    """
    cycle = RequestCycle(protocol, scope, keep_alive, now)
    cycle.task = later
    protocol.cycle = protocol.reading_cycle = cycle
    try:
        later.begin(cycle)
    except Exception:
        logger.exception("Exception in app while serving %s %s", scope["method"], scope["path"])
        cycle.response_complete = True
        protocol.close_with_error(cycle, 500, APP_FAILED)
