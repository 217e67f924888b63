"""Operators may look at the ledger but never change it (the database refuses anyway)."""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from audit.models import LedgerCheckpoint, LedgerEntry


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "actor_type",
        "actor_id",
        "subject",
        "outcome",
        "record_count",
    )
    list_filter = ("kind", "actor_type", "outcome")
    search_fields = ("=subject", "=grant_id", "=actor_id", "=request_id")
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(LedgerCheckpoint)
class LedgerCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("tree_size", "created_at")
    exclude = ("compact_range",)
