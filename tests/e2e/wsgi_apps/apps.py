"""Plain PEP 3333 apps: one dispatcher whose paths each exercise one part of the bridge.

STATS records, per ?tag=, how many bytes a streaming response produced and
whether its close() ran; GET /stats?tag= reports it, so a test can see what
happened on the server after the client went away.
"""

from __future__ import annotations

import hashlib
import json
import resource
import sys
import threading
import time
import wsgiref.validate
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl

Environ = dict[str, Any]
StartResponse = Callable[..., Any]

STATS: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()


def _stat(tag: str) -> dict[str, Any]:
    with _lock:
        return STATS.setdefault(tag, {"produced": 0, "closed": False, "chunks": 0})


def _json(start_response: StartResponse, value: Any, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(value, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def _params(environ: Environ) -> dict[str, str]:
    return dict(parse_qsl(environ.get("QUERY_STRING", "")))


def describe(environ: Environ) -> dict[str, Any]:
    """The environ as JSON: plain values as they are, objects by their type's name."""
    described: dict[str, Any] = {}
    for key, value in environ.items():
        if isinstance(value, (str, bool, int)):
            described[key] = value
        elif isinstance(value, tuple):
            described[key] = list(value)
        else:
            described[key] = f"<{type(value).__name__}>"
    return described


class Streamed:
    """An iterable with close(): n chunks of size bytes, delay seconds apart (n=0: endless)."""

    def __init__(self, tag: str, count: int, size: int, delay: float) -> None:
        self.stat = _stat(tag)
        self.count, self.size, self.delay = count, size, delay

    def __iter__(self) -> Iterator[bytes]:
        index = 0
        while not self.count or index < self.count:
            chunk = bytes([65 + index % 26]) * self.size
            self.stat["produced"] += len(chunk)
            self.stat["chunks"] += 1
            yield chunk
            index += 1
            if self.delay:
                time.sleep(self.delay)

    def close(self) -> None:
        self.stat["closed"] = True


def env(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(-1)
    described = describe(environ)
    described["body"] = body.decode("latin-1")
    return _json(start_response, described)


def stream(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    params = _params(environ)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Streamed(
        params.get("tag", ""), int(params.get("n", 3)), int(params.get("size", 10)), float(params.get("delay", 0))
    )


def write_then_iterate(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written-1;")
    write(b"written-2;")
    return [b"iterated-1;", b"", b"iterated-2"]


def written_stream(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Endless write() calls: a client that leaves makes write() raise an OSError."""
    stat = _stat(_params(environ).get("tag", ""))
    write = start_response("200 OK", [("Content-Type", "application/octet-stream")])
    chunk = b"w" * 65536
    try:
        while True:
            write(chunk)
            stat["produced"] += len(chunk)
    except OSError as exc:
        stat["write_error"] = type(exc).__name__
    stat["closed"] = True
    return []


def upload(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Reads the body in 64 KiB pieces; reports its digest and how much the process grew meanwhile."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    digest = hashlib.sha256()
    total = largest = 0
    stream = environ["wsgi.input"]
    try:
        while piece := stream.read(65536):
            digest.update(piece)
            total += len(piece)
            largest = max(largest, len(piece))
    except OSError as exc:
        _stat(_params(environ).get("tag", ""))["read_error"] = type(exc).__name__
        raise
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    return _json(
        start_response, {"sha256": digest.hexdigest(), "length": total, "largest": largest, "grown_kib": grown_kib}
    )


def lines(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    stream = environ["wsgi.input"]
    first = stream.readline()
    limited = stream.readline(3)
    rest = list(stream)
    return _json(
        start_response, {"first": first.decode(), "limited": limited.decode(), "rest": [r.decode() for r in rest]}
    )


def error_before(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise RuntimeError("boom before start_response")


def error_page(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """The PEP 3333 way to turn an error into a page: start_response again, with exc_info."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise ValueError("something failed")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"custom error page"]


def late_exc_info(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """exc_info after output started: start_response re-raises it and the connection is cut."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"partial output")
    try:
        raise ValueError("too late")
    except ValueError:
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info())
    return [b"never sent"]


def error_after(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])

    def chunks() -> Iterator[bytes]:
        yield b"first chunk"
        time.sleep(0.05)
        raise RuntimeError("boom in the middle")

    return chunks()


def teapot(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response(
        "418 I'm a teapot",
        [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/"),
            ("X-Custom", "yes"),
        ],
    )
    return [b"short ", b"and stout"]


def empty(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    start_response("204 No Content", [])
    return []


def errors(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    stream = environ["wsgi.errors"]
    stream.write("an error line from the app\n")
    stream.writelines(["partial ", "line\n"])
    stream.flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"logged"]


HEADER_CASES: dict[str, list[tuple[str, str]]] = {
    "crlf-value": [("X-A", "1\r\nX-Injected: yes")],
    "crlf-name": [("X-A\r\nX-Injected", "yes")],
    "crlf-length": [("Content-Length", "13\r\nX-Injected: yes")],
    "close": [("Connection", "close")],
    "short": [("Content-Length", "5")],
    "long": [("Content-Length", "20")],
    "exact": [("Content-Length", "13")],
    "space-name": [("Content-Length ", "100")],  # a lenient proxy would read another length
    "colon-name": [("X-A: b", "c")],
    "nul-value": [("X-A", "a\x00b")],
}


def headers(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Hello, world! with the headers of HEADER_CASES[?kind=]."""
    start_response("200 OK", [("Content-Type", "text/plain"), *HEADER_CASES[_params(environ)["kind"]]])
    return [b"Hello, world!"]


def sleep(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Sleeps ?s= seconds before any output; its tag records that it started and finished."""
    params = _params(environ)
    stat = _stat(params.get("tag", ""))
    stat["started"] = True
    time.sleep(float(params.get("s", 0)))
    stat["finished"] = True
    return _json(start_response, {"slept": float(params.get("s", 0))})


def stats(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    return _json(start_response, STATS.get(_params(environ).get("tag", ""), {}))


ROUTES: dict[str, Callable[[Environ, StartResponse], Iterable[bytes]]] = {
    "stream": stream,
    "write": write_then_iterate,
    "written-stream": written_stream,
    "upload": upload,
    "lines": lines,
    "error-before": error_before,
    "error-page": error_page,
    "late-exc-info": late_exc_info,
    "error-after": error_after,
    "teapot": teapot,
    "empty": empty,
    "errors": errors,
    "sleep": sleep,
    "headers": headers,
    "stats": stats,
}


def environ_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """/<name>/... goes to ROUTES[name]; anything else describes the environ."""
    first = environ["PATH_INFO"].lstrip("/").partition("/")[0]
    return ROUTES.get(first, env)(environ, start_response)


validated_app = wsgiref.validate.validator(environ_app)
