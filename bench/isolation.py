"""python -m bench.isolation: what isolation = "process" costs, on a Flask hello world.

The same wsgi route twice, one process each pinned to the same core: inline
(the app in the gateway's process) and isolated (one app process, the front
forwarding to it over its Unix socket; both on the server's core, since the
app process inherits the front's CPU affinity). The ratio is the price of
the extra hop; Passenger pays the same kind of hop for every request.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.harness import ROOT, Peer, free_port, gateway_command, measure, report

ROUTE = """
[[vhost]]
names = ["bench.test"]
  [[vhost.route]]
  path = "/"
  handler = "wsgi"
  app = "bench.wsgi_apps:flask_app"
  pythonpath = ["{root}"]
  threads = {threads}
  {isolation}
"""


def _peer(name: str, folder: Path, threads: int, isolation: str) -> Peer:
    config = folder / f"{name.split()[0]}.toml"
    config.write_text(ROUTE.format(root=ROOT, threads=threads, isolation=isolation))
    port = free_port()
    return Peer(name, gateway_command(str(config), port), port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=8, help="the wsgi handler's worker threads")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-isolation-") as folder:
        inline = _peer("inline (in the gateway's process)", Path(folder), args.threads, "")
        pool = 'isolation = "process"\n  pool = { min = 1, max = 1 }'
        isolated = _peer("isolated (one app process)", Path(folder), args.threads, pool)
        print(
            f'Flask hello world, inline vs isolation = "process", {args.connections} connections, '
            f"{args.seconds}s x {args.rounds} rounds",
            flush=True,
        )
        measure([inline, isolated], "/", args.rounds, args.seconds, args.connections)
        report([inline, isolated], inline)


if __name__ == "__main__":
    sys.exit(main())
