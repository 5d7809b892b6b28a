"""Incoming messages from fragments, and the denial response's framing, without sockets."""

from __future__ import annotations

import pytest
from wsproto.events import BytesMessage, TextMessage

from gateway.http.ws_messages import DenialWriter, MessageAssembler, MessageTooBig


def test_fragments_make_one_message_of_their_kind() -> None:
    assembler = MessageAssembler(100)
    assert assembler.add(TextMessage("hé", message_finished=False)) is None
    assert assembler.add(TextMessage("llo")) == {"type": "websocket.receive", "text": "héllo"}
    assert assembler.add(BytesMessage(b"ab", message_finished=False)) is None
    assert assembler.add(BytesMessage(b"c")) == {"type": "websocket.receive", "bytes": b"abc"}


def test_the_limit_counts_utf8_bytes_as_the_message_grows() -> None:
    assembler = MessageAssembler(10)
    assert assembler.add(TextMessage("€€€")) is not None  # 9 bytes
    assembler.add(TextMessage("€€€", message_finished=False))
    with pytest.raises(MessageTooBig, match="larger than 10 bytes"):
        assembler.add(TextMessage("€", message_finished=False))  # 12 bytes, before the message is whole
    assert assembler.add(BytesMessage(b"0123456789")) is not None  # a fresh start after the refusal


def test_a_denial_in_one_message_has_a_length_and_a_streamed_one_is_chunked() -> None:
    whole = DenialWriter(401, [(b"www-authenticate", b"Bearer"), (b"content-length", b"99")], b"date: now\r\n")
    out = whole.body(b"no", more=False)
    assert out.startswith(b"HTTP/1.1 401 Unauthorized\r\ndate: now\r\nwww-authenticate: Bearer\r\n")
    assert out.endswith(b"content-length: 2\r\nconnection: close\r\n\r\nno") and out.count(b"content-length") == 1
    streamed = DenialWriter(404, [], b"")
    first = streamed.body(b"ab", more=True)
    assert b"transfer-encoding: chunked\r\n" in first and first.endswith(b"\r\n\r\n2\r\nab\r\n")
    assert streamed.body(b"", more=False) == b"0\r\n\r\n"


@pytest.mark.parametrize(
    ("field", "words"),
    [((b"x", b"a\r\nb"), "CR, LF or NUL"), ((b"x", b"a\x00b"), "CR, LF or NUL"), ((b"x: y", b"1"), "not a token")],
)
def test_a_header_that_cannot_be_sent_is_refused(field: tuple[bytes, bytes], words: str) -> None:
    with pytest.raises(RuntimeError, match=words):
        DenialWriter(400, [field], b"")
