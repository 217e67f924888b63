"""The five categories of personal data and how each is stored."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import Http404

from personal_data import models, schemas


@dataclass(frozen=True)
class Category:
    name: str
    label: str
    model: type[models.EncryptedRecord]
    schema: type[schemas.StrictSchema]
    # The content date kept in clear for range filters and history windows.
    date_field: str
    # Content fields with a keyed blind index column `<field>_index`.
    indexed: tuple[str, ...] = ()
    # Flags kept in clear (besides `shared`), so they can be filtered without decrypting.
    flags: tuple[str, ...] = ()
    sensitive: bool = False

    @property
    def table(self) -> str:
        return self.model._meta.db_table


RECORD_CATEGORIES: dict[str, Category] = {
    c.name: c
    for c in (
        Category(
            "purchases",
            "Purchases",
            models.Purchase,
            schemas.PurchaseSchema,
            "purchased_on",
            indexed=("gtin", "lot"),
            flags=("is_gift",),
        ),
        Category("closet", "Closet", models.ClosetItem, schemas.ClosetItemSchema, "acquired_on"),
        Category(
            "appliances",
            "Appliances",
            models.Appliance,
            schemas.ApplianceSchema,
            "purchased_on",
            indexed=("gtin",),
        ),
        Category(
            "prescriptions",
            "Prescriptions",
            models.Prescription,
            schemas.PrescriptionSchema,
            "prescribed_on",
            sensitive=True,
        ),
    )
}


def category_get(name: str) -> Category:
    """Return the record category called name, or 404 for any other name."""
    try:
        return RECORD_CATEGORIES[name]
    except KeyError:
        raise Http404("No such category.") from None
