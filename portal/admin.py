"""Accounts in the operator's admin: look, and act only through the operator's services.

Registered here rather than in accounts because every action crosses apps (the ledger, the
person's pseudonym): portal/operator.py. There is no password field, no password page, no way to
add or delete an account or to edit an e-mail address; docs/security.md, "The operator".
"""

from __future__ import annotations

from collections.abc import Callable
from smtplib import SMTPException
from typing import cast

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from accounts.models import User
from portal.operator import (
    account_deactivate,
    account_password_reset_send,
    account_reactivate,
    account_two_factor_remove,
)

ALL_FIELDS = ("email", "role", "is_active", "is_staff", "is_superuser", "last_login", "date_joined")


@admin.register(User)
class AccountAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("email", "role", "is_active", "is_staff", "date_joined", "last_login")
    list_filter = ("role", "is_active", "is_staff")
    search_fields = ("email",)
    ordering = ("email",)
    fields = ALL_FIELDS
    actions = ("deactivate", "reactivate", "send_password_reset", "remove_two_factor")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        # Operators may grant and withdraw admin rights among operator accounts; everything else
        # about an account changes only through the actions below, or by its owner.
        if isinstance(obj, User) and obj.role == User.Role.OPERATOR:
            return tuple(f for f in ALL_FIELDS if f not in ("is_staff", "is_superuser"))
        return ALL_FIELDS

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Anyone else's account page is view-only: a form that saves nothing should not look as
        # if it could.
        allowed = super().has_change_permission(request, obj)
        return allowed and (not isinstance(obj, User) or obj.role == User.Role.OPERATOR)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # People and vendor staff sign up; operators come from `createsuperuser`.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        # Deleting a person would drop their store with no ledger entry; only they can (erasure).
        return False

    def _each(
        self,
        request: HttpRequest,
        accounts: QuerySet[User],
        service: Callable[..., object],
        done: str,
    ) -> None:
        operator = cast(User, request.user)  # the admin lets only signed-in staff in
        count = 0
        for account in accounts:
            try:
                service(account=account, operator=operator)
            except (ValidationError, PermissionDenied, SMTPException, OSError) as error:
                self.message_user(request, f"{account.email}: {error}", level=messages.ERROR)
            else:
                count += 1
        self.message_user(request, f"{count} account(s) {done}; each owner was told by e-mail.")

    @admin.action(
        description="Deactivate the selected accounts (tokens stop working)", permissions=["change"]
    )
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset.filter(is_active=True), account_deactivate, "deactivated")

    @admin.action(description="Reactivate the selected accounts", permissions=["change"])
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset.filter(is_active=False), account_reactivate, "reactivated")

    @admin.action(description="E-mail a link to set a new password", permissions=["change"])
    def send_password_reset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset, account_password_reset_send, "sent a password link")

    @admin.action(
        description="Turn off two-step sign-in (only after checking it is the owner who asks)",
        permissions=["change"],
    )
    def remove_two_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(request, queryset, account_two_factor_remove, "had two-step sign-in turned off")
