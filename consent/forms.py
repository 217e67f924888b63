"""The consent form (INTERFACES.md §3) and the grant amendment form."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict
from django.template.defaultfilters import pluralize
from django.utils import dateformat, timezone

from consent.models import Grant
from consent.scopes import SCOPES, SENSITIVE_SCOPES
from consent.services import DURATIONS, HISTORY_MONTHS, SENSITIVE_MAX_DAYS, grant_extension_days
from consent.types import OAuthApplication

DURATION_CHOICES = [(d, "1 day" if d == 1 else f"{d} days") for d in DURATIONS]
GIFTS_ON = "on"  # what a browser posts for the include_gifts checkbox, which has no value
HISTORY_CHOICES = [("", "All my history")] + [
    (m, "Only the last month" if m == 1 else f"Only the last {m} months") for m in HISTORY_MONTHS
]


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

    def chosen(self) -> dict[str, list[str]]:
        """The form's values as the page shows them (posted, or the defaults), field by field."""
        if not self.is_bound:
            return {
                "scopes": self.initial_scopes,
                "duration_days": [str(self.fields["duration_days"].initial)],
                "history_months": [""],
            }
        data = cast(QueryDict, self.data)  # the consent view binds request.POST
        return {
            "scopes": list(data.getlist("scopes")),
            "duration_days": list(data.getlist("duration_days")),
            "history_months": list(data.getlist("history_months")) or [""],
            "include_gifts": [GIFTS_ON] if data.get("include_gifts") else [],
        }

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


def _day(moment: dt.date | dt.datetime) -> str:
    return dateformat.format(moment, "j M Y")


class GrantAmendForm(_ErrorsMixin, forms.Form):
    scopes = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, label="What this vendor can still see"
    )
    # Every offered day is later than the current end and within the caps, each labelled with
    # what it means; the service checks again whatever is posted.
    ends_on = forms.DateField(required=False, label="Ends on", widget=forms.Select)

    def __init__(self, *args: Any, grant: Grant, now: dt.datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(s, SCOPES[s].title) for s in grant.scopes]  # type: ignore[attr-defined]
        self.fields["scopes"].initial = list(grant.scopes)
        now = now or timezone.now()
        end = grant.ends_at.astimezone(dt.UTC)
        left = max(0, (grant.ends_at - now).days)
        most = grant_extension_days(grant=grant, now=now)
        steps = [d for d in DURATIONS if d <= most]
        if most and most not in steps:
            steps.append(most)
        choices = [("", f"Keep {_day(end)} ({left} day{pluralize(left)} left)")]
        for days in steps:
            longest = ", the longest allowed" if days == most else ""
            new_end = end + dt.timedelta(days=days)
            choices.append(
                (new_end.date().isoformat(), f"{_day(new_end)} ({days} day{pluralize(days)} later{longest})")
            )
        self.fields["ends_on"].widget.choices = choices  # type: ignore[attr-defined]
        longest_days = SENSITIVE_MAX_DAYS if SENSITIVE_SCOPES & set(grant.scopes) else max(DURATIONS)
        if most:
            self.fields["ends_on"].help_text = (
                f"You can only move the end later, up to {longest_days} days from today. "
                "To stop sharing sooner, revoke the grant."
            )
        else:
            self.fields["ends_on"].help_text = (
                f"This grant already runs as long as allowed ({longest_days} days from today). "
                "You can extend it nearer its end."
            )
