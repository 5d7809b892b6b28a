"""The `metrics` handler: the gateway's numbers in Prometheus's text format, for a scraper.

Mount it on a private path behind `allow` (`path = "=/_gateway/metrics"`,
`handler = "metrics"`, `allow = ["127.0.0.1"]`). GET or HEAD answers every
metric of gateway/metrics/ (requests by vhost and status class, durations,
in-flight requests, connections, pool sizes): with several workers, those of
all of them, whichever answers.

Mounting it is what turns counting on: the server sees the route at load and
wraps its access log (gateway/metrics/requests.py); a config without a
metrics route pays nothing, not even the import of prometheus-client.
"""

from __future__ import annotations

import asyncio
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.metrics.requests import current
from gateway.types import ASGIApp, HandlerContext, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.metrics.exposition import Exporter

ALLOWED = frozenset({"GET", "HEAD"})
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"  # Prometheus's text format
NOT_ALLOWED = b"405 Method Not Allowed\nThe metrics answer GET and HEAD only.\n"


@dataclass(frozen=True, slots=True)
class MetricsOptions:
    """No keys: what it exports follows from the rest of the config."""


class MetricsHandler:
    """Renders this process's (or every worker's) metrics on each scrape."""

    Options = MetricsOptions

    def __init__(self, options: MetricsOptions, context: HandlerContext) -> None:
        self.options = options
        self.context = context
        self.exporter: Exporter | None = None

    def problems(self) -> list[tuple[str, str]]:
        if importlib.util.find_spec("prometheus_client") is None:
            return [("handler", "needs prometheus-client, which is not installed: pip install prometheus-client")]
        return []

    def app(self) -> ASGIApp:
        async def metrics(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["method"] not in ALLOWED:
                await _answer(send, 405, b"text/plain; charset=utf-8", NOT_ALLOWED, [(b"allow", b"GET, HEAD")])
                return
            assert self.exporter is not None  # set by startup(), which runs before any request
            self.exporter.flush(current())  # this process's counts are exact; other workers' lag up to a second
            # Merging every worker's files reads them from disk: off the event loop.
            body = await asyncio.to_thread(self.exporter.render)
            await _answer(send, 200, CONTENT_TYPE, body, [(b"cache-control", b"no-store")])

        return metrics

    async def startup(self) -> None:
        from gateway.metrics.exposition import exporter  # prometheus-client: only where a route mounts metrics

        self.exporter = exporter()
        recorder = current()
        if recorder is not None:
            self.exporter.prebind(recorder)
        self.exporter.attach()

    async def aclose(self) -> None:
        if self.exporter is not None:
            await self.exporter.detach()
            self.exporter = None


async def _answer(
    send: Send, status: int, content_type: bytes, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    length = (b"content-length", str(len(body)).encode())
    start_headers = [(b"content-type", content_type), length, *headers]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
