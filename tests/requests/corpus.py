"""Reading the raw requests of ../../../shared/http-corpus (its README says how to decode a file)."""

from __future__ import annotations

import re
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "http-corpus"
GUNICORN = CORPUS / "gunicorn"

_ESCAPE = re.compile(rb"\\(?:r\\n|0|n|t|x([0-9A-Fa-f]{2}))")
_SIMPLE = {b"\\r\\n": b"\r\n", b"\\0": b"\x00", b"\\n": b"\n", b"\\t": b"\t"}


def _replace(match: re.Match[bytes]) -> bytes:
    hex_digits = match.group(1)
    if hex_digits is not None:
        return bytes([int(hex_digits, 16)])
    return _SIMPLE[match.group(0)]


def decode(raw: bytes) -> bytes:
    """The bytes a file stands for: newlines of the file dropped, then the escapes replaced.

    One left-to-right pass, so "\\r\\n" is matched before its "\\n", and an escape's
    output is never read again as the start of another escape.
    """
    text = raw.replace(b"\n", b"")
    decoded = _ESCAPE.sub(_replace, text)
    leftover = _ESCAPE.sub(b"", text)
    if b"\\" in leftover:
        where = leftover.find(b"\\")
        raise ValueError(f"a backslash the corpus README does not define: {leftover[where : where + 20]!r}")
    return decoded


def corpus_files(kind: str) -> list[Path]:
    """The .http files of gunicorn/<kind> ("valid" or "invalid"), sorted by name."""
    return sorted((GUNICORN / kind).glob("*.http"))


def load(path: Path) -> bytes:
    return decode(path.read_bytes())
