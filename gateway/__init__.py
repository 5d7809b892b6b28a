"""gateway: one Python server for ASGI, WSGI, PHP, CGI, static files and proxies.

Embedding, in one line (as Appweb's maRunWebServer does):

    import gateway
    gateway.run("gateway.toml")          # or gateway.run("myapp:app"), or gateway.run(app_object)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["__version__", "run"]


def run(*targets: Any, **options: Any) -> int:
    """Serve until SIGTERM/SIGINT; see gateway.runner.run (imported here lazily, so that
    importing any gateway module does not pull in every adapter)."""
    from gateway.runner import run as run_server

    return run_server(*targets, **options)
