"""Wire formats shared by every layer: RFC 3339 times and CSV cells."""

from __future__ import annotations

import datetime as dt
from typing import Literal

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
