"""The auditor portal's filter forms and streamed exports.

Filters arrive as GET parameters and are validated by a form: a bad value gets a message on the
page (or a 400 for an export), never a 500. Exports stream from the database in chunks, so a
large ledger is never loaded whole.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import StreamingHttpResponse

from audit.ledger import rfc3339
from audit.models import LedgerEntry
from auditor.selectors import ACTIVITY_DAYS, ENTRY_FIELDS, GrantStatus, activity_window, leaf_indexes
from core.formats import csv_cell
from core.replica import read_alias
from vendors.selectors import vendor_actor_ids, vendor_directory

CHUNK_SIZE = 2000
# The same shapes ledger_append accepts, so a filter can only ever name an id or a code.
_id = RegexValidator(r"^[A-Za-z0-9_.:/+=-]{1,64}$", "Use letters, digits and . _ : / + = - only.")
_scope = RegexValidator(r"^[a-z0-9_.:-]{1,64}$", "A scope looks like purchases:read.")
_subject = RegexValidator(
    r"^p-[a-z2-7]{32}$", "A person pseudonym looks like p- followed by 32 letters and digits."
)


class DateInput(forms.DateInput):
    input_type = "date"


# The ledger holds nothing older or newer; bounds also keep "the day after" and the time-zone
# shift of a day's start inside what datetime can represent (9999-12-31 + 1 day overflows).
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2999, 12, 31)
_in_range = (
    MinValueValidator(EARLIEST, f"Choose a day on or after {EARLIEST.isoformat()}."),
    MaxValueValidator(LATEST, f"Choose a day on or before {LATEST.isoformat()}."),
)


def _vendor_choices(current: str) -> list[tuple[str, Any]]:
    """Organisations and their apps by name, each mapping to the id the ledger holds."""
    choices: list[tuple[str, Any]] = [("", "All vendors")]
    known = {""}
    for org in vendor_directory():
        group = [(org.organisation_id, f"{org.organisation}: all its apps")]
        group += [(client_id, f"{org.organisation}: {name}") for client_id, name in org.apps]
        known.update(value for value, _ in group)
        choices.append((org.organisation, group))
    if current not in known:
        # A link may name an id no organisation holds any more (or never did): keep it selectable.
        choices.append((current, f"{current} (as recorded in the ledger)"))
    return choices


class FilterForm(forms.Form):
    """Vendor and time range, common to every filter form.

    `vendor` is an organisation id (the organisation and all its apps) or an id as the ledger
    holds it (a client id); the page offers it as a select of names.
    """

    vendor = forms.CharField(
        label="Vendor",
        required=False,
        max_length=64,
        validators=[_id],
        widget=forms.Select,
        help_text="An organisation stands for all its apps.",
    )
    date_from = forms.DateField(label="From", required=False, widget=DateInput, validators=_in_range)
    date_to = forms.DateField(
        label="To", required=False, widget=DateInput, validators=_in_range, help_text="Inclusive."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        current = str(self.data.get("vendor", "")) if self.is_bound else ""
        self.fields["vendor"].widget.choices = _vendor_choices(current)  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError("The “From” date must be on or before the “To” date.")
        return cleaned

    def filters(self) -> dict[str, Any]:
        """Return the cleaned values as keyword arguments for a portal selector.

        The vendor becomes the ledger actor ids it stands for (`vendors`).
        """
        filters = dict(self.cleaned_data)
        vendor = filters.pop("vendor", "")
        filters["vendors"] = vendor_actor_ids(vendor_id=vendor) if vendor else []
        return filters


class GrantFilterForm(FilterForm):
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *GrantStatus.CHOICES]
    )
    scope = forms.CharField(label="Scope", required=False, max_length=64, validators=[_scope])
    field_order = ("vendor", "status", "scope", "date_from", "date_to")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["date_from"].help_text = "Grants created on or after this day."
        self.fields["date_to"].help_text = "Grants created on or before this day."


class ActivityFilterForm(FilterForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        days = ACTIVITY_DAYS
        self.fields["date_from"].help_text = f"Without it, the {days} days up to “To” or to the newest entry."

    def filters(self) -> dict[str, Any]:
        """Return the filters with the time range bounded as activity_window does."""
        filters = super().filters()
        filters["date_from"], filters["date_to"] = activity_window(
            date_from=filters["date_from"], date_to=filters["date_to"]
        )
        return filters


class EntryFilterForm(FilterForm):
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *LedgerEntry.Kind.choices]
    )
    subject = forms.CharField(label="Person pseudonym", required=False, max_length=34, validators=[_subject])
    grant_id = forms.CharField(label="Grant id", required=False, max_length=64, validators=[_id])
    outcome = forms.ChoiceField(
        label="Outcome", required=False, choices=[("", "Any outcome"), *LedgerEntry.Outcome.choices]
    )
    field_order = ("kind", "vendor", "subject", "grant_id", "outcome", "date_from", "date_to")


# --- exports ---------------------------------------------------------------------------------

Row = Mapping[str, Any]
Shape = Callable[[Row], dict[str, Any]]

GRANT_COLUMNS = ("grant_id", "vendor", "subject", "scopes", "status", "created_at", "last_change_at")
ACTIVITY_COLUMNS = ("vendor", "day", "reads", "writes", "checks", "records_disclosed", "denied")
ENTRY_COLUMNS = ENTRY_FIELDS


def _time(moment: dt.datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def grant_shape(row: Row) -> dict[str, Any]:
    return {
        "grant_id": row["grant_id"],
        "vendor": row["vendor"],
        "subject": row["subject"],
        "scopes": list(row["scopes"] or []),
        "status": row["status"],
        "created_at": _time(row["first_at"]),
        "last_change_at": _time(row["last_at"]),
    }


def activity_shape(row: Row) -> dict[str, Any]:
    return {
        "vendor": row["vendor"],
        "day": row["day"].isoformat(),
        "reads": row["reads"],
        "writes": row["writes"],
        "checks": row["checks"],
        "records_disclosed": row["records"],
        "denied": row["denied"],
    }


def entry_shape(row: Row) -> dict[str, Any]:
    return {**{name: row[name] for name in ENTRY_COLUMNS}, "created_at": _time(row["created_at"])}


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can feed a generator."""

    def write(self, value: str) -> str:
        return value


