"""The project's ASGI side, for WebSockets: app = "django_site.asgi:application" on the /ws/ route.

The pages stay on the WSGI handler (django_site/wsgi.py); the gateway routes
/ws/ here, where Channels' ProtocolTypeRouter sends WebSocket connections to
the consumers of notes/routing.py. AllowedHostsOriginValidator refuses a
handshake whose Origin is not one of ALLOWED_HOSTS (cross-site WebSocket
hijacking), which the gateway answers with 403.
"""

from __future__ import annotations

import os

from channels.routing import ProtocolTypeRouter, URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
django_http = get_asgi_application()  # sets Django up before the consumers import models

from notes.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
    }
)
