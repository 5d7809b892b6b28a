"""What `gateway dev` prints, for people: short timed lines, colour on a terminal, readable tracebacks.

Colour is on when the stream is a terminal, off otherwise; NO_COLOR (any
non-empty value, https://no-color.org) turns it off and FORCE_COLOR turns it
on. Each stream decides for itself, so `gateway dev 2>errors.log` keeps the
access lines coloured and the log file plain.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

STYLES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35"}
STYLES |= {"cyan": "36"}
LEVEL_LABELS = {logging.DEBUG: ("debug", "dim"), logging.INFO: ("info", "blue"), logging.WARNING: ("warning", "yellow")}
LABEL_STYLES = {
    "reload": "magenta",
    "ready": "green",
    "error": "red",
    "wait": "yellow",
    "stop": "blue",
    "watch": "blue",
}
LABEL_WIDTH = 7
# Frames from these folders are the machinery around the app's code: shown dim so the app's own stand out.
_HERE = Path(__file__).resolve().parents[1]
_LIBRARY_DIRS = tuple(
    str(Path(folder).resolve()) + os.sep for folder in (sys.prefix, sys.base_prefix, _HERE, _HERE.parent / "adapters")
)


def wants_colour(stream: Any) -> bool:
    """Colour for this stream: NO_COLOR wins, then FORCE_COLOR, then whether it is a terminal."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Paint:
    """Wraps text in ANSI styles, or leaves it alone when colour is off."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, *styles: str) -> str:
        if not self.enabled or not styles:
            return text
        codes = ";".join(STYLES[s] for s in styles)
        return f"\033[{codes}m{text}\033[0m"


def clock(when: float | None = None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(when))


class DevFormatter(logging.Formatter):
    """`12:04:31 reload  app.py changed`: time, a label, the message, then any traceback.

    The label is the record's `label` extra (reload, ready, error, wait...) or
    its level; gateway's own records need no change to read well here.
    """

    def __init__(self, paint: Paint) -> None:
        super().__init__()
        self.paint = paint

    def format(self, record: logging.LogRecord) -> str:
        label, style = self.label(record)
        prefix = f"{self.paint(clock(record.created), 'dim')} {self.paint(label.ljust(LABEL_WIDTH), style)} "
        text = prefix + record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += "\n" + format_traceback(record.exc_info[1], self.paint)
        return text

    @staticmethod
    def label(record: logging.LogRecord) -> tuple[str, str]:
        label = getattr(record, "label", None)
        if isinstance(label, str):
            return label, LABEL_STYLES.get(label, "bold")
        if record.levelno >= logging.ERROR:
            return "error", "red"
        return LEVEL_LABELS.get(record.levelno, ("info", "blue"))


def format_traceback(exc: BaseException, paint: Paint) -> str:
    """The traceback with the app's frames in plain text, machinery dim, the error itself in red.

    The import system's frozen frames are left out: they say nothing about the app.
    """
    report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    _drop_frozen(report)
    lines = "".join(report.format()).rstrip("\n").split("\n")
    shown, library = [], False
    for line in lines:
        if line.startswith('  File "'):
            path = line[8 : line.find('"', 8)]
            library = path.startswith("<") or str(Path(path).resolve()).startswith(_LIBRARY_DIRS)
            shown.append(paint(line, "dim") if library else paint(line, "cyan"))
        elif line.startswith("    "):
            shown.append(paint(line, "dim") if library else line)
        elif line.startswith(("Traceback", "The above", "During handling")) or not line:
            shown.append(paint(line, "dim"))
        else:
            shown.append(paint(line, "red", "bold"))
    return "\n".join(shown)


def _drop_frozen(report: traceback.TracebackException) -> None:
    pending: list[traceback.TracebackException | None] = [report]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list(
            [frame for frame in current.stack if not frame.filename.startswith("<frozen importlib")]
        )
        pending += [current.__cause__, current.__context__]


def console_handler(stream: TextIO) -> logging.Handler:
    """A logging handler writing DevFormatter lines to stream, coloured when it is a terminal."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(DevFormatter(Paint(wants_colour(stream))))
    return handler


def status_style(status: int) -> str:
    return {2: "green", 3: "cyan", 4: "yellow"}.get(status // 100, "red")


def render_access(entry: dict[str, Any], paint: Paint) -> str:
    """`12:04:31 200 GET  localhost:8080/hello  1.2 ms  512 B` from a JSON access-log entry."""
    status = int(entry["status"])
    host = entry.get("host", "-")
    where = entry["target"] if host == "-" else f"{host}{entry['target']}"
    method = entry["method"]
    size = f"{entry['bytes']} B" if entry.get("bytes") else "-"
    user = f"  user {entry['user']}" if entry.get("user", "-") != "-" else ""
    return (
        f"{paint(clock(), 'dim')} {paint(str(status), status_style(status), 'bold')} "
        f"{paint(method.ljust(4), 'bold')} {where}  {paint(format_ms(entry.get('duration_ms', 0.0)), 'dim')}  "
        f"{paint(size, 'dim')}{user}"
    )


def format_ms(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


class AccessConsole(io.TextIOBase):
    """Stands in for sys.stdout in the serving process: JSON access lines become people's lines.

    The server's access log writes JSON to sys.stdout in dev; each complete
    line is rendered and written through at once (no once-a-second batching).
    Anything else the app prints passes through unchanged.
    """

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self.paint = Paint(wants_colour(stream))
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        if "\n" in self.pending:
            *lines, self.pending = self.pending.split("\n")
            self.stream.write("".join(self.render(line) + "\n" for line in lines))
            self.stream.flush()
        return len(text)

    def render(self, line: str) -> str:
        if line.startswith('{"time"'):
            try:
                return render_access(json.loads(line), self.paint)
            except (ValueError, KeyError, TypeError):
                pass
        return line

    def flush(self) -> None:
        if self.pending:
            self.stream.write(self.pending)
            self.pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self.stream.encoding

    def writable(self) -> bool:
        return True
