"""Operators verify organisations here; applications are shown read-only and never their secret."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import ForeignKey, Model, QuerySet
from django.forms import ModelChoiceField
from django.http import HttpRequest

from accounts.models import User
from vendors.models import Application, Membership, Organisation
from vendors.selectors import organisation_name_problem
from vendors.services import organisation_verify


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


class OrganisationAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Organisation
        fields = ("name", "website", "privacy_contact", "description")

    def clean_name(self) -> str:
        name = str(self.cleaned_data["name"]).strip()
        if problem := organisation_name_problem(name=name, exclude_pk=self.instance.pk):
            raise forms.ValidationError(problem)
        return name


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Verification only through the actions, which go through organisation_verify and the ledger."""

    form = OrganisationAdminForm
    list_display = ("name", "website", "privacy_contact", "verified", "created_at")
    list_filter = ("verified", "created_at")
    search_fields = ("name", "website")
    readonly_fields = ("verified", "created_at")
    inlines = (MembershipInline,)
    actions = ("mark_verified", "mark_unverified")

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Deleting would cascade to its apps, grants and people's alerts with no ledger entry and
        # no receipts; ending an organisation is a service of its own (issue #20), not a row delete.
        return False

    def _set_verified(self, request: HttpRequest, queryset: QuerySet[Organisation], verified: bool) -> int:
        changed = 0
        for organisation in queryset.order_by("pk"):
            if organisation.verified != verified:
                organisation_verify(organisation=organisation, by=cast(User, request.user), verified=verified)
                changed += 1
        return changed

    @admin.action(description="Mark the selected organisations verified", permissions=["change"])
    def mark_verified(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        count = self._set_verified(request, queryset, True)
        self.message_user(request, f"{count} organisation(s) marked verified.", messages.SUCCESS)

    @admin.action(description="Withdraw verification of the selected organisations", permissions=["change"])
    def mark_unverified(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        count = self._set_verified(request, queryset, False)
        self.message_user(request, f"{count} organisation(s) no longer verified.", messages.WARNING)


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