def _rows(queryset: QuerySet[Model, Row] | Iterable[Row], shape: Shape) -> Iterator[dict[str, Any]]:
    rows = queryset.iterator(chunk_size=CHUNK_SIZE) if isinstance(queryset, QuerySet) else queryset
    for row in rows:
        yield shape(row)


def entries_with_leaves(queryset: QuerySet[Model, Row]) -> Iterator[Row]:
    """Add each entry's leaf index, a chunk of entries at a time.

    Joining the leaves in the export's query made PostgreSQL plan the cursor as a hash of every
    leaf (10 million at 10M entries) before its first row; a lookup per chunk streams.
    """
    rows = queryset.iterator(chunk_size=CHUNK_SIZE)
    while chunk := list(itertools.islice(rows, CHUNK_SIZE)):
        leaves = leaf_indexes(entry_ids=[row["id"] for row in chunk])
        for row in chunk:
            yield {**row, "leaf_index": leaves.get(row["id"])}


def _csv_lines(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for row in rows:
        yield writer.writerow([csv_cell(row[name]) for name in columns])


def _json_chunks(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield "["
    separator = "\n"
    for row in rows:
        yield separator + json.dumps(row, cls=DjangoJSONEncoder)
        separator = ",\n"
    yield "\n]\n"


def _in_one_transaction(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Read the rows in one transaction, which is what lets them stream.

    Outside a transaction Django declares its server-side cursor WITH HOLD, and PostgreSQL then
    materialises the whole result before the first row: minutes and gigabytes for the whole
    ledger. Inside one the cursor reads as the client takes rows, from one snapshot. The
    transaction is on the database the rows are read from (the replica, for the auditor's exports).
    """
    with transaction.atomic(using=read_alias()):
        yield from rows


def export_response(
    *,
    queryset: QuerySet[Model, Row] | Iterable[Row],
    shape: Shape,
    columns: Sequence[str],
    fmt: str,
    name: str,
) -> StreamingHttpResponse:
    """Stream the queryset's rows as a CSV file or a JSON array, as a download."""
    rows = _in_one_transaction(_rows(queryset, shape))
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_lines(rows, columns), content_type="text/csv; charset=utf-8")
    else:
        response = StreamingHttpResponse(_json_chunks(rows), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
