"""A program's stderr as error-log lines (CGI scripts, php-cgi's FCGI_STDERR), bounded in length and number.

Each line goes to the log tagged with the program (its label), cut at
LINE_MAX bytes (marked " [cut]"), with control characters escaped so a
script cannot forge log lines or terminal escapes; beyond LINES_MAX lines
per request the rest is dropped with one line saying so. A flood of stderr
therefore costs neither memory nor the log.
"""

from __future__ import annotations

import logging

LINE_MAX = 4096
LINES_MAX = 200
_CONTROL = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F] if code != 0x09}


class StderrLog:
    """Feed it stderr bytes as they come; flush() at the end logs a last line without its newline."""

    __slots__ = ("cut", "label", "lines", "logger", "partial")

    def __init__(self, label: str, logger: logging.Logger) -> None:
        self.label = label
        self.logger = logger
        self.lines = 0
        self.partial = b""
        self.cut = False

    @property
    def full(self) -> bool:
        """More than LINES_MAX lines came: the rest need not be split any more."""
        return self.lines > LINES_MAX

    def feed(self, data: bytes) -> None:
        lines = (self.partial + data).split(b"\n")
        partial = lines.pop()
        for line in lines:
            self.line(line)
        self.cut = self.cut or len(partial) > LINE_MAX
        self.partial = partial[:LINE_MAX]

    def flush(self) -> None:
        if self.partial and not self.full:
            self.line(self.partial)
        self.partial = b""

    def line(self, line: bytes) -> None:
        self.lines += 1
        if self.lines <= LINES_MAX:
            cut = self.cut or len(line) > LINE_MAX
            text = line[:LINE_MAX].rstrip(b"\r").decode("utf-8", "replace").translate(_CONTROL)
            self.logger.error("%s: %s%s", self.label, text, " [cut]" if cut else "")
        elif self.lines == LINES_MAX + 1:
            self.logger.error("%s: more than %d lines on stderr; the rest is dropped", self.label, LINES_MAX)
        self.cut = False
