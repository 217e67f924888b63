"""Bringing records in (vrm-export/1 JSON or a per-category CSV) and taking everything out.

Import is two steps: `import_parse` validates a whole file and reports every bad row and field
without storing anything; `import_commit` stores all of its records in one transaction, or none.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from core.formats import FORMULA_START, csv_cell, csv_cell_text, json_parse
from personal_data import store
from personal_data.categories import RECORD_CATEGORIES
from personal_data.schemas import PreferencesSchema

FORMAT = "vrm-export/1"
MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 50_000
# Export-only fields: accepted back on import and handled by the store, not the schema.
CARRIED = ("source", "source_vendor")
DERIVED = ("id", "next_refill_on")


@dataclass
class ImportProblem:
    row: int  # 1-based data row (CSV: the header is row 1, so data starts at 2); 0 = the file
    category: str
    field: str
    message: str
    value: str = ""  # the bad value as the file has it (shortened), to find it in the file


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return text if len(text) <= 80 else text[:79] + "…"


@dataclass
class ImportPlan:
    """A validated file: documents ready to store, per category, or the problems found."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    preferences: dict[str, Any] | None = None
    problems: list[ImportProblem] = field(default_factory=list)
    # The category a CSV file was read as, when its header told it.
    inferred: str | None = None
    # Per category, the positions of records already in the store (the same content).
    duplicates: dict[str, list[int]] = field(default_factory=dict)

    @property
    def duplicate_counts(self) -> dict[str, int]:
        return {name: len(found) for name, found in self.duplicates.items() if found}

    def without_duplicates(self) -> ImportPlan:
        """The plan with the records already in the store left out."""
        records = {}
        for name, docs in self.records.items():
            skip = set(self.duplicates.get(name, ()))
            kept = [doc for n, doc in enumerate(docs) if n not in skip]
            if kept:
                records[name] = kept
        return ImportPlan(records=records, preferences=self.preferences)

    @property
    def counts(self) -> dict[str, int]:
        counts = {name: len(docs) for name, docs in self.records.items() if docs}
        if self.preferences is not None:
            counts["preferences"] = 1
        return counts

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.counts)


