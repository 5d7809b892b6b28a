"""1,000 virtual hosts against 1: the host lookup must not grow with the table (target ≥ 0.97).

Both configs route to the same hello app; with 1,000 vhosts, wrk asks for
names from the middle of the table and one that only a wildcard matches.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.harness import PYTHON, ROOT, Peer, free_port, measure, report

VHOST = """
[[vhost]]
names = ["v{index}.example.com", "*.w{index}.example.com"]
  [[vhost.route]]
  path = "/static/"
  handler = "redirect"
  to = "/elsewhere"
  [[vhost.route]]
  path = "/"
  handler = "asgi"
  app = "bench.apps:hello"
  pythonpath = ["{root}"]
  lifespan = false
"""


def write_config(directory: Path, count: int) -> Path:
    path = directory / f"vhosts-{count}.toml"
    path.write_text("".join(VHOST.format(index=i, root=ROOT) for i in range(count)))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    peers = []
    for count, host in ((1, "v0.example.com"), (1000, "v500.example.com"), (1000, "a.b.w999.example.com")):
        port = free_port()
        command = [
            PYTHON,
            "-m",
            "gateway",
            "serve",
            str(write_config(directory, count)),
            "--listen",
            f"127.0.0.1:{port}",
            "--access-log",
            "off",
            "--log-level",
            "warning",
        ]
        peers.append(Peer(f"{count} vhost(s), Host {host}", command, port, wrk_args=["-H", f"Host: {host}"]))
    print(f"vhost lookup, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
    measure(peers, "/", args.rounds, args.seconds, args.connections)
    report(peers, peers[0])


if __name__ == "__main__":
    sys.exit(main())
