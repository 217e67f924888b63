"""HTML forms for records, described from the same schemas the services validate with.

There is one validation: the service's. This module only describes fields for the templates
and turns a posted form into the service's input (empty optional values become null,
unticked checkboxes false).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from rest_framework import serializers

from personal_data.schemas import StrictSchema

LONG_FIELDS = frozenset({"notes", "directions"})
LABELS = {
    "gtin": "Product code (GTIN / EAN / UPC / ISBN)",
    "sku": "SKU",
    "unit_price": "Price per item",
    "lot": "Lot or batch",
    "purchased_on": "Bought on",
    "order_ref": "Order number",
    "is_gift": "This was a gift",
    "shared": "Vendors I grant access may see this record",
    "acquired_on": "Got it on",
    "rating": "Rating (1-5)",
    "model_number": "Model number",
    "serial_number": "Serial number",
    "warranty_until": "Warranty until",
    "energy_kwh_per_year": "Energy use (kWh per year)",
    "energy_label": "Energy label",
    "rxnorm": "RxNorm code",
    "prescribed_on": "Prescribed on",
    "days_supply": "Days of supply",
    "refills_remaining": "Refills left",
    "last_filled_on": "Last filled on",
}


@dataclass
class FieldSpec:
    name: str
    label: str
    kind: str  # text, textarea, date, number, decimal, select, checkbox
    required: bool
    value: Any = ""
    choices: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    max_length: int | None = None


def _kind(f: serializers.Field) -> str:  # type: ignore[type-arg]
    if isinstance(f, serializers.BooleanField):
        return "checkbox"
    if isinstance(f, serializers.ChoiceField):
        return "select"
    if isinstance(f, serializers.DateField):
        return "date"
    if isinstance(f, serializers.DecimalField):
        return "decimal"
    if isinstance(f, serializers.IntegerField):
        return "number"
    return "text"


def field_specs(
    schema: type[StrictSchema],
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> list[FieldSpec]:
    """Describe a schema's fields for a form, with current values and per-field errors."""
    values, errors = values or {}, errors or {}
    specs = []
    for name, f in schema().fields.items():
        kind = "textarea" if name in LONG_FIELDS else _kind(f)
        choices = [(str(k), str(v)) for k, v in f.choices.items()] if kind == "select" else []  # type: ignore[attr-defined]
        value = values.get(name, f.default if f.default is not serializers.empty else "")
        specs.append(
            FieldSpec(
                name=name,
                label=LABELS.get(name, name.replace("_", " ").capitalize()),
                kind=kind,
                required=f.required,
                value="" if value is None else value,
                choices=choices,
                errors=errors.get(name, []),
                max_length=getattr(f, "max_length", None),
            )
        )
    return specs


def form_payload(schema: type[StrictSchema], posted: QueryDict) -> dict[str, Any]:
    """Turn posted form fields into service input: only the schema's fields, typed loosely."""
    payload: dict[str, Any] = {}
    for name, f in schema().fields.items():
        if isinstance(f, serializers.BooleanField):
            payload[name] = name in posted
        elif name in posted:
            value = posted.get(name, "").strip()
            payload[name] = None if value == "" and f.allow_null else value
    return payload
