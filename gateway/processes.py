"""Small facts about child processes, shared by the supervisor and the php-cgi pools.

- die_with_parent: a preexec_fn asking the kernel (PR_SET_PDEATHSIG) to
  SIGTERM the child when the process that forked it dies, even by kill -9:
  no orphan survives the gateway. prctl is looked up here, at import, so the
  forked child runs nothing but the call (Linux; elsewhere it does nothing).
- exit_description: how a child ended, for log lines ("signal SIGKILL").
- rss_of: a process's resident memory, for max_memory and `gateway status`.
- socket_path: where a child's Unix socket goes (runtime_dir, or /tmp when too long).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import tempfile
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes on Linux


def _prctl() -> Callable[..., int] | None:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


PRCTL = _prctl()


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when its parent dies."""
    if PRCTL is not None:
        PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent_as_batch() -> None:
    """In the child before exec: die with the parent, and run as SCHED_BATCH.

    SCHED_BATCH keeps the fair share but drops wakeup preemption: a child
    handed a request over a socket no longer interrupts the gateway at once,
    so the gateway finishes its loop iteration (more requests handed out,
    more responses relayed) before the child runs. Measured on php-cgi
    (bench.php) and on isolated app processes (bench.isolation).
    """
    die_with_parent()
    run_as_batch()


def run_as_batch() -> None:
    """The calling process (or, on Linux, thread) as SCHED_BATCH: see die_with_parent_as_batch()."""
    with contextlib.suppress(OSError, AttributeError):  # not on every platform; only a speed-up
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


def exit_description(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-returncode).name}"
        return f"signal {-returncode}"
    return f"status {returncode}"


def rss_of(pid: int) -> int:
    """A process's resident memory in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def socket_path(runtime_dir: Path, name: str) -> Path:
    """runtime_dir/name, or a private folder under /tmp when that path is too long for a Unix socket."""
    path = runtime_dir.resolve() / name
    if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
        return path
    short = Path(tempfile.gettempdir()) / f"gateway-{os.getuid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / name
