"""A 1 MiB file through http.response.pathsend, two ways, beside nginx serving it.

gateway's pathsend.py picks os.sendfile on uvloop; GATEWAY_PATHSEND=read
forces reading the file and writing it through the transport. Both run
here against nginx (sendfile on, one worker) with the same file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from bench.harness import Peer, free_port, gateway_command, measure, report

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ root {root}; }}
    }}
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--size", type=int, default=1024 * 1024)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    workdir.chmod(0o755)  # nginx workers run as nobody
    data = workdir / "file.bin"
    data.write_bytes(os.urandom(args.size))
    data.chmod(0o644)
    env = {"BENCH_FILE": str(data)}
    peers = []
    for mode in ("sendfile", "read"):
        port = free_port()
        peers.append(
            Peer(
                f"gateway pathsend={mode}",
                gateway_command("bench.apps:pathsend", port),
                port,
                env={**env, "GATEWAY_PATHSEND": mode},
            )
        )
    nginx_port = free_port()
    (workdir / "nginx.conf").write_text(NGINX_CONF.format(dir=workdir, port=nginx_port, root=workdir))
    nginx = Peer("nginx (sendfile on)", ["nginx", "-c", str(workdir / "nginx.conf"), "-p", str(workdir)], nginx_port)
    print(f"{args.size} byte file, {args.connections} connections, {args.seconds}s x {args.rounds} rounds", flush=True)
    measure([*peers, nginx], "/file.bin", args.rounds, args.seconds, args.connections)
    report([*peers, nginx], nginx)


if __name__ == "__main__":
    sys.exit(main())
