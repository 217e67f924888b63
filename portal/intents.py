"""The person's intents (intentcasting): say what you want, compare the offers, accept one.

An intent is published anonymously (vendors.intents): vendors see its own random id and the
fields the person chose, never who they are. Fields can be filled from the person's profile
(sizes, brands, dietary needs, an appliance to replace); each is shown and included only when
ticked. Accepting an offer tells the vendor "accepted" and nothing else; sharing anything with it
goes through its own consent page afterwards.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pycountry
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.permissions import person_required, signed_in_user
from consent.selectors import terms_choice_get
from consent.terms import AGREEMENTS, ROSTER
from personal_data.keys import StoreLocked
from personal_data.schemas import DIETARY_LABELS
from personal_data.selectors import preferences_get, records_for_owner
from vendors.intents import (
    DETAIL_VALUE_MAX,
    MAX_DAYS,
    MAX_OPEN_INTENTS,
    IntentLimitReached,
    NotOpen,
    OfferChanged,
    intent_get_for_owner,
    intent_publish,
    intent_update,
    intent_withdraw,
    intents_for_owner,
    offer_accept,
    offer_decline,
    offer_get_for_owner,
    offer_is_unseen,
    offer_version,
    offers_for_intent,
    offers_mark_seen,
)
from vendors.messages import link_host
from vendors.models import Intent, Offer

DEFAULT_DAYS = 7
SHARED_INTENT = "shared-intent"
KIND_CHOICES = [
    ("purchase", "Something to buy"),
    ("clothing", "Clothing or shoes"),
    ("appliance", "An appliance"),
    ("service", "A service"),
]
COUNTRY_CHOICES = sorted(((c.alpha_2, c.name) for c in pycountry.countries), key=lambda c: c[1])


COUNTRY_NAMES = dict(COUNTRY_CHOICES)
_DETAIL_LABELS = {
    "brands_preferred": "Brands I like",
    "brands_avoided": "Brands I avoid",
    "dietary": "Dietary needs",
}


def detail_label(key: str) -> str:
    """A detail's name as the person reads it: "size_jacket" is "Size (jacket)"."""
    if key in _DETAIL_LABELS:
        return _DETAIL_LABELS[key]
    if key.startswith("size_"):
        return f"Size ({key.removeprefix('size_').replace('_', ' ')})"
    if key.startswith("replaces_"):
        return "Replaces"
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class Prefill:
    """One field the profile can fill in: shown to the person, sent only when ticked."""

    key: str  # the name it has in the intent's details
    label: str
    value: str


def profile_prefills(*, person: User) -> list[Prefill]:
    """What the person's profile offers to an intent, read now with their store open."""
    try:
        prefs = preferences_get(owner=person)
        appliances = records_for_owner(owner=person, category="appliances")
    except StoreLocked:
        return []
    found: list[Prefill] = []
    for name, size in sorted((prefs.get("sizes") or {}).items()):
        if size:
            found.append(Prefill(f"size_{name}"[:40], f"Size ({name})", str(size)))
    if prefs.get("brands_liked"):
        found.append(Prefill("brands_preferred", "Brands I like", ", ".join(prefs["brands_liked"])))
    if prefs.get("brands_avoided"):
        found.append(Prefill("brands_avoided", "Brands I avoid", ", ".join(prefs["brands_avoided"])))
    if prefs.get("dietary"):
        words = ", ".join(DIETARY_LABELS.get(d, d) for d in prefs["dietary"])
        found.append(Prefill("dietary", "Dietary needs", words))
    # Numbered in the form, never named by the record's id: a vendor that may read the person's
    # appliances must not be able to tie an anonymous intent to them by it.
    models = [
        (appliance["kind"], " ".join(str(appliance.get(k) or "") for k in ("brand", "model_number")).strip())
        for appliance in appliances[:20]
    ]
    for number, (kind, model) in enumerate([m for m in models if m[1]], start=1):
        found.append(Prefill(f"replaces_{number}", f"Replaces my {kind}", model))
    return [Prefill(p.key, p.label, p.value[:DETAIL_VALUE_MAX]) for p in found]


