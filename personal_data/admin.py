"""Operators see metadata only: ciphertext and blind indexes are never shown, let alone decrypted."""

from typing import ClassVar

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from personal_data.models import (
    Appliance,
    ClosetItem,
    PersonKey,
    Preferences,
    Prescription,
    Purchase,
)


class MetadataOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only, metadata-only: operators can see that a record exists, never what it says."""

    exclude = ("payload", "wrapped_key", "pseudonym_salt", "gtin_index", "lot_index")
    list_display: tuple[str, ...] = ("pk", "owner", "shared", "created_at", "updated_at")
    list_filter: ClassVar[tuple[str, ...]] = ("shared",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Only the person deletes their records, or erasure does (both recorded in the ledger).
        return False


for model in (Purchase, ClosetItem, Appliance, Prescription):
    admin.site.register(model, MetadataOnlyAdmin)


@admin.register(Preferences)
class PreferencesAdmin(MetadataOnlyAdmin):
    list_display = ("owner", "updated_at")
    list_filter = ()


@admin.register(PersonKey)
class PersonKeyAdmin(MetadataOnlyAdmin):
    list_display = ("person", "master_key_id", "created_at", "rewrapped_at")
    list_filter = ("master_key_id",)
