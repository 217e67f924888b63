"""Wire formats shared by every layer: RFC 3339 times, CSV cells and strict JSON.

Python's json module recurses once per nesting level, so a body of 100,000 brackets raises
RecursionError (a 500 where a 400 is due); orjson refuses nesting past 1,024 with a ValueError,
and json_parse refuses anything deeper than any document of vrm (MAX_DEPTH). NUL characters are
refused too: no field may hold one, and PostgreSQL cannot store one in text.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import orjson

# A spreadsheet runs a cell starting with one of these as a formula (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

CsvValue = str | int | float | bool | None | list[str] | tuple[str, ...]


def rfc3339(moment: dt.datetime, *, timespec: Literal["auto", "microseconds"] = "auto") -> str:
    """Return an aware moment as RFC 3339 in UTC with a 'Z': 2026-01-02T03:04:05Z.

    "auto" writes microseconds only when there are any (receipts, the API); "microseconds"
    always writes six digits, the fixed-width form the ledger hashes.
    """
    return moment.astimezone(dt.UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def csv_cell(value: CsvValue) -> str | int | float:
    """Return a value fit for a CSV cell.

    None is empty, booleans are true/false, lists are joined by spaces, and text a spreadsheet
    would run as a formula is neutralised with a leading apostrophe.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        value = " ".join(str(item) for item in value)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def csv_cell_text(text: str) -> str:
    """Undo `csv_cell`'s neutralisation of a cell read back: "'=x" is the text "=x"."""
    if text.startswith("'") and text[1:].startswith(FORMULA_START):
        return text[1:]
    return text


# The deepest document vrm takes (an export: records in lists in an object) nests 4 levels.
MAX_DEPTH = 16


def json_depth_check(data: Any, limit: int = MAX_DEPTH) -> None:
    """Raise ValueError if `data` nests deeper than `limit` or holds a NUL character."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise ValueError("Text must not contain NUL characters.")
        elif isinstance(value, (list, dict)):
            if depth > limit:
                raise ValueError(f"The document nests deeper than {limit} levels.")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items)


def json_parse(raw: bytes | str) -> Any:
    """Parse JSON text strictly (RFC 8259, UTF-8); raise ValueError with a reason a client can read."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"This is not valid JSON ({exc}).") from None
    json_depth_check(data)
    return data
