"""Wire formats: RFC 3339 times and CSV cells that a spreadsheet cannot run."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.formats import FORMULA_START, csv_cell, csv_cell_text, json_parse, rfc3339


def test_rfc3339_is_utc_with_a_z() -> None:
    moment = dt.datetime(2026, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert rfc3339(moment) == "2026-05-06T05:08:09Z"
    assert rfc3339(moment, timespec="microseconds") == "2026-05-06T05:08:09.000000Z"
    assert rfc3339(moment.replace(microsecond=7)) == "2026-05-06T05:08:09.000007Z"


def test_csv_cells() -> None:
    assert csv_cell(None) == "" and csv_cell(True) == "true" and csv_cell(False) == "false"
    assert csv_cell(["a:read", "b:read"]) == "a:read b:read" and csv_cell(-3) == -3
    assert csv_cell('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'


@given(st.text())
def test_a_cell_read_back_is_the_text_written(text: str) -> None:
    cell = csv_cell(text)
    assert isinstance(cell, str)
    assert not cell.startswith(FORMULA_START)  # nothing a spreadsheet would run
    assert csv_cell_text(cell) == text


def test_json_parse_takes_documents_and_refuses_what_no_field_holds() -> None:
    assert json_parse('{"dietary": ["vegan"], "sizes": {"shoe": "42"}}') == {
        "dietary": ["vegan"],
        "sizes": {"shoe": "42"},
    }
    assert json_parse(b"[" * 16 + b"]" * 16) is not None
    for bad, reason in (
        (b"[" * 17 + b"]" * 17, "nests deeper than 16 levels"),
        (b"[" * 100_000 + b"]" * 100_000, "depth limit exceeded"),  # orjson stops at 1,024
        (b'{"a": "x\\u0000y"}', "NUL"),
        (b'{"\\u0000": 1}', "NUL"),
        (b'"\xff"', "not valid JSON"),
        (b"NaN", "not valid JSON"),
        (b"1e999", "not valid JSON"),
    ):
        with pytest.raises(ValueError, match=reason):
            json_parse(bad)
