"""Active health checks: every `interval`, each upstream is asked for `path` on a fresh connection.

A 2xx or 3xx answer within `timeout` is healthy; anything else (another
status, a refused connection, silence) takes the upstream out of rotation
until a later check passes (Upstream.checked logs each change). The checks
run in one task started by ProxyClient.start() and cancelled by aclose();
each round checks every upstream at once, then sleeps. Each worker process
checks on its own, as each keeps its own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from adapters._proxy_connection import UpstreamError
from adapters._proxy_options import HealthOptions
from adapters._proxy_upstreams import Upstream

logger = logging.getLogger("gateway.adapters.proxy")
SILENCE = 3600.0  # probe() waits this long at most; check() bounds it by health.timeout


class HealthChecker:
    """The background task checking a live list of upstreams."""

    def __init__(self, upstreams: list[Upstream], options: HealthOptions) -> None:
        self.upstreams = upstreams  # the balancer's own list: upstreams added later are checked too
        self.options = options
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.run(), name="proxy health checks")

    async def aclose(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        while True:
            upstreams = list(self.upstreams)
            results = await asyncio.gather(*(self.check(u) for u in upstreams), return_exceptions=True)
            for upstream, result in zip(upstreams, results, strict=True):
                if isinstance(result, Exception):  # a bug, not a verdict: the checks go on
                    logger.error("proxy upstream %s: the health check failed", upstream.label, exc_info=result)
            await asyncio.sleep(self.options.interval)

    async def check(self, upstream: Upstream) -> None:
        timeout = self.options.timeout
        try:
            async with asyncio.timeout(timeout):
                status = await probe(upstream, self.options.path.encode("ascii"))
        except TimeoutError:
            upstream.checked(False, f"no answer within {timeout:g}s")
        except UpstreamError as exc:
            upstream.checked(False, str(exc))
        else:
            upstream.checked(200 <= status < 400, f"status {status}")


async def probe(upstream: Upstream, path: bytes) -> int:
    """The status of `GET path` on a new connection (closed after the head); the caller bounds its time."""
    connection = await upstream.pool.connect()
    try:
        connection.begin(head_request=False)
        host = upstream.address.host_header
        connection.write(
            b"GET %s HTTP/1.1\r\nhost: %s\r\nuser-agent: gateway-health-check\r\nconnection: close\r\n\r\n"
            % (path, host)
        )
        while connection.head is None:
            if connection.error is not None:
                raise UpstreamError(f"malformed response: {connection.error}")
            if connection.closed:
                raise UpstreamError("the upstream closed the connection without answering")
            await connection.wait(SILENCE)
        return connection.head.status
    finally:
        connection.close()
