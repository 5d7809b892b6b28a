"""make bench: the same hello-world ASGI app under gateway and under uvicorn.

Both with httptools and uvloop, one worker, no access log. Target from
issue 2: gateway ≥ 1.5× uvicorn's requests per second.
"""

from __future__ import annotations

import argparse
import sys

from bench.harness import PYTHON, Peer, free_port, gateway_command, measure, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    gw_port, uv_port = free_port(), free_port()
    gateway = Peer(
        "gateway",
        gateway_command("bench.apps:hello", gw_port),
        gw_port,
    )
    uvicorn = Peer(
        "uvicorn (httptools, uvloop)",
        [
            PYTHON,
            "-m",
            "uvicorn",
            "bench.apps:hello",
            "--port",
            str(uv_port),
            "--http",
            "httptools",
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        uv_port,
    )
    print(f"hello world, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
    measure([gateway, uvicorn], "/", args.rounds, args.seconds, args.connections)
    report([gateway, uvicorn], uvicorn)


if __name__ == "__main__":
    sys.exit(main())
