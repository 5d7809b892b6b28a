"""Several workers, one set of numbers: prometheus-client's multiprocess mode, set up by the supervisor.

prometheus-client picks where values live when it is first imported: in the
process, or, with PROMETHEUS_MULTIPROC_DIR set, in mmap files in that folder
(one per process and kind) that any process can merge. So the supervisor
decides before any of its children starts: when the config mounts the
`metrics` handler, the folder is `runtime_dir/metrics`, emptied at start
(the numbers of an earlier run are not this run's) and named in the
environment the workers and the pool host inherit. A child that exits is
marked dead, which drops its "live" gauges (connections, in-flight, its
pools) while its counters and histograms stay in the sums.
Without a metrics route nothing here runs and the environment is left alone.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from gateway.config.loader import load
from gateway.config.schema import Config
from gateway.errors import ConfigError
from gateway.metrics import HANDLER_NAME, MULTIPROC_ENV

logger = logging.getLogger("gateway.metrics")
FOLDER = "metrics"


def wanted(config: Config) -> bool:
    """Whether a route of this config mounts the metrics handler."""
    return any(route.handler == HANDLER_NAME for vhost in config.vhosts for route in vhost.routes)


def folder(config: Config) -> Path:
    return config.runtime_path / FOLDER


def prepare(config: Config) -> Path | None:
    """At supervisor start: an empty metrics folder for the workers when the config mounts metrics."""
    path = folder(config)
    shutil.rmtree(path, ignore_errors=True)
    return enable(path) if wanted(config) else None


def enable(path: Path) -> Path | None:
    """Name path in the environment workers inherit (a reload may enable it later, without emptying it)."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        logger.error("cannot create the metrics folder %s (each worker will count alone): %s", path, exc)
        return None
    os.environ[MULTIPROC_ENV] = str(path.resolve())
    return path


def enable_on_reload(source: str) -> Path | None:
    """SIGHUP to a config that mounts metrics now, not before: the folder for the new workers."""
    try:
        config = load(source)
    except ConfigError:
        return None  # the reload's own check reports it
    return enable(folder(config)) if wanted(config) else None


def forget_process(path: Path, pid: int) -> None:
    """A worker exited: its live gauges leave the sums (its counters and histograms stay)."""
    from prometheus_client.multiprocess import mark_process_dead

    try:
        mark_process_dead(pid, str(path))  # type: ignore[no-untyped-call]
    except OSError as exc:
        logger.error("cannot remove the metrics files of worker %d in %s: %s", pid, path, exc)
