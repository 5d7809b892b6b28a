"""gateway: one Python server for ASGI, WSGI, PHP, CGI, static files and proxies.

Embedding, in one line (as Appweb's maRunWebServer does):

    import gateway
    gateway.run("gateway.toml")          # or gateway.run("myapp:app"), or gateway.run(app_object)
"""

from __future__ import annotations

__version__ = "0.1.0"

from gateway.runner import run

__all__ = ["__version__", "run"]
