"""Sizes ("10MiB", "512KB", 1024) and durations (30, "5s", "2m", "1h") in config values."""

from __future__ import annotations

import re

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B?)\s*", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "ki": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "mi": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "gi": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
    "ti": 1024**4,
}
MAX_SIZE = 2**62  # bytes (4 EiB): anything larger is a typo, and would overflow where C takes the number
MAX_SECONDS = 10**9  # about 31 years: the event loop's timers take nothing longer
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|)\s*", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "": 1.0, "m": 60.0, "h": 3600.0}


def parse_size(value: object) -> int:
    """Bytes from an integer or a string such as "10MiB"; ValueError with what was expected."""
    if isinstance(value, bool):
        raise ValueError('expected a size such as 1048576, "512KB" or "10MiB"')
    if isinstance(value, int) and 0 <= value <= MAX_SIZE:
        return value
    if isinstance(value, str):
        match = _SIZE.fullmatch(value)
        if match and match.group(2).lower() in _SIZE_UNITS:
            exact = float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
            if not exact.is_integer():  # "1.5" was 1 byte: a typo for "1.5KB" or "1.5MiB", most likely
                raise ValueError(
                    f"a size is a whole number of bytes: {value!r} is {exact:g}; add a unit, as in '1.5MiB'"
                )
            if exact <= MAX_SIZE:
                return int(exact)
    raise ValueError(f'expected a size such as 1048576, "512KB" or "10MiB", got {value!r}')


def parse_duration(value: object) -> float:
    """Seconds from a number or a string such as "5s", "2m", "250ms"."""
    if isinstance(value, bool):
        raise ValueError('expected seconds such as 30, "5s" or "2m"')
    if isinstance(value, (int, float)) and 0 <= value <= MAX_SECONDS:  # not nan, not inf
        return float(value)
    if isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match:
            seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2).lower()]
            if seconds <= MAX_SECONDS:
                return seconds
    raise ValueError(f'expected seconds such as 30, "5s" or "2m", got {value!r}')
