"""The record formats of INTERFACES.md §6 as strict input schemas.

DRF serializers are used as plain validators here (no models): they give field-level messages,
type checks and bounds. `StrictSchema` adds what DRF leaves out: unknown fields are an error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from rest_framework import serializers

from personal_data.validators import currency_codes, date_error, gtin_error

TEXT = 200
LONG_TEXT = 2000


def _text(max_length: int = TEXT, *, required: bool = False) -> serializers.CharField:
    if required:
        return serializers.CharField(max_length=max_length)
    return serializers.CharField(max_length=max_length, required=False, allow_blank=True, default="")


def _date(*, required: bool = False) -> serializers.DateField:
    if required:
        return serializers.DateField()
    return serializers.DateField(required=False, allow_null=True, default=None)


class StrictSchema(serializers.Serializer):  # type: ignore[type-arg]
    """A serializer that refuses fields it does not know and non-object input."""

    past_dates: tuple[str, ...] = ()
    future_dates: tuple[str, ...] = ()

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({"non_field_errors": ["Expected a JSON object."]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["Unknown field."] for name in unknown})
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        for name in self.past_dates + self.future_dates:
            value = attrs.get(name)
            if isinstance(value, dt.date):
                problem = date_error(value, future_years=50 if name in self.future_dates else 0)
                if problem:
                    errors[name] = [problem]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class GtinField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=14, required=False, allow_blank=True, default="", **kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).replace(" ", "")
        if value and (problem := gtin_error(value)):
            raise serializers.ValidationError(problem)
        return value


class PurchaseSchema(StrictSchema):
    past_dates = ("purchased_on",)

    merchant = _text(required=True)
    product_name = _text(300, required=True)
    brand = _text()
    gtin = GtinField()
    sku = _text(100)
    category = _text(100)
    quantity = serializers.IntegerField(min_value=1, max_value=100_000, default=1)
    unit_price = serializers.DecimalField(
        max_digits=12,
        decimal_places=4,
        min_value=Decimal("0"),
        required=False,
        allow_null=True,
        default=None,
    )
    currency = _text(3)
    lot = _text(100)
    purchased_on = _date(required=True)
    order_ref = _text(100)
    is_gift = serializers.BooleanField(default=False)
    shared = serializers.BooleanField(default=True)
    notes = _text(LONG_TEXT)

    def validate_currency(self, value: str) -> str:
        value = value.upper()
        if value and value not in currency_codes():
            raise serializers.ValidationError("Use a three-letter ISO 4217 currency code, e.g. EUR.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs.get("unit_price") is not None and not attrs.get("currency"):
            raise serializers.ValidationError({"currency": ["A price needs its currency."]})
        return attrs


class ClosetItemSchema(StrictSchema):
    past_dates = ("acquired_on",)
    KINDS = ("top", "bottom", "dress", "outerwear", "shoes", "accessory", "other")

    kind = serializers.ChoiceField(choices=KINDS)
    name = _text(required=True)
    brand = _text()
    size = _text(50)
    color = _text(50)
    material = _text(100)
    acquired_on = _date()
    rating = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True, default=None)
    status = serializers.ChoiceField(choices=("owned", "donated", "sold"), default="owned")
    shared = serializers.BooleanField(default=True)
    notes = _text(LONG_TEXT)


class ApplianceSchema(StrictSchema):
    past_dates = ("purchased_on",)
    future_dates = ("warranty_until",)
    KINDS = (
        "fridge",
        "washer",
        "dryer",
        "dishwasher",
        "oven",
        "hvac",
        "water_heater",
        "tv",
        "computer",
        "phone",
        "other",
    )

    kind = serializers.ChoiceField(choices=KINDS)
    brand = _text()
    model_number = _text(100)
    serial_number = _text(100)
    gtin = GtinField()
    purchased_on = _date()
    warranty_until = _date()
    energy_kwh_per_year = serializers.IntegerField(
        min_value=0, max_value=1_000_000, required=False, allow_null=True, default=None
    )
    energy_label = _text(10)
    location = _text(100)
    shared = serializers.BooleanField(default=True)
    notes = _text(LONG_TEXT)


class PrescriptionSchema(StrictSchema):
    past_dates = ("prescribed_on", "last_filled_on")

    medication = _text(required=True)
    rxnorm = serializers.RegexField(
        r"^[0-9]{1,10}$",  # not \d, which also matches "٣" and other non-ASCII digits
        required=False,
        allow_blank=True,
        default="",
        error_messages={"invalid": "An RxNorm code has 1 to 10 digits."},
    )
    strength = _text(100)
    form = _text(100)
    directions = _text(1000)
    prescriber = _text()
    pharmacy = _text()
    prescribed_on = _date()
    quantity = serializers.IntegerField(
        min_value=0, max_value=100_000, required=False, allow_null=True, default=None
    )
    days_supply = serializers.IntegerField(
        min_value=1, max_value=365, required=False, allow_null=True, default=None
    )
    refills_remaining = serializers.IntegerField(min_value=0, max_value=99, default=0)
    last_filled_on = _date()
    shared = serializers.BooleanField(default=True)
    notes = _text(LONG_TEXT)


DIETARY = (
    "vegetarian",
    "vegan",
    "pescatarian",
    "no_red_meat",
    "halal",
    "kosher",
    "gluten_free",
    "lactose_free",
)
# How the pages name each dietary choice (the stored value stays the code above).
DIETARY_LABELS = {
    "vegetarian": "Vegetarian",
    "vegan": "Vegan",
    "pescatarian": "Pescatarian",
    "no_red_meat": "No red meat",
    "halal": "Halal",
    "kosher": "Kosher",
    "gluten_free": "Gluten-free",
    "lactose_free": "Lactose-free",
}


REMINDER_KINDS = ("refill", "warranty", "grant_ending", "grant_summary")


class ContactSchema(StrictSchema):
    email = serializers.BooleanField(default=True)
    safety_alerts_only = serializers.BooleanField(default=False)
    # Which reminders the store makes (all by default), and whether they are also e-mailed
    # (only if the person opts in; safety alerts go out whatever this says).
    reminders = serializers.ListField(
        child=serializers.ChoiceField(choices=REMINDER_KINDS),
        max_length=len(REMINDER_KINDS),
        required=False,
        default=lambda: list(REMINDER_KINDS),
    )
    reminders_email = serializers.BooleanField(default=False)
    # A content-free e-mail when a vendor posts a message to the inbox (messages:send); opt-in.
    messages_email = serializers.BooleanField(default=False)

    def validate_reminders(self, value: list[str]) -> list[str]:
        return sorted(set(value), key=REMINDER_KINDS.index)


# What a vendor with preferences:read sees of the contact choices (INTERFACES.md §6); the
# person's reminder choices are the store's own business and stay out of every share.
VENDOR_CONTACT_FIELDS = ("email", "safety_alerts_only")


def preferences_for_vendor(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Return the preferences document as a vendor may see it: contact holds only the contract's fields."""
    out = dict(doc)
    contact = doc.get("contact")
    if isinstance(contact, Mapping):
        out["contact"] = {k: contact[k] for k in VENDOR_CONTACT_FIELDS if k in contact}
    return out


