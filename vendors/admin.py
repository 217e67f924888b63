"""Operators verify organisations here; applications are shown read-only and never their secret."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import ForeignKey, Model, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

from accounts.models import User
from vendors.models import Application, Membership, Organisation


class StaffOnlyMixin:
    """Offer only vendor-staff accounts as members: a person's account never joins a vendor."""

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        if db_field.name == "user":
            kwargs["queryset"] = User.objects.filter(role=User.Role.VENDOR_STAFF)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]


class MembershipInline(StaffOnlyMixin, admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "website", "privacy_contact", "verified", "created_at")
    list_filter = ("verified", "created_at")
    search_fields = ("name", "website")
    readonly_fields = ("created_at",)
    inlines = (MembershipInline,)
    actions = ("mark_verified",)

    @admin.action(description="Mark the selected organisations verified")
    def mark_verified(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        count = queryset.update(verified=True)
        self.message_user(request, f"{count} organisation(s) marked verified.")


@admin.register(Membership)
class MembershipAdmin(StaffOnlyMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "organisation", "created_at")
    list_filter = ("organisation",)
    search_fields = ("user__email", "organisation__name")


# django-oauth-toolkit registers its own admin for the swapped model; it shows the secret field.
if admin.site.is_registered(Application):
    admin.site.unregister(Application)


@admin.register(Application)
class ApplicationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Read-only: apps are registered in the vendor portal, which alone handles client secrets."""

    list_display = ("name", "organisation", "client_id", "authorization_grant_type", "scopes")
    list_filter = ("authorization_grant_type", "organisation__verified")
    search_fields = ("name", "client_id", "organisation__name")
    fields = (
        "name",
        "organisation",
        "client_id",
        "client_type",
        "authorization_grant_type",
        "redirect_uris",
        "scopes",
        "scope_purposes",
        "required_scopes",
        "skip_authorization",
        "created",
        "updated",
    )
    readonly_fields = fields
    exclude = ("client_secret",)
    # DOT's get_absolute_url names its own management pages, which are not mounted (a 500).
    view_on_site = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Deleting an app would cascade to people's grants and their consent receipts.
        return False
