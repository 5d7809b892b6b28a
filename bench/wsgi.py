"""python -m bench.wsgi: a Flask hello world under gateway's wsgi handler and under gunicorn.

gateway with its own bridge (the default) and with bridge = "a2wsgi", each
from a config's route as users write it, beside gunicorn's sync worker
(1 worker), the usual way to serve Flask. One process each, no access log.
Target from the issue: gateway ≥ 2.0× gunicorn sync.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.harness import PYTHON, ROOT, Peer, free_port, gateway_command, measure, report

ROUTE = """
[[vhost]]
names = ["127.0.0.1"]
  [[vhost.route]]
  path = "/"
  handler = "wsgi"
  app = "bench.wsgi_apps:flask_app"
  pythonpath = ["{root}"]
  bridge = "{bridge}"
  threads = {threads}
"""


def _gateway(name: str, bridge: str, threads: int) -> Peer:
    port = free_port()
    config = Path(tempfile.mkdtemp(prefix="gateway-bench-")) / f"wsgi-{bridge}.toml"
    config.write_text(ROUTE.format(root=ROOT, bridge=bridge, threads=threads))
    return Peer(name, gateway_command(str(config), port), port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=8, help="the wsgi handler's worker threads")
    parser.add_argument("--no-a2wsgi", action="store_true", help="leave out the a2wsgi bridge")
    args = parser.parse_args()
    port = free_port()
    command = [PYTHON, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b", f"127.0.0.1:{port}"]
    gunicorn = Peer("gunicorn sync (1 worker)", [*command, "--log-level", "warning", "bench.wsgi_apps:flask_app"], port)
    peers = [_gateway("gateway wsgi", "gateway", args.threads)]
    if not args.no_a2wsgi:
        peers.append(_gateway("gateway wsgi (a2wsgi)", "a2wsgi", args.threads))
    peers.append(gunicorn)
    print(f"Flask hello world, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
    measure(peers, "/", args.rounds, args.seconds, args.connections)
    report(peers, gunicorn)


if __name__ == "__main__":
    sys.exit(main())
