"""WebSocket URLs of the notes app (paths below the gateway's /ws/ route, whose root_path Channels strips)."""

from __future__ import annotations

from django.urls import path

from notes.consumers import CounterConsumer

websocket_urlpatterns = [path("counter/", CounterConsumer.as_asgi())]
