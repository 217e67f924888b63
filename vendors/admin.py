"""Operators verify organisations here, and suspend, resume or end them (with the permission
vendors.suspend_organisation); organisations, members and apps are shown read-only."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from accounts.models import User
from vendors.models import Application, Case, Membership, Organisation
from vendors.services import organisation_verify
from vendors.suspensions import (
    PERMISSION,
    REASON_MAX,
    organisation_end,
    organisation_resume,
    organisation_suspend,
)


class StandingForm(forms.Form):
    """The reason an operator gives for suspending or ending; shown to the vendor and its people."""

    reason = forms.CharField(
        max_length=REASON_MAX,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="The vendor sees this on every refused request and on its portal; every person "
        "with a grant to it reads it in their inbox and e-mail. Say what it did, not who told you.",
    )
    confirm_end = forms.BooleanField(
        required=False,
        label="I understand that ending revokes every grant of these organisations and cannot be undone.",
    )


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    """Who belongs to the organisation, shown only: see MembershipAdmin."""

    model = Membership
    extra = 0
    fields = ("user", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ViewOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Shown, never added, changed or deleted through the admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Shown read-only; verification only through the actions (organisation_verify, the ledger).

    An organisation's name, website, privacy contact and description are what people read on the
    consent page and on recalls, and what verification vouched for; the organisation alone writes
    them (vendor sign-up). An operator who could edit them, or add an organisation, could put a
    verified name on a vendor of their own. Change permission stays only so the actions run.
    """

    list_display = ("name", "website", "privacy_contact", "verified", "standing", "created_at")
    list_filter = ("verified", "standing", "created_at")
    search_fields = ("name", "website")
    fields = (
        "name",
        "website",
        "privacy_contact",
        "description",
        "verified",
        "standing",
        "standing_reason",
        "standing_changed_at",
        "created_at",
    )
    readonly_fields = fields
    inlines = (MembershipInline,)
    actions = ("mark_verified", "mark_unverified", "suspend", "resume", "end")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # An organisation is created with its first member by vendor sign-up (organisation_create).
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Deleting would cascade to its apps, grants and people's alerts with no ledger entry and
        # no receipts; ending an organisation is a service of its own (issue #20), not a row delete.
        return False

    def save_model(self, request: HttpRequest, obj: Organisation, form: object, change: bool) -> None:
        # Every field is read-only: saving would only write back the row as loaded, over a
        # verification withdrawn in between.
        return None

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

    def has_standing_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(PERMISSION)

    def _with_reason(
        self, request: HttpRequest, queryset: QuerySet[Organisation], *, action: str, title: str
    ) -> TemplateResponse | None:
        """Ask for the reason (and, to end, a confirmation); act once the form is sent and valid."""
        form = StandingForm(request.POST if "apply" in request.POST else None)
        if action != "end":
            del form.fields["confirm_end"]
        if form.is_bound and form.is_valid():
            if action == "end" and not form.cleaned_data.get("confirm_end"):
                form.add_error("confirm_end", "Tick this to end the organisations.")
            else:
                done = 0
                for organisation in queryset.order_by("pk"):
                    try:
                        if action == "end":
                            organisation_end(
                                organisation=organisation,
                                reason=form.cleaned_data["reason"],
                                by=cast(User, request.user),
                            )
                        else:
                            organisation_suspend(
                                organisation=organisation,
                                reason=form.cleaned_data["reason"],
                                by=cast(User, request.user),
                            )
                        done += 1
                    except ValidationError as error:
                        self.message_user(
                            request, f"{organisation.name}: {' '.join(error.messages)}", messages.ERROR
                        )
                verb = "ended" if action == "end" else "suspended"
                self.message_user(
                    request, f"{done} organisation(s) {verb}; their people are being told.", messages.WARNING
                )
                return None
        context: dict[str, Any] = {
            **self.admin_site.each_context(request),
            "title": title,
            "organisations": queryset.order_by("name"),
            "form": form,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/vendors/organisation/standing.html", context)

    @admin.action(description="Suspend the selected organisations…", permissions=["standing"])
    def suspend(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> TemplateResponse | None:
        return self._with_reason(request, queryset, action="suspend", title="Suspend organisations")

    @admin.action(description="Lift the suspension of the selected organisations", permissions=["standing"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> None:
        done = 0
        for organisation in queryset.order_by("pk"):
            try:
                if (
                    organisation_resume(organisation=organisation, by=cast(User, request.user)).standing
                    == "active"
                ):
                    done += 1
            except ValidationError as error:
                self.message_user(request, f"{organisation.name}: {' '.join(error.messages)}", messages.ERROR)
        self.message_user(
            request, f"{done} organisation(s) active again; their people are being told.", messages.SUCCESS
        )

    @admin.action(description="End the selected organisations for good…", permissions=["standing"])
    def end(self, request: HttpRequest, queryset: QuerySet[Organisation]) -> TemplateResponse | None:
        return self._with_reason(request, queryset, action="end", title="End organisations")


@admin.register(Membership)
class MembershipAdmin(ViewOnlyAdmin):
    """Read-only: a member acts as the organisation (recalls, app secrets, consent apps under its
    name), so an operator who could add one could act as any vendor. Members join by vendor
    sign-up only."""

    list_display = ("user", "organisation", "created_at")
    list_filter = ("organisation",)
    search_fields = ("user__email", "organisation__name")
    fields = ("user", "organisation", "created_at")
    readonly_fields = fields


# django-oauth-toolkit registers its own admin for the swapped model; it shows the secret field.
if admin.site.is_registered(Application):
    admin.site.unregister(Application)


@admin.register(Application)
class ApplicationAdmin(ViewOnlyAdmin):
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
    # Never deleted here either: deleting an app would cascade to people's grants and receipts.


@admin.register(Case)
class CaseAdmin(ViewOnlyAdmin):
    """The auditors' cases on organisations, shown to the operator who decides on a suspension.

    Read-only: only an auditor opens or closes a case, on the auditor portal, with its ledger
    entry (vendors/reports.py). A finding is about the vendor's conduct, never about a person.
    """

    list_display = ("organisation", "status", "opened_at", "closed_at")
    list_filter = ("status", "opened_at")
    search_fields = ("organisation__name",)
    fields = (
        "organisation",
        "status",
        "opened_by",
        "opened_at",
        "finding",
        "closed_by",
        "closed_at",
        "outcome",
    )
    readonly_fields = fields