class IntentForm(forms.Form):
    kind = forms.ChoiceField(label="What kind of thing", choices=KIND_CHOICES)
    title = forms.CharField(
        label="What you want, in a line", max_length=120, help_text="For example: “Rain jacket, hooded”."
    )
    description = forms.CharField(
        label="More about it (optional)",
        required=False,
        max_length=DETAIL_VALUE_MAX,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Vendors read this as you write it: leave out anything that says who you are.",
    )
    price_min = forms.DecimalField(
        label="Lowest price", min_value=Decimal(0), max_digits=12, decimal_places=2
    )
    price_max = forms.DecimalField(
        label="Highest price", min_value=Decimal(0), max_digits=12, decimal_places=2
    )
    currency = forms.CharField(
        label="Currency", max_length=3, initial="EUR", help_text="Three letters, e.g. EUR."
    )
    country = forms.ChoiceField(label="Country", choices=COUNTRY_CHOICES)
    postcode_prefix = forms.CharField(
        label="Start of your postcode (optional)",
        required=False,
        max_length=3,
        help_text="At most 3 characters, so vendors know roughly where, never where exactly.",
    )
    ends_on = forms.DateField(
        label="Open until",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=f"At most {MAX_DAYS} days.",
    )
    terms = forms.ChoiceField(label="Under your terms", required=False)
    include = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)

    def __init__(
        self, *args: Any, prefills: list[Prefill], start: dt.datetime | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.start = start or timezone.now()  # when the intent was (or is being) published
        self.prefills = prefills
        self.fields["include"].choices = [(p.key, p.label) for p in prefills]  # type: ignore[attr-defined]
        self.fields["terms"].choices = [("", "No agreement")] + [  # type: ignore[attr-defined]
            (a.id, a.title) for a in ROSTER
        ]

    def clean_ends_on(self) -> dt.date:
        day: dt.date = self.cleaned_data["ends_on"]
        last = (self.start + dt.timedelta(days=MAX_DAYS)).date()
        if day < timezone.now().date():
            raise ValidationError("Choose today or a later day.")
        if day > last:
            raise ValidationError(
                f"At most {MAX_DAYS} days after publishing: {last:%-d %B %Y} at the latest."
            )
        return day

    def intent_data(self, *, now: dt.datetime) -> dict[str, Any]:
        """The service's input: the person's fields, and only the ticked profile fields."""
        data = self.cleaned_data
        details: dict[str, str] = {}
        if data["description"]:
            details["description"] = data["description"]
        ticked = set(data["include"])
        details.update({p.key: p.value for p in self.prefills if p.key in ticked})
        # The end of the chosen day, but never past the service's limit.
        day_end = dt.datetime.combine(data["ends_on"], dt.time(23, 59), tzinfo=dt.UTC)
        # Whole hours only: an end to the second would tell vendors when the intent was published.
        latest = (self.start + dt.timedelta(days=MAX_DAYS)).replace(minute=0, second=0, microsecond=0)
        ends_at = min(day_end, latest)
        return {
            "kind": data["kind"],
            "title": data["title"],
            "details": details,
            "price_min": str(data["price_min"]),
            "price_max": str(data["price_max"]),
            "currency": data["currency"].upper(),
            "country": data["country"],
            "postcode_prefix": data["postcode_prefix"],
            "ends_at": ends_at.isoformat(),
            "terms": data["terms"] or None,
        }

    def add_service_errors(self, error: ValidationError) -> None:
        for field, problems in error.message_dict.items():
            target = {"ends_at": "ends_on", "details": "description"}.get(field, field)
            self.add_error(target if target in self.fields else None, problems)


def _initial(person: User, *, now: dt.datetime) -> dict[str, Any]:
    proffers = bool(terms_choice_get(person=person).proffered)
    return {
        "ends_on": (now + dt.timedelta(days=DEFAULT_DAYS)).date(),
        "terms": SHARED_INTENT if proffers else "",
        "currency": "EUR",
    }


def _form_of(intent: Intent) -> dict[str, Any]:
    return {
        "kind": intent.kind,
        "title": intent.title,
        "description": (intent.details or {}).get("description", ""),
        "price_min": intent.price_min,
        "price_max": intent.price_max,
        "currency": intent.currency,
        "country": intent.country,
        "postcode_prefix": intent.postcode_prefix,
        "ends_on": intent.ends_at.date(),
        "terms": intent.terms,
        "include": [k for k in (intent.details or {}) if k != "description"],
    }


@person_required
@require_GET
def intent_list(request: HttpRequest) -> HttpResponse:
    person = signed_in_user(request)
    intents = list(intents_for_owner(owner=person))
    open_count = sum(1 for i in intents if i.status == Intent.Status.OPEN)
    return render(
        request,
        "portal/intents/list.html",
        {
            "open": [i for i in intents if i.status == Intent.Status.OPEN],
            "ended": [i for i in intents if i.status != Intent.Status.OPEN],
            "limit": MAX_OPEN_INTENTS,
            "at_limit": open_count >= MAX_OPEN_INTENTS,
        },
    )


@person_required
@require_http_methods(["GET", "POST"])
def intent_new(request: HttpRequest) -> HttpResponse:
    person = signed_in_user(request)
    now = timezone.now()
    prefills = profile_prefills(person=person)
    form = IntentForm(request.POST or None, prefills=prefills, initial=_initial(person, now=now))
    if request.method == "POST" and form.is_valid():
        try:
            intent = intent_publish(owner=person, data=form.intent_data(now=now))
        except IntentLimitReached:
            form.add_error(None, f"You have {MAX_OPEN_INTENTS} open intents: withdraw one first.")
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Your intent is published. Vendors that deal in it can now answer.")
            return redirect("intent-detail", intent_id=intent.pk)
    return render(
        request,
        "portal/intents/form.html",
        {"form": form, "prefills": prefills, "editing": None},
        status=400 if form.errors else 200,
    )


@person_required
@require_http_methods(["GET", "POST"])
def intent_edit(request: HttpRequest, intent_id: str) -> HttpResponse:
    person = signed_in_user(request)
    intent = intent_get_for_owner(owner=person, intent_id=intent_id)
    if intent.status != Intent.Status.OPEN:
        messages.error(request, "This intent has ended; it can no longer be changed.")
        return redirect("intent-detail", intent_id=intent.pk)
    now = timezone.now()
    prefills = profile_prefills(person=person)
    # Fields the intent already carries stay offered even if the profile changed since.
    known = {p.key for p in prefills}
    prefills += [
        Prefill(k, detail_label(k), v)
        for k, v in (intent.details or {}).items()
        if k != "description" and k not in known
    ]
    form = IntentForm(
        request.POST or None, prefills=prefills, start=intent.created_at, initial=_form_of(intent)
    )
    if request.method == "POST" and form.is_valid():
        try:
            intent_update(owner=person, intent=intent, data=form.intent_data(now=now))
        except NotOpen:
            form.add_error(None, "This intent has ended; it can no longer be changed.")
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            messages.success(request, "Your intent is updated. Vendors see the change on their next look.")
            return redirect("intent-detail", intent_id=intent.pk)
    return render(
        request,
        "portal/intents/form.html",
        {"form": form, "prefills": prefills, "editing": intent},
        status=400 if form.errors else 200,
    )


@dataclass(frozen=True)
class OfferRow:
    offer: Offer
    new: bool
    open: bool
    version: str  # what the person reads now: Accept holds only for it
    host: str  # where its link leads, in ASCII (a look-alike domain shows as xn--)


@person_required
@require_GET
def intent_detail(request: HttpRequest, intent_id: str) -> HttpResponse:
    person = signed_in_user(request)
    intent = intent_get_for_owner(owner=person, intent_id=intent_id)
    now = timezone.now()
    offers = list(offers_for_intent(intent=intent))
    rows = [
        OfferRow(
            offer=o,
            new=offer_is_unseen(o),
            open=o.status == Offer.Status.OPEN
            and o.valid_until > now
            and intent.status == Intent.Status.OPEN,
            version=offer_version(o),
            host=link_host(o.link),
        )
        for o in offers
    ]
    offers_mark_seen(person=person, intent=intent)
    accepted = next((o for o in offers if o.status == Offer.Status.ACCEPTED), None)
    details = [(detail_label(k), v) for k, v in (intent.details or {}).items() if k != "description"]
    return render(
        request,
        "portal/intents/detail.html",
        {
            "intent": intent,
            "live": intent.status == Intent.Status.OPEN and intent.ends_at > now,
            "description": (intent.details or {}).get("description", ""),
            "details": details,
            "country": COUNTRY_NAMES.get(intent.country, intent.country),
            "terms": AGREEMENTS.get(intent.terms) if intent.terms else None,
            "rows": rows,
            "accepted": accepted,
            "continue_url": _continue_url(accepted) if accepted else "",
            "continue_host": link_host(accepted.link) if accepted else "",
        },
    )


def _continue_url(offer: Offer) -> str:
    """The vendor's offer page, told which offer was accepted, where it starts its consent request."""
    parts = urlsplit(offer.link)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("vrm_offer", str(offer.pk))]
    return urlunsplit(parts._replace(query=urlencode(query)))


