"""The live counter: every open /live/ page sees every click at once, through the channel layer.

The count lives in this process (as does the in-memory channel layer of
settings.CHANNEL_LAYERS): with workers = 1 every page shares it. Several
workers or hosts would each keep their own; a Redis channel layer and a
database row would share them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from channels.generic.websocket import AsyncJsonWebsocketConsumer

GROUP = "counter"
COUNT = {"clicks": 0, "watching": 0}


class CounterConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """{"action": "click"} adds one; everyone watching gets {"clicks": n, "watching": m}."""

    groups: ClassVar[list[str]] = [GROUP]

    async def connect(self) -> None:
        await self.accept()
        COUNT["watching"] += 1
        await self.channel_layer.group_send(GROUP, {"type": "counter.changed"})

    async def disconnect(self, code: int) -> None:
        COUNT["watching"] -= 1
        await self.channel_layer.group_send(GROUP, {"type": "counter.changed"})

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("action") == "click":
            COUNT["clicks"] += 1
            await self.channel_layer.group_send(GROUP, {"type": "counter.changed"})

    async def counter_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(dict(COUNT))
