"""Field validators for record content (GS1 codes, ISO 4217, sensible dates)."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pycountry
from django.utils import timezone

GTIN_LENGTHS = frozenset({8, 12, 13, 14})
EARLIEST_DATE = dt.date(1900, 1, 1)


def gtin_check_digit(body: str) -> int:
    """Return the GS1 mod-10 check digit for the digits before it."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def gtin_is_valid(code: str) -> bool:
    return (
        code.isascii()
        and code.isdigit()
        and len(code) in GTIN_LENGTHS
        and gtin_check_digit(code[:-1]) == int(code[-1])
    )


def gtin_normalise(code: str) -> str:
    """Return the GTIN-14 form, so UPC-A, EAN-13 and GTIN-14 spellings of one product match."""
    return code.zfill(14)


def gtin_error(code: str) -> str | None:
    if not (code.isascii() and code.isdigit()):
        return "A GTIN has digits only."
    if len(code) not in GTIN_LENGTHS:
        return "A GTIN has 8, 12, 13 or 14 digits."
    if not gtin_is_valid(code):
        return "This GTIN's check digit is wrong; please check the number."
    return None


@lru_cache(maxsize=1)
def currency_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.currencies)


def date_error(value: dt.date, *, future_years: int = 0) -> str | None:
    """Refuse dates before 1900, or after today plus future_years (and a day's slack)."""
    latest = timezone.now().date() + dt.timedelta(days=1 + 366 * future_years)
    if value < EARLIEST_DATE:
        return "This date is too far in the past."
    if value > latest:
        return "This date is too far ahead." if future_years else "This date is in the future."
    return None
