"""The isolation keys of an asgi or wsgi route: `isolation`, `pool`, `python`, `env`, `cwd`.

Defaults follow Passenger: one process kept (min 1), up to 4, idle ones
beyond min stopped after 5 minutes, a start that takes over a minute
failed, at most 100 requests waiting. concurrency 0 means "the app's own":
a WSGI app takes as many requests at once as it has `threads`, an ASGI app
is not limited (Passenger does the same for its async Node.js apps).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ISOLATION_KEYS = ("isolation", "pool", "python", "env", "cwd")
POOL_HOST_ENV = "GATEWAY_POOL_HOST"  # set by the supervisor: a worker reaches its generation's pool host here
ASYNC_CONCURRENCY = 1000  # an ASGI app process's "unlimited"


def _doc(text: str, kind: str = "") -> dict[str, str]:
    return {"doc": text, "kind": kind}


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """`pool = { ... }` of an isolated route."""

    min: int = field(default=1, metadata=_doc("processes kept running, started with the gateway; 0 = on demand"))
    max: int = field(default=4, metadata=_doc("processes at most; more start while requests wait"))
    idle_timeout: float = field(
        default=300.0, metadata=_doc("seconds a process beyond min may stay idle before it is stopped", "duration")
    )
    max_requests: int = field(default=0, metadata=_doc("requests a process serves before it is replaced; 0 = never"))
    max_memory: int = field(
        default=0, metadata=_doc("resident memory beyond which a process is replaced; 0 = no limit", "size")
    )
    start_timeout: float = field(
        default=60.0, metadata=_doc("seconds a process may take to start serving before it is failed", "duration")
    )
    queue: int = field(default=100, metadata=_doc("requests that may wait for a process; beyond → 503 + Retry-After"))
    concurrency: int = field(
        default=0,
        metadata=_doc("requests one process takes at once; 0 = the app's own (wsgi: its threads; asgi: no limit)"),
    )


@dataclass(frozen=True, slots=True)
class IsolationOptions:
    """Where an asgi/wsgi route's app runs: in the gateway's process, or in a pool of its own."""

    isolation: Literal["inline", "process"] = field(
        default="inline", metadata=_doc('"inline" (in the gateway\'s process) or "process" (a pool of its own)')
    )
    pool: PoolOptions = field(default_factory=PoolOptions, metadata=_doc("the process pool's policy (see below)"))
    python: str = field(
        default="", metadata=_doc("the interpreter of the pool (a virtualenv's bin/python); it needs gateway installed")
    )
    env: dict[str, str] = field(default_factory=dict, metadata=_doc("environment variables added for the pool"))
    cwd: str = field(
        default="", metadata=_doc("the pool's working folder, relative to the config; default: its folder")
    )

    @property
    def isolated(self) -> bool:
        return self.isolation == "process"
