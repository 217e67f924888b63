"""Vendor portal forms: staff sign-up, the organisation, and an application's settings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from accounts.forms import SignupForm
from accounts.models import User
from consent.scopes import ORGANISATION_SCOPES, PERSON_SCOPES, SCOPES, Scope
from consent.terms import ROSTER
from vendors.models import Application, Intent, Organisation
from vendors.services import PURPOSE_MAX_LENGTH

GRANT_TYPE_CHOICES = [
    (Application.GRANT_AUTHORIZATION_CODE, "People's data (authorization code + PKCE)"),
    (Application.GRANT_CLIENT_CREDENTIALS, "Recall publishing (client credentials)"),
]


class StaffSignupForm(SignupForm):
    """E-mail and password twice, checked by Django's password validators."""

    class Meta:
        model = User
        fields = ("email",)
        labels = {"email": "Work e-mail address"}


class TermsAcceptForm(forms.Form):
    accepted_terms = forms.MultipleChoiceField(
        choices=[(agreement.id, agreement.title) for agreement in ROSTER],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Agreements your organisation accepts",
    )


class OrganisationForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Organisation
        fields = ("name", "website", "privacy_contact", "description")
        labels = {
            "name": "Organisation name",
            "website": "Website",
            "privacy_contact": "Privacy contact e-mail",
            "description": "Short description (optional)",
        }
        help_texts = {
            "name": "People see this name when you ask for their data.",
            "website": "For example https://shop.example",
            "privacy_contact": "Where people can write about their data. It appears on consent receipts.",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


def purpose_field_name(scope: str) -> str:
    return "purpose_" + scope.replace(":", "_")


@dataclass(frozen=True)
class ScopeRow:
    """One scope in the form: its checkbox, purpose input and 'required' checkbox, ready to render."""

    scope: Scope
    slug: str
    checked: bool
    required: bool
    purpose: forms.BoundField


class ApplicationForm(forms.Form):
    """An application's settings; registration adds the grant type, which cannot change later."""

    name = forms.CharField(
        label="Application name",
        max_length=100,
        help_text="People see this name on the consent page, next to your organisation's name.",
    )
    redirect_uris = forms.CharField(
        label="Redirect URIs",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "autocapitalize": "off"}),
        help_text=(
            "One per line, matched exactly. Use https; http only for http://127.0.0.1 or "
            "http://localhost while developing. Recall publishing needs none."
        ),
    )
    scopes = forms.MultipleChoiceField(label="Scopes", choices=[(s, s) for s in SCOPES], required=False)
    required_scopes = forms.MultipleChoiceField(
        label="Required scopes",
        choices=[(s, s) for s in PERSON_SCOPES if not SCOPES[s].sensitive],
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in SCOPES:
            self.fields[purpose_field_name(name)] = forms.CharField(
                label=f"Why your application needs “{SCOPES[name].title}”",
                max_length=PURPOSE_MAX_LENGTH,
                required=False,
            )

    @classmethod
    def initial_for(cls, application: Application) -> dict[str, Any]:
        initial: dict[str, Any] = {
            "name": application.name,
            "redirect_uris": "\n".join(application.redirect_uris.split()),
            "scopes": list(application.scopes),
            "required_scopes": list(application.required_scopes),
        }
        for scope in SCOPES:
            initial[purpose_field_name(scope)] = application.purpose_of(scope)
        return initial

    def _rows(self, names: tuple[str, ...]) -> list[ScopeRow]:
        chosen = set(self["scopes"].value() or ())
        required = set(self["required_scopes"].value() or ())
        return [
            ScopeRow(
                scope=SCOPES[name],
                slug=name.replace(":", "-"),
                checked=name in chosen,
                required=name in required,
                purpose=self[purpose_field_name(name)],
            )
            for name in names
        ]

    def person_scope_rows(self) -> list[ScopeRow]:
        return self._rows(PERSON_SCOPES)

    def organisation_scope_rows(self) -> list[ScopeRow]:
        return self._rows(ORGANISATION_SCOPES)

    def clean_redirect_uris(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["redirect_uris"].splitlines() if line.strip()]

    def service_arguments(self) -> dict[str, Any]:
        """Return the cleaned data as keyword arguments of the application services."""
        data = self.cleaned_data
        scopes = data["scopes"]
        return {
            "name": data["name"],
            "redirect_uris": data["redirect_uris"],
            "scopes": scopes,
            # Purposes typed next to unticked scopes are dropped, not refused.
            "scope_purposes": {s: data[purpose_field_name(s)] for s in scopes if data[purpose_field_name(s)]},
            "required_scopes": data["required_scopes"],
        }

    def add_service_errors(self, error: ValidationError) -> None:
        """Show a service's ValidationError on the fields it names (or above the form)."""
        for field, messages in error.message_dict.items():
            for message in messages:
                target = field if field in self.fields else None
                if field == "scope_purposes":
                    # The service prefixes each purpose problem with its scope ("closet:read: …").
                    scope = next((s for s in SCOPES if message.startswith(s + ":")), None)
                    target = purpose_field_name(scope) if scope else "scopes"
                self.add_error(target, message)


class ApplicationRegisterForm(ApplicationForm):
    grant_type = forms.ChoiceField(
        label="What the application does",
        choices=GRANT_TYPE_CHOICES,
        widget=forms.RadioSelect,
        initial=Application.GRANT_AUTHORIZATION_CODE,
    )

    field_order = ("name", "grant_type", "redirect_uris")

    def service_arguments(self) -> dict[str, Any]:
        return {**super().service_arguments(), "grant_type": self.cleaned_data["grant_type"]}


class IntentFiltersForm(forms.Form):
    """The intents an organisation wants to see: kinds, and countries (none: every country)."""

    kinds = forms.MultipleChoiceField(
        choices=[(k.value, k.label) for k in Intent.Kind],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Kinds of intent",
    )
    countries = forms.CharField(
        required=False,
        max_length=800,
        label="Countries",
        help_text="Two-letter ISO 3166-1 codes separated by spaces or commas, e.g. “DE AT CH”. "
        "Leave empty for every country.",
    )

    def clean_countries(self) -> list[str]:
        return [c for c in self.cleaned_data["countries"].replace(",", " ").split() if c]


class WebhookForm(forms.Form):
    url = forms.CharField(
        max_length=500,
        label="Webhook URL",
        help_text="An https:// address. vrm POSTs each new matching intent to it, signed.",
        widget=forms.URLInput(attrs={"spellcheck": "false", "autocapitalize": "off"}),
    )
