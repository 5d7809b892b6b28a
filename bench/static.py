"""The static handler beside nginx (sendfile on): a 1 KiB and a 1 MiB file.

Targets from the issue: 1 KiB ≥ 1.0× nginx, 1 MiB ≥ 0.8×. The gateway serves
a config with one static route, as a user would write it (router included).
The 1 KiB file is answered from the handler's memory cache, written at once
by the core (gateway/http/whole.py); the 1 MiB one goes out through
http.response.pathsend (os.sendfile). nginx runs one worker, access log off,
with the config bench/pathsend.py uses; both serve the same folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.harness import Peer, free_port, gateway_command, measure, report
from bench.pathsend import NGINX_CONF

CONFIG = """
[[vhost]]
names = ["127.0.0.1"]

[[vhost.route]]
path = "/"
handler = "static"
root = "{root}"
"""
FILES = {"1 KiB": ("small.bin", 1024), "1 MiB": ("large.bin", 1024 * 1024)}


def peers(workdir: Path) -> tuple[Peer, Peer]:
    """A fresh pair (each Peer keeps its own numbers)."""
    port = free_port()
    config = workdir / f"gateway-{port}.toml"
    config.write_text(CONFIG.format(root=workdir))
    gateway = Peer("gateway static", gateway_command(str(config), port), port)
    nginx_port = free_port()
    conf = workdir / f"nginx-{nginx_port}.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=nginx_port, root=workdir))
    nginx = Peer("nginx (sendfile on)", ["nginx", "-c", str(conf), "-p", str(workdir)], nginx_port)
    return gateway, nginx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-static-"))
    workdir.chmod(0o755)  # nginx workers run as nobody
    for name, size in FILES.values():
        (workdir / name).write_bytes(os.urandom(size))
        (workdir / name).chmod(0o644)
    for label, (name, _) in FILES.items():
        gateway, nginx = peers(workdir)
        print(f"\n{label} file, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
        measure([gateway, nginx], f"/{name}", args.rounds, args.seconds, args.connections)
        report([gateway, nginx], nginx)


if __name__ == "__main__":
    sys.exit(main())
