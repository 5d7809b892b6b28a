"""Turning TOML tables into frozen dataclasses, collecting every problem with its key path."""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from pathlib import Path
from typing import Any, TypeVar

from gateway.config.units import parse_duration, parse_size

T = TypeVar("T")
MAX_INT = 2**31 - 1  # counts, ports, seconds: beyond it a value is a typo, and C would refuse it (backlog)


class Problems:
    """Every problem found in one source, as (source, key path, message)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[str, str, str]] = []

    def add(self, key: str, message: str) -> None:
        """Record a problem; only the first one per key path (later ones follow from it)."""
        if not any(existing == key for _, existing, _ in self.items):
            self.items.append((self.source, key, message))


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def build(cls: type[T], table: object, path: str, problems: Problems) -> T:
    """An instance of dataclass cls from a TOML table; defaults stand in for bad values."""
    if not isinstance(table, dict):
        problems.add(path, f"expected a table, got {_kind(table)}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for key, value in table.items():
        field = fields.get(key)
        if field is None:
            problems.add(f"{path}.{key}", f"unknown key{did_you_mean(key, fields)}; known keys: {', '.join(fields)}")
            continue
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = build(hint, value, f"{path}.{key}", problems)  # type: ignore[arg-type]
            continue
        try:
            values[key] = convert(value, hint, field.metadata.get("kind", ""))
        except ValueError as exc:
            problems.add(f"{path}.{key}", str(exc))
    return cls(**values)


class FromEnvironment(str):
    """A string value that ${VAR} filled in: where a number or a boolean is due, its text is read as one.

    TOML cannot put ${WORKERS} in an integer, so `workers = "${WORKERS}"` is how
    a container passes one; a quoted number written by hand stays an error.
    """

    __slots__ = ()

    def typed(self) -> object:
        text = self.strip()
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return str(self)


def convert(value: object, hint: Any, kind: str) -> Any:
    """One value, checked against its field's type; ValueError says what was expected."""
    if kind == "size":
        return parse_size(value)
    if kind == "duration":
        return parse_duration(value)
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            # A close spelling helps for words; for numbers (303 vs 308) it would mislead.
            hint_text = did_you_mean(value, [str(c) for c in choices]) if isinstance(value, str) else ""
            raise ValueError(f"expected one of {', '.join(map(repr, choices))}, got {value!r}{hint_text}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"expected a list of strings, got {_kind(value)}")
        return tuple(_no_nul(v) for v in value)
    if origin is dict:
        return _string_map(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value
    if isinstance(value, FromEnvironment) and hint in (int, float, bool):
        value = value.typed()
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
            raise ValueError(f"expected a whole number from 0 to {MAX_INT}, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_INT:
            raise ValueError(f"expected a number from 0 to {MAX_INT}, got {value!r}")  # nan and inf too
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {_kind(value)}")
        return _no_nul(value)
    raise ValueError(f"cannot read a value of type {hint!r}")


def _string_map(value: object) -> dict[str, str]:
    """A table of names to strings (php_ini, env); numbers and booleans become their text ("1"/"0" for booleans)."""
    if not isinstance(value, dict):
        raise ValueError(f'expected a table, as in {{ "name" = "value" }}, got {_kind(value)}')
    result: dict[str, str] = {}
    for name, item in value.items():
        if isinstance(item, bool):
            result[name] = "1" if item else "0"
        elif isinstance(item, (str, int, float)):
            result[name] = _no_nul(str(item))
        else:
            raise ValueError(f"{name!r}: expected a string or a number, got {_kind(item)}")
    return result


def log_path_problem(target: str, base: Path) -> str | None:
    """Why an access_log value (relative to base, the config's folder) cannot be opened for appending, or None."""
    if target in ("-", "off"):
        return None
    target = os.path.join(base, target)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        return f'the folder {folder} does not exist (create it, or log to "-" or "off")'
    if os.path.isdir(target):
        return f"{target} is a folder; name a file in it"
    return None


def _no_nul(text: str) -> str:
    """A string headed for a path, a process's argument or its environment, where NUL cannot go."""
    if "\0" in text:
        raise ValueError(f"a NUL character cannot be in this value, got {text!r}")
    return text


def _kind(value: object) -> str:
    names = {dict: "a table", list: "a list", str: "a string", bool: "a boolean", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)
