"""In the dev child: an isolated route's pool restarts alone when a `.py` file of its app changes.

The dev supervisor restarts the whole serving process for the config and
inline apps (plan.py leaves isolated routes' folders out); a pool's app
lives in processes of its own, so replacing those is enough: its
processes drain, fresh ones start, and requests wait for them meanwhile
(gateway/pools/pool.py). The same folders and ignores as the supervisor's
plan; a folder created later is not picked up until the next restart.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from watchfiles import awatch

from gateway.config.schema import Config
from gateway.dev.plan import DEFAULT_IGNORES, ignored, route_roots, walk
from gateway.pools.handler import IsolatedHandler
from gateway.types import ASGIApp

logger = logging.getLogger("gateway.dev")


def watch_pools(app: ASGIApp, config: Config) -> list[asyncio.Task[None]]:
    """A watcher task per isolated route of the router (none for other apps)."""
    handlers = getattr(app, "handlers", None)
    if handlers is None:
        return []
    tasks = []
    for _, handler in handlers():
        if isinstance(handler, IsolatedHandler) and handler.pool is not None:
            folders = walk(route_roots(config, handler.route), [config.runtime_path], DEFAULT_IGNORES)
            if folders:
                tasks.append(asyncio.ensure_future(watch_pool(handler, folders)))
    return tasks


async def watch_pool(handler: IsolatedHandler, folders: frozenset[Path]) -> None:
    async for changes in awatch(*sorted(folders), recursive=False):
        files = sorted({name for _, name in changes if _is_source(Path(name))})
        if files and handler.pool is not None:
            shown = files[0] + (f" (and {len(files) - 1} more)" if len(files) > 1 else "")
            logger.info("%s changed: restarting %s", shown, handler.pool.label)
            handler.pool.reload(f"reload: {Path(files[0]).name} changed")


def _is_source(path: Path) -> bool:
    return path.suffix == ".py" and not ignored(path, DEFAULT_IGNORES)
