"""CSV export and import: a record comes back as it left, formula-like text included."""

from __future__ import annotations

import json
from typing import Any

from personal_data import services
from personal_data.selectors import records_for_owner
from personal_data.transfer import category_csv, import_parse
from tests.conftest import purchase_data


def test_formula_like_text_is_neutralised_in_the_export_and_restored_on_import(alice: Any) -> None:
    notes = '=HYPERLINK("http://evil.example","click")'
    services.record_create(owner=alice, category="purchases", data=purchase_data(notes=notes, lot="-L1"))
    exported = category_csv("purchases", records_for_owner(owner=alice, category="purchases"))
    assert "'=HYPERLINK" in exported and ",=HYPERLINK" not in exported
    plan = import_parse(raw=exported.encode(), filename="purchases.csv", category="purchases")
    assert plan.problems == []
    (record,) = plan.records["purchases"]
    assert record["notes"] == notes and record["lot"] == "-L1"


def test_a_raw_formula_in_an_imported_file_is_still_refused(alice: Any) -> None:
    exported = category_csv("purchases", [purchase_data(notes="=1+1")])
    raw = exported.replace("'=1+1", "=1+1")
    plan = import_parse(raw=raw.encode(), filename="purchases.csv", category="purchases")
    assert [p.field for p in plan.problems] == ["notes"]


def test_a_json_export_carries_formula_like_text_verbatim(alice: Any) -> None:
    # A vendor may write any text into a person's record; a JSON file is never opened as a
    # spreadsheet, so it carries that text as it is and imports back unchanged.
    tricky = purchase_data(
        merchant="-Minus Market", notes='=HYPERLINK("http://evil.example","click")', lot="+L1", brand="@home"
    )
    services.record_create(owner=alice, category="purchases", data=tricky, source="vendor")
    (doc,) = records_for_owner(owner=alice, category="purchases")
    raw = json.dumps({"format": "vrm-export/1", "purchases": [doc]}).encode()
    plan = import_parse(raw=raw, filename="export.json")
    assert plan.problems == []
    (record,) = plan.records["purchases"]
    assert {k: record[k] for k in tricky} == {k: doc[k] for k in tricky}
    assert record["merchant"] == "-Minus Market" and record["notes"].startswith("=HYPERLINK")
