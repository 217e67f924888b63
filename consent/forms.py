"""The consent form (INTERFACES.md §3) and the grant amendment form."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from consent.models import Grant
from consent.scopes import SCOPES, SENSITIVE_SCOPES
from consent.services import DURATIONS, HISTORY_MONTHS, SENSITIVE_MAX_DAYS
from consent.types import OAuthApplication

DURATION_CHOICES = [(d, "1 day" if d == 1 else f"{d} days") for d in DURATIONS]
HISTORY_CHOICES = [("", "All my history")] + [(m, f"Only the last {m} months") for m in HISTORY_MONTHS]


class _ErrorsMixin:
    def add_errors(self, error: ValidationError) -> None:
        for field, messages in error.message_dict.items():
            self.add_error(field if field in self.fields else None, messages)  # type: ignore[attr-defined]


class ConsentForm(_ErrorsMixin, forms.Form):
    scopes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    duration_days = forms.TypedChoiceField(choices=DURATION_CHOICES, coerce=int, initial=30)
    history_months = forms.TypedChoiceField(
        choices=HISTORY_CHOICES, coerce=int, empty_value=None, required=False
    )
    include_gifts = forms.BooleanField(required=False)

    def __init__(
        self, *args: Any, requested: list[str], application: OAuthApplication, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.requested = requested
        self.fields["scopes"].choices = [(s, SCOPES[s].title) for s in requested]  # type: ignore[attr-defined]
        # Opt-in: only what the app cannot work without is pre-ticked, never a sensitive scope.
        self.initial_scopes = [
            s for s in requested if s in application.required_scopes and s not in SENSITIVE_SCOPES
        ]
        self.fields["scopes"].initial = self.initial_scopes
        self.asks_purchases = any(s.startswith("purchases:") for s in requested)

    def ticked(self) -> list[str]:
        if self.is_bound:
            return list(self.data.getlist("scopes"))  # type: ignore[attr-defined]
        return self.initial_scopes

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        scopes = data.get("scopes") or []
        if not scopes:
            self.add_error("scopes", "Tick at least one thing to share, or press “Deny”.")
        duration = data.get("duration_days")
        if duration and duration > SENSITIVE_MAX_DAYS and SENSITIVE_SCOPES & set(scopes):
            self.add_error(
                "duration_days",
                f"Sensitive data such as prescriptions can be shared for at most {SENSITIVE_MAX_DAYS} days.",
            )
        if not self.asks_purchases:
            data["include_gifts"] = False
        return data


class GrantAmendForm(_ErrorsMixin, forms.Form):
    scopes = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="What this vendor can still see"
    )
    extend_days = forms.TypedChoiceField(
        choices=[("", "Keep the current end date"), *DURATION_CHOICES],
        coerce=int,
        empty_value=None,
        required=False,
        label="Extend from today by",
    )

    def __init__(self, *args: Any, grant: Grant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(s, SCOPES[s].title) for s in grant.scopes]  # type: ignore[attr-defined]
        self.fields["scopes"].initial = list(grant.scopes)