@person_required
@require_POST
def intent_withdraw_view(request: HttpRequest, intent_id: str) -> HttpResponse:
    person = signed_in_user(request)
    intent = intent_get_for_owner(owner=person, intent_id=intent_id)
    try:
        intent_withdraw(owner=person, intent=intent)
    except NotOpen:
        messages.error(request, "This intent had already ended.")
    else:
        messages.success(request, "Your intent is withdrawn. Vendors can no longer see it or answer it.")
    return redirect("intent-detail", intent_id=intent.pk)


@person_required
@require_POST
def offer_answer(request: HttpRequest, intent_id: str, offer_id: str, answer: str) -> HttpResponse:
    person = signed_in_user(request)
    intent = intent_get_for_owner(owner=person, intent_id=intent_id)
    offer = offer_get_for_owner(owner=person, intent=intent, offer_id=offer_id)
    try:
        if answer == "accept":
            offer_accept(owner=person, intent=intent, offer=offer, version=request.POST.get("version", ""))
        else:
            offer_decline(owner=person, intent=intent, offer=offer)
    except OfferChanged:
        messages.error(
            request, f"{offer.organisation.name} changed its offer after you read it. Read it again below."
        )
        return redirect("intent-detail", intent_id=intent.pk)
    except NotOpen:
        messages.error(request, "This offer or your intent has ended; nothing was changed.")
        return redirect("intent-detail", intent_id=intent.pk)
    name = offer.organisation.name
    if answer == "accept":
        messages.success(
            request,
            f"You accepted {name}'s offer; the other offers are declined. {name} learns only that you "
            "accepted. Nothing of yours is shared until you allow it on its consent page.",
        )
    else:
        messages.success(request, f"You declined {name}'s offer. It learns only that.")
    return redirect("intent-detail", intent_id=intent.pk)
