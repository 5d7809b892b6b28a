"""The [server] ws_* keys as one worker's WebSocket connections read them (built once, at start)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.config.schema import Limits, ServerSettings


@dataclass(frozen=True, slots=True)
class WebSocketSettings:
    """The [server] ws_* keys and the handshake's time limit, read once per worker."""

    max_message_size: int = 16 * 1024 * 1024
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    idle_timeout: float = 0.0
    per_message_deflate: bool = True
    handshake_timeout: float = 300.0  # request_timeout: the app's time to accept or refuse

    @classmethod
    def of(cls, server: ServerSettings, limits: Limits) -> WebSocketSettings:
        return cls(
            server.ws_max_message_size,
            server.ws_ping_interval,
            server.ws_ping_timeout,
            server.ws_idle_timeout,
            server.ws_per_message_deflate,
            limits.request_timeout,
        )
