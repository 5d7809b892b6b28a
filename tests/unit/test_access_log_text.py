"""How the access log writes what clients send: never a broken line, never bytes read wrong."""

from __future__ import annotations

import pytest

from gateway.logs import _quote, _text


@pytest.mark.parametrize(
    ("sent", "written"),
    [
        (b"curl/8.0", "curl/8.0"),
        (b"caf\xc3\xa9", "caf\\xC3\\xA9"),  # nginx's \xHH of each byte, not a mojibake "cafÃ©"
        (b"caf\xe9", "caf\\xE9"),
        (b'say "hi" \\ \x01', 'say \\"hi\\" \\\\ \\x01'),
        (b"caf\xe9 \x85x", "caf\\xE9 \\x85x"),  # each byte alike, whatever else the value holds
    ],
)
def test_combined_lines_are_ascii_with_every_other_byte_escaped(sent: bytes, written: str) -> None:
    assert _quote(sent.decode("latin-1")) == written


@pytest.mark.parametrize(
    ("sent", "shown"),
    [(b"curl/8.0", "curl/8.0"), (b"caf\xc3\xa9", "café"), (b"caf\xe9", "caf\\xe9")],
)
def test_json_values_are_the_utf_8_text_clients_send(sent: bytes, shown: str) -> None:
    assert _text(sent.decode("latin-1")) == shown