class VendorContactSchema(StrictSchema):
    email = serializers.BooleanField()
    safety_alerts_only = serializers.BooleanField()


class VendorPreferencesSchema(StrictSchema):
    """The preferences document as the vendor API serves it."""

    dietary = serializers.ListField(child=serializers.ChoiceField(choices=DIETARY))
    allergies = serializers.ListField(child=serializers.CharField())
    sizes = serializers.DictField(child=serializers.CharField())
    brands_liked = serializers.ListField(child=serializers.CharField())
    brands_avoided = serializers.ListField(child=serializers.CharField())
    contact = VendorContactSchema()


def _short_list(max_items: int = 50) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=max_items,
        required=False,
        default=list,
    )


class PreferencesSchema(StrictSchema):
    dietary = serializers.ListField(
        child=serializers.ChoiceField(choices=DIETARY),
        max_length=len(DIETARY),
        required=False,
        default=list,
    )
    allergies = _short_list()
    sizes = serializers.DictField(
        child=serializers.CharField(max_length=50, allow_blank=True), required=False, default=dict
    )
    brands_liked = _short_list()
    brands_avoided = _short_list()
    contact = ContactSchema(required=False)

    def validate_sizes(self, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 30 or any(len(k) > 50 for k in value):
            raise serializers.ValidationError("At most 30 sizes, each name at most 50 characters.")
        return value

    def validate_dietary(self, value: list[str]) -> list[str]:
        return sorted(set(value), key=DIETARY.index)
