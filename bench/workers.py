"""make bench: hello world with two worker processes under gateway, uvicorn and gunicorn.

Issue 7: `gateway serve --workers 2` beside `uvicorn --workers 2` and gunicorn
with two uvicorn workers, side by side in one run (all pinned to the server
core, wrk on the other, as every benchmark here), ratios against uvicorn.
With both workers on one core this measures what the process model costs,
not how it scales.
"""

from __future__ import annotations

import argparse
import sys

from bench.harness import PYTHON, Peer, free_port, gateway_command, measure, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    gw_port, uv_port, gu_port = free_port(), free_port(), free_port()
    gateway = Peer("gateway --workers 2", [*gateway_command("bench.apps:hello", gw_port), "--workers", "2"], gw_port)
    uvicorn = Peer(
        "uvicorn --workers 2",
        [
            *(PYTHON, "-m", "uvicorn", "bench.apps:hello", "--port", str(uv_port), "--http", "httptools"),
            *("--loop", "uvloop", "--workers", "2", "--no-access-log", "--log-level", "warning"),
        ],
        uv_port,
    )
    gunicorn = Peer(
        "gunicorn -w 2 (uvicorn workers)",
        [
            *(PYTHON, "-m", "gunicorn", "bench.apps:hello", "-b", f"127.0.0.1:{gu_port}", "-w", "2"),
            *("-k", "uvicorn.workers.UvicornWorker", "--log-level", "warning"),
        ],
        gu_port,
    )
    print(f"hello world, 2 workers, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
    measure([gateway, uvicorn, gunicorn], "/", args.rounds, args.seconds, args.connections)
    report([gateway, uvicorn, gunicorn], uvicorn)


if __name__ == "__main__":
    sys.exit(main())