class ImportRefused(Exception):
    """The file cannot be read at all (size, encoding, format); the message says why."""


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise ImportRefused(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRefused(
            f"The file is not UTF-8 text (bad byte at position {exc.start}). Save it as “CSV UTF-8” or JSON."
        ) from None


def _check_cells(row: dict[str, Any], problems: list[ImportProblem], number: int, category: str) -> None:
    for name, value in row.items():
        if isinstance(value, str) and value.startswith(FORMULA_START):
            problems.append(
                ImportProblem(
                    number,
                    category,
                    name,
                    "This cell starts like a spreadsheet formula (=, +, -, @); remove that sign.",
                    _shown(value),
                )
            )


def _validate_row(
    category: str,
    row: dict[str, Any],
    number: int,
    plan: ImportPlan,
    seen: set[str],
    *,
    csv_cells: bool = False,
) -> None:
    cat = RECORD_CATEGORIES[category]
    row = dict(row)
    before = len(plan.problems)
    if csv_cells:
        # Only a CSV cell can be a spreadsheet formula: a raw one is refused, and a cell our
        # export neutralised ("'=x") is the text it stands for ("=x"), carried columns too.
        # JSON carries text as it is, so a vendor's note "=HYPERLINK(...)" or a merchant
        # "-Minus Market" comes back from a full export unchanged.
        _check_cells(row, plan.problems, number, category)
        row = {k: csv_cell_text(v) if isinstance(v, str) else v for k, v in row.items()}
    record_id = str(row.pop("id", "") or "")
    row.pop("next_refill_on", None)
    carried = {k: row.pop(k) for k in CARRIED if k in row}
    if record_id:
        if record_id in seen:
            plan.problems.append(
                ImportProblem(number, category, "id", "This id appears twice in the file.", _shown(record_id))
            )
        seen.add(record_id)
    if category == "purchases" and carried.get("source", "import") not in ("manual", "import", "vendor"):
        plan.problems.append(
            ImportProblem(
                number, category, "source", "Use manual, import or vendor.", _shown(carried.get("source"))
            )
        )
    try:
        doc = store.validate(cat.schema, row)
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            shown = _shown(row.get(name)) if name in row else ""
            plan.problems.extend(ImportProblem(number, category, name, m, shown) for m in messages)
        return
    if len(plan.problems) == before:
        if category == "purchases":
            doc["source"] = carried.get("source") or "import"
            doc["source_vendor"] = str(carried.get("source_vendor") or "")[:200]
        plan.records.setdefault(category, []).append(doc)


def _csv_rows(text: str, category: str, plan: ImportPlan) -> Iterator[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    cat = RECORD_CATEGORIES[category]
    allowed = set(cat.schema().fields) | set(CARRIED) | set(DERIVED)
    required = {n for n, f in cat.schema().fields.items() if f.required}
    unknown = [h for h in header if h not in allowed]
    missing = sorted(required - set(header))
    if not header:
        plan.problems.append(ImportProblem(0, category, "", "The file is empty or has no header row."))
        return
    if unknown or missing or len(set(header)) != len(header):
        if unknown:
            plan.problems.append(
                ImportProblem(
                    1,
                    category,
                    ", ".join(unknown),
                    f"Unknown column(s) for {category}: {', '.join(unknown)}.",
                )
            )
        if missing:
            plan.problems.append(
                ImportProblem(
                    1, category, ", ".join(missing), f"Missing required column(s): {', '.join(missing)}."
                )
            )
        if len(set(header)) != len(header):
            plan.problems.append(ImportProblem(1, category, "", "A column name appears twice."))
        return
    for number, row in enumerate(reader, start=2):
        if None in row:
            plan.problems.append(
                ImportProblem(number, category, "", "This row has more cells than the header.")
            )
            continue
        # An empty cell means "not given": let the schema apply its default.
        yield number, {k: v for k, v in row.items() if v not in ("", None)}


def csv_category(text: str) -> str | None:
    """The one kind of record whose columns a CSV header fits (all known, required ones there)."""
    header = next(csv.reader(io.StringIO(text, newline="")), [])
    columns = {name.strip() for name in header}
    fits = []
    for name, cat in RECORD_CATEGORIES.items():
        fields = cat.schema().fields
        required = {n for n, f in fields.items() if f.required}
        if columns and required <= columns and columns <= set(fields) | set(CARRIED) | set(DERIVED):
            fits.append(name)
    return fits[0] if len(fits) == 1 else None


def import_parse(*, raw: bytes, filename: str, category: str | None = None) -> ImportPlan:
    """Validate a whole file; return every record to store or every problem. Store nothing."""
    text = _decode(raw)
    plan = ImportPlan()
    seen: set[str] = set()
    if filename.lower().endswith(".json") or text.lstrip().startswith("{"):
        try:
            data = json_parse(text)
        except ValueError as exc:
            raise ImportRefused(str(exc)) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ImportRefused(f'A JSON import must be a "{FORMAT}" file (with "format": "{FORMAT}").')
        total = sum(len(data.get(name) or []) for name in RECORD_CATEGORIES)
        if total > MAX_ROWS:
            raise ImportRefused(f"The file has {total} records; at most {MAX_ROWS} can be imported at once.")
        for name in RECORD_CATEGORIES:
            rows = data.get(name) or []
            if not isinstance(rows, list):
                plan.problems.append(ImportProblem(0, name, "", f"“{name}” must be a list of records."))
                continue
            for number, row in enumerate(rows, start=1):
                if not isinstance(row, dict):
                    plan.problems.append(
                        ImportProblem(number, name, "", "Each record must be a JSON object.")
                    )
                    continue
                _validate_row(name, row, number, plan, seen)
        if data.get("preferences"):
            try:
                plan.preferences = store.validate(PreferencesSchema, data["preferences"])
            except ValidationError as error:
                for name, messages in error.message_dict.items():
                    plan.problems.extend(ImportProblem(1, "preferences", name, m) for m in messages)
        return plan
    if not category:
        category = csv_category(text)
        plan.inferred = category
    if category not in RECORD_CATEGORIES:
        raise ImportRefused(
            "The columns of this CSV file do not tell which kind of records it holds. "
            "Choose the kind, or use the column names of an export."
        )
    for count, (number, row) in enumerate(_csv_rows(text, category, plan), start=1):
        if count > MAX_ROWS:
            raise ImportRefused(f"The file has more than {MAX_ROWS} rows; split it into smaller files.")
        _validate_row(category, row, number, plan, seen, csv_cells=True)
    return plan


def category_csv(category: str, documents: list[dict[str, Any]]) -> str:
    """Write documents of one category as CSV with the documented field names as header."""
    cat = RECORD_CATEGORIES[category]
    names = ["id", *cat.schema().fields, *([*CARRIED] if category == "purchases" else [])]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for doc in documents:
        writer.writerow([csv_cell(doc.get(n)) for n in names])
    return out.getvalue()
