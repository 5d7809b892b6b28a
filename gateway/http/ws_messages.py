"""What a WebSocket connection frames, sans-IO: whole messages from fragments, and a denial's HTTP response.

- MessageAssembler joins a message's fragments (wsproto hands them over as
  they arrive) into one websocket.receive, counting its size as it grows
  so a message beyond the limit is refused before it is whole: the size
  of text is its UTF-8 size, after permessage-deflate has inflated it.
- DenialWriter frames the websocket.http.response extension's messages as an
  HTTP/1.1 response that ends the connection: one body message gets a
  Content-Length, a streamed one is chunked.
"""

from __future__ import annotations

from typing import Any

from wsproto.events import BytesMessage, TextMessage

from gateway.http.responses import field_problem, status_line
from gateway.types import Headers, Message

_DENIAL_OURS = frozenset({b"content-length", b"transfer-encoding", b"connection"})  # framing is ours


class MessageTooBig(Exception):
    """An incoming message grew beyond the limit (the connection closes with 1009)."""


class MessageAssembler:
    """One incoming message at a time, from its fragments."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self.parts: list[Any] = []
        self.size = 0
        self.text = False

    def add(self, event: TextMessage | BytesMessage) -> Message | None:
        """The whole message once its last fragment is in, else None; MessageTooBig past max_size."""
        data = event.data
        if not self.parts:
            self.text = isinstance(event, TextMessage)
        self.parts.append(data)
        self.size += len(data) if not isinstance(data, str) or data.isascii() else len(data.encode())
        if self.size > self.max_size:
            self.parts, self.size = [], 0
            raise MessageTooBig(f"message larger than {self.max_size} bytes")
        if not event.message_finished:
            return None
        parts, self.parts, self.size = self.parts, [], 0
        if self.text:
            return {"type": "websocket.receive", "text": parts[0] if len(parts) == 1 else "".join(parts)}
        return {"type": "websocket.receive", "bytes": bytes(parts[0]) if len(parts) == 1 else b"".join(parts)}


def message_size(message: Message) -> int:
    """The size a waiting websocket.receive counts for flow control."""
    return len(message.get("bytes") or message.get("text") or "")


class DenialWriter:
    """The bytes of a denial response: head (held until the first body message), then body pieces."""

    def __init__(self, status: int, headers: Headers, common: bytes) -> None:
        parts = [status_line(status), common]
        for name, value in headers:
            if bytes(name).lower() in _DENIAL_OURS:
                continue
            problem = field_problem(name, value)
            if problem is not None:
                raise RuntimeError(f"A response header cannot be sent: {problem}.")
            parts += (name, b": ", value, b"\r\n")
        self.head: bytes | None = b"".join(parts)
        self.chunked = False

    def body(self, data: bytes, more: bool) -> bytes:
        """What to write for one websocket.http.response.body message."""
        out = b""
        if self.head is not None:
            self.chunked = more
            framing = b"transfer-encoding: chunked\r\n" if more else b"content-length: %d\r\n" % len(data)
            out, self.head = self.head + framing + b"connection: close\r\n\r\n", None
        if not self.chunked:
            return out + data
        if data:
            out += b"%x\r\n%b\r\n" % (len(data), data)
        return out + (b"" if more else b"0\r\n\r\n")
