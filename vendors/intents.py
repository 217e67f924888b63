"""Intentcasting (issue #17): a person publishes what they want; subscribed, verified vendors offer.

Writes (`intent_*`, `offer_*`, `intents_expire`, the organisation's filters and webhooks) are
atomic and record their ledger entry in the same transaction; reads return only what the caller
may see and raise Http404 alike for "not yours", "not open" and "does not exist".

Who can link what (docs/vendors.md, "Intents"):

- Vendors see an intent under its random `id` and nothing of its owner; two intents of one
  person share no id, no pseudonym, no field the person did not type.
- The person's ledger entries (published, updated, withdrawn, accepted, declined) carry the
  person's ledger pseudonym, as every other action of theirs does, and name the intent by its
  `ledger_ref`, a second random id that never leaves the server in any vendor answer. Vendor
  entries (intent.offered) name the public intent id and the offer id, and no pseudonym. The two
  sets share no value, so an auditor (or a vendor given ledger entries) cannot join the intents a
  vendor holds to a person; only the database knows `id` and `ledger_ref` belong together.
- Accepting and declining name neither the offer nor the organisation in the person's entry:
  the outcome is on the offer, which its organisation can read, and counts per organisation come
  from the offers themselves (intent_counts_by_organisation).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pycountry
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404
from django.utils import timezone
from rest_framework import serializers

from accounts.models import User
from audit.models import LedgerEntry
from audit.services import ledger_append
from consent.terms import AGREEMENTS
from core.formats import rfc3339
from core.ids import uuid_or_404
from personal_data.pseudonyms import person_subject
from personal_data.schemas import StrictSchema
from personal_data.validators import currency_codes
from vendors.models import (
    LOOPBACK_HOSTS,
    Application,
    Intent,
    IntentFilter,
    IntentWebhook,
    Membership,
    Offer,
    Organisation,
)

MAX_OPEN_INTENTS = 10
MAX_DAYS = 30
MAX_DETAILS = 20
DETAIL_KEY_MAX = 40
DETAIL_VALUE_MAX = 200
PRICE_MAX = Decimal("9999999999.99")
SCOPE = "intents:read"
# The fields the person sets (IntentSchema's); the rest are the server's.
INTENT_FIELDS = (
    "kind",
    "title",
    "details",
    "price_min",
    "price_max",
    "currency",
    "country",
    "postcode_prefix",
    "ends_at",
    "terms",
)


class IntentLimitReached(Exception):
    """The person has MAX_OPEN_INTENTS open intents already."""


class OfferExists(Exception):
    """The organisation has answered this intent already: amend that offer instead (409)."""


class NotOpen(Exception):
    """The intent or offer is no longer open (ended, withdrawn, closed, accepted, declined)."""


@dataclass(frozen=True)
class ExpiryResult:
    intents: int
    offers: int


def country_codes() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


_COUNTRIES = country_codes()
_CURRENCIES = currency_codes()


# Input schemas.


def _money() -> serializers.DecimalField:
    return serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal(0), max_value=PRICE_MAX
    )


def _currency(value: str) -> str:
    if value not in _CURRENCIES:
        raise serializers.ValidationError("Use a three-letter ISO 4217 currency code, e.g. EUR.")
    return value


class DetailsField(serializers.DictField):
    """The fields the person chose to include: a flat object of short strings."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(child=serializers.CharField(max_length=DETAIL_VALUE_MAX, allow_blank=True), **kwargs)

    def to_internal_value(self, data: Any) -> dict[str, str]:
        value: dict[str, str] = super().to_internal_value(data)
        if len(value) > MAX_DETAILS:
            raise serializers.ValidationError(f"At most {MAX_DETAILS} fields.")
        for key in value:
            if not key or len(key) > DETAIL_KEY_MAX:
                raise serializers.ValidationError(f"Field names are 1 to {DETAIL_KEY_MAX} characters.")
        return value


class IntentSchema(StrictSchema):
    kind = serializers.ChoiceField(choices=Intent.Kind.values)
    title = serializers.CharField(max_length=120)
    details = DetailsField(required=False, default=dict)
    price_min = _money()
    price_max = _money()
    currency = serializers.CharField(max_length=3)
    country = serializers.CharField(max_length=2)
    postcode_prefix = serializers.RegexField(
        r"^[A-Za-z0-9]{1,3}$", required=False, allow_blank=True, default=""
    )
    ends_at = serializers.DateTimeField()
    terms = serializers.ChoiceField(choices=list(AGREEMENTS), required=False, allow_null=True, default=None)

    def validate_currency(self, value: str) -> str:
        return _currency(value)

    def validate_country(self, value: str) -> str:
        if value not in _COUNTRIES:
            raise serializers.ValidationError("Use a two-letter ISO 3166-1 country code, e.g. DE.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        low, high = attrs.get("price_min"), attrs.get("price_max")
        if low is not None and high is not None and low > high:
            raise serializers.ValidationError({"price_max": ["The highest price is below the lowest."]})
        if "postcode_prefix" in attrs:
            attrs["postcode_prefix"] = attrs["postcode_prefix"].upper()
        if "terms" in attrs:
            attrs["terms"] = attrs["terms"] or ""
        return attrs


class OfferSchema(StrictSchema):
    price = _money()
    currency = serializers.CharField(max_length=3)
    description = serializers.CharField(max_length=2000)
    link = serializers.URLField(max_length=500)
    valid_until = serializers.DateTimeField()

    def validate_currency(self, value: str) -> str:
        return _currency(value)

    def validate_link(self, value: str) -> str:
        if not value.lower().startswith("https://"):
            raise serializers.ValidationError("The link must be an https:// address.")
        if "@" in urlsplit(value).netloc:
            raise serializers.ValidationError("The link cannot contain a user name or password.")
        return value

    def validate_valid_until(self, value: dt.datetime) -> dt.datetime:
        if value <= timezone.now():
            raise serializers.ValidationError("An offer must be valid until a time in the future.")
        return value


def _validated(schema: type[StrictSchema], data: object, *, partial: bool = False) -> dict[str, Any]:
    """Validate input against a schema; a ValidationError naming each bad field."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
    instance = schema(data=data, partial=partial)
    if not instance.is_valid():
        raise ValidationError(
            {
                name: [str(m) for m in (ms if isinstance(ms, list) else [ms])]
                for name, ms in instance.errors.items()
            }
        )
    return dict(instance.validated_data)


def _ends_at_check(ends_at: dt.datetime, *, published: dt.datetime) -> None:
    if ends_at <= timezone.now():
        raise ValidationError({"ends_at": ["The end must be in the future."]})
    if ends_at > published + dt.timedelta(days=MAX_DAYS):
        raise ValidationError({"ends_at": [f"An intent runs at most {MAX_DAYS} days after it is published."]})


# The person's side.


def _subject(owner: User) -> str:
    try:
        return person_subject(owner)
    except LookupError:  # no store (never opened): the entry still names no one
        return ""


def _person_ledger(kind: str, owner: User, refs: Iterable[uuid.UUID], *, count: int | None = None) -> None:
    subject = _subject(owner)
    ledger_append(
        kind=kind,
        actor_type=LedgerEntry.ActorType.PERSON,
        actor_id=subject or "person",
        subject=subject,
        record_ids=list(refs),
        record_count=count,
    )


def _open_count(owner: User) -> int:
    return Intent.objects.filter(owner=owner, status=Intent.Status.OPEN, ends_at__gt=timezone.now()).count()


@transaction.atomic
def intent_publish(*, owner: User, data: object) -> Intent:
    """Validate and publish an intent of `owner`; queue the signed webhooks of matching vendors.

    Raise ValidationError per field, or IntentLimitReached past MAX_OPEN_INTENTS open intents.
    """
    doc = _validated(IntentSchema, data)
    now = timezone.now()
    _ends_at_check(doc["ends_at"], published=now)
    # The owner's row serialises concurrent publishes, so the limit holds under a double submit.
    User.objects.select_for_update().filter(pk=owner.pk).values_list("pk").first()
    if _open_count(owner) >= MAX_OPEN_INTENTS:
        raise IntentLimitReached(f"At most {MAX_OPEN_INTENTS} intents can be open at once.")
    intent = Intent.objects.create(owner=owner, created_at=now, updated_at=now, **doc)
    _person_ledger(LedgerEntry.Kind.INTENT_PUBLISHED, owner, [intent.ledger_ref])
    from vendors.webhooks import webhooks_queue  # the sender imports this module

    transaction.on_commit(lambda: webhooks_queue(intent_id=intent.pk))
    return intent


def _own_open(owner: User, intent: Intent) -> Intent:
    locked = Intent.objects.select_for_update().filter(pk=intent.pk, owner=owner).first()
    if locked is None:
        raise Http404("No such intent.")
    if locked.status != Intent.Status.OPEN or locked.ends_at <= timezone.now():
        raise NotOpen("This intent is no longer open.")
    return locked


@transaction.atomic
def intent_update(*, owner: User, intent: Intent, data: object) -> Intent:
    """Change the fields given in `data` (the others stay) of an open intent of `owner`.

    The end stays within MAX_DAYS of first publishing; offers already made stay as they are.
    """
    locked = _own_open(owner, intent)
    doc = _validated(IntentSchema, data, partial=True)
    merged = {f: doc.get(f, getattr(locked, f)) for f in INTENT_FIELDS}
    if merged["price_min"] > merged["price_max"]:
        raise ValidationError({"price_max": ["The highest price is below the lowest."]})
    if "ends_at" in doc:
        _ends_at_check(doc["ends_at"], published=locked.created_at)
    for field, value in merged.items():
        setattr(locked, field, value)
    locked.updated_at = timezone.now()
    locked.save()
    _person_ledger(LedgerEntry.Kind.INTENT_UPDATED, owner, [locked.ledger_ref])
    return locked


@transaction.atomic
def intent_withdraw(*, owner: User, intent: Intent) -> Intent:
    """Withdraw an open intent of `owner`: vendors no longer see it; its open offers are withdrawn."""
    locked = _own_open(owner, intent)
    locked.status, locked.updated_at = Intent.Status.WITHDRAWN, timezone.now()
    locked.save(update_fields=["status", "updated_at"])
    Offer.objects.filter(intent=locked, status=Offer.Status.OPEN).update(status=Offer.Status.WITHDRAWN)
    _person_ledger(LedgerEntry.Kind.INTENT_WITHDRAWN, owner, [locked.ledger_ref])
    return locked


def _offer_of(intent: Intent, offer: Offer) -> Offer:
    locked = Offer.objects.select_for_update().filter(pk=offer.pk, intent_id=intent.pk).first()
    if locked is None:
        raise Http404("No such offer.")
    if locked.status != Offer.Status.OPEN or locked.valid_until <= timezone.now():
        raise NotOpen("This offer is no longer open.")
    return locked


@transaction.atomic
def offer_accept(*, owner: User, intent: Intent, offer: Offer, version: str | None = None) -> Offer:
    """Accept one open offer on an open intent of `owner`: decline the other open offers and
    close the intent. The caller then leads the person to the vendor's consent page; nothing is
    shared before it. With `version` (offer_version of what the person read), refuse with
    OfferChanged if the vendor amended the offer since."""
    locked_intent = _own_open(owner, intent)
    accepted = _offer_of(locked_intent, offer)
    if (
        Organisation.objects.filter(pk=accepted.organisation_id)
        .exclude(standing=Organisation.Standing.ACTIVE)
        .exists()
    ):
        # Its consent page would be refused: the intent stays open and the other offers stand.
        raise NotOpen("The operator has stopped this vendor; its offer cannot be accepted now.")
    if version is not None and version != offer_version(accepted):
        raise OfferChanged("The vendor changed this offer after you read it.")
    accepted.status = Offer.Status.ACCEPTED
    accepted.save(update_fields=["status"])
    declined = (
        Offer.objects.filter(intent=locked_intent, status=Offer.Status.OPEN)
        .exclude(pk=accepted.pk)
        .update(status=Offer.Status.DECLINED)
    )
    locked_intent.status, locked_intent.updated_at = Intent.Status.CLOSED, timezone.now()
    locked_intent.save(update_fields=["status", "updated_at"])
    _person_ledger(LedgerEntry.Kind.INTENT_ACCEPTED, owner, [locked_intent.ledger_ref], count=1)
    if declined:
        _person_ledger(LedgerEntry.Kind.INTENT_DECLINED, owner, [locked_intent.ledger_ref], count=declined)
    return accepted


@transaction.atomic
def offer_decline(*, owner: User, intent: Intent, offer: Offer) -> Offer:
    """Decline one open offer on an open intent of `owner`; the intent stays open."""
    locked_intent = _own_open(owner, intent)
    declined = _offer_of(locked_intent, offer)
    declined.status = Offer.Status.DECLINED
    declined.save(update_fields=["status"])
    _person_ledger(LedgerEntry.Kind.INTENT_DECLINED, owner, [locked_intent.ledger_ref], count=1)
    return declined


@transaction.atomic
def intents_expire() -> ExpiryResult:
    """Mark ended open intents expired (and their open offers), and offers past their validity.

    Safe to re-run: only what is still open and overdue changes; one system entry per run that
    changed anything, with the intents' ledger refs (never their public ids) and the counts.
    """
    now = timezone.now()
    due = list(
        Intent.objects.select_for_update(skip_locked=True)
        .filter(status=Intent.Status.OPEN, ends_at__lte=now)
        .values_list("pk", "ledger_ref")
    )
    ids = [pk for pk, _ref in due]
    if ids:
        Intent.objects.filter(pk__in=ids).update(status=Intent.Status.EXPIRED, updated_at=now)
    offers = (
        Offer.objects.filter(status=Offer.Status.OPEN)
        .filter(Q(intent_id__in=ids) | Q(valid_until__lte=now))
        .update(status=Offer.Status.EXPIRED)
    )
    if due or offers:
        ledger_append(
            kind=LedgerEntry.Kind.INTENT_EXPIRED,
            actor_type=LedgerEntry.ActorType.SYSTEM,
            actor_id="intent-expiry",
            record_ids=[ref for _pk, ref in due],
            record_count=len(due),
            reason=f"offers {offers}",
        )
    return ExpiryResult(intents=len(due), offers=offers)


def intents_for_owner(*, owner: User) -> QuerySet[Intent]:
    """The person's intents, newest first, with the number of open offers of each."""
    return (
        Intent.objects.filter(owner=owner)
        .annotate(open_offers=Count("offers", filter=Q(offers__status=Offer.Status.OPEN)))
        .order_by("-created_at")
    )


def intent_get_for_owner(*, owner: User, intent_id: str | uuid.UUID) -> Intent:
    """One intent of the person, whatever its status; Http404 for any other id."""
    pk = uuid_or_404(intent_id, message="No such intent.")
    intent = Intent.objects.filter(pk=pk, owner=owner).first()
    if intent is None:
        raise Http404("No such intent.")
    return intent


def offers_for_intent(*, intent: Intent) -> QuerySet[Offer]:
    """The offers on an intent (the caller holds it from intent_get_for_owner), cheapest first."""
    return intent.offers.select_related("organisation").order_by("price", "created_at")


def offer_get_for_owner(*, owner: User, intent: Intent, offer_id: str | uuid.UUID) -> Offer:
    """One offer on one of the person's intents; Http404 for any other id."""
    pk = uuid_or_404(offer_id, message="No such offer.")
    offer = (
        Offer.objects.select_related("organisation").filter(pk=pk, intent__owner=owner, intent=intent).first()
    )
    if offer is None:
        raise Http404("No such offer.")
    return offer


def offers_for_person(*, person: User) -> QuerySet[Offer]:
    """Every offer on the person's intents, newest news first (the inbox)."""
    return (
        Offer.objects.filter(intent__owner=person)
        .select_related("organisation", "intent")
        .order_by("-created_at")
    )


def _unseen() -> Q:
    return Q(seen_at__isnull=True) | Q(amended_at__gt=F("seen_at"))


def offers_unseen(*, person: User) -> QuerySet[Offer]:
    """Open offers the person has not looked at since they were made or last amended."""
    return offers_for_person(person=person).filter(_unseen(), status=Offer.Status.OPEN)


def offer_is_unseen(offer: Offer) -> bool:
    return offer.status == Offer.Status.OPEN and (
        offer.seen_at is None or (offer.amended_at is not None and offer.amended_at > offer.seen_at)
    )


def offers_mark_seen(*, person: User, intent: Intent | None = None) -> int:
    """Mark the person's offers (on one intent, or all) as seen: a read mark, no ledger entry."""
    offers = Offer.objects.filter(intent__owner=person).filter(_unseen())
    if intent is not None:
        offers = offers.filter(intent=intent)
    return offers.update(seen_at=timezone.now())


def intents_export(*, person: User) -> list[dict[str, Any]]:
    """The person's intents with the offers they got, for the export (vrm-export/1 `intents`)."""
    out = []
    for intent in (
        Intent.objects.filter(owner=person).prefetch_related("offers__organisation").order_by("created_at")
    ):
        out.append(
            {
                **intent_json(intent),
                "status": intent.status,
                "created_at": rfc3339(intent.created_at),
                "offers": [
                    {
                        "id": str(o.id),
                        "vendor": o.organisation.name,
                        "price": str(o.price),
                        "currency": o.currency,
                        "description": o.description,
                        "link": o.link,
                        "valid_until": rfc3339(o.valid_until),
                        "status": o.status,
                        "created_at": rfc3339(o.created_at),
                    }
                    for o in intent.offers.all()
                ],
            }
        )
    return out


# The vendor's side.


def intent_json(intent: Intent) -> dict[str, Any]:
    """The intent as vendors see it (INTERFACES.md §6): the person's fields, nothing about them."""
    return {
        "id": str(intent.pk),
        "kind": intent.kind,
        "title": intent.title,
        "details": dict(intent.details),
        "price_min": f"{intent.price_min:.2f}",
        "price_max": f"{intent.price_max:.2f}",
        "currency": intent.currency,
        "country": intent.country,
        "postcode_prefix": intent.postcode_prefix or None,
        "ends_at": intent.ends_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "terms": intent.terms or None,
    }


def _filters_q(organisation_id: uuid.UUID) -> Q | None:
    """The intents an organisation's filters let it see, as one condition (None: no filters)."""
    rows = list(IntentFilter.objects.filter(organisation_id=organisation_id).values_list("kind", "country"))
    anywhere = {kind for kind, country in rows if not country}
    where: dict[str, set[str]] = {}
    for kind, country in rows:
        if country and kind not in anywhere:
            where.setdefault(kind, set()).add(country)
    conditions = [Q(kind__in=sorted(anywhere))] if anywhere else []
    conditions += [Q(kind=kind, country__in=sorted(countries)) for kind, countries in sorted(where.items())]
    if not conditions:
        return None
    condition = conditions[0]
    for more in conditions[1:]:
        condition |= more
    return condition


def _visible(organisation_id: uuid.UUID) -> QuerySet[Intent]:
    condition = _filters_q(organisation_id)
    if condition is None:
        return Intent.objects.none()
    return Intent.objects.filter(condition, status=Intent.Status.OPEN, ends_at__gt=timezone.now())


def intents_page(
    *,
    organisation_id: uuid.UUID,
    limit: int,
    after: tuple[dt.datetime, uuid.UUID] | None = None,
    since: dt.datetime | None = None,
) -> list[Intent]:
    """Up to `limit` open intents matching the organisation's filters, newest change first,
    after the keyset position `after`, changed at or after `since`."""
    rows = _visible(organisation_id)
    if since is not None:
        rows = rows.filter(updated_at__gte=since)
    if after is not None:
        moment, pk = after
        rows = rows.filter(Q(updated_at__lt=moment) | Q(updated_at=moment, id__lt=pk))
    return list(rows.order_by("-updated_at", "-id")[:limit])


def intent_get_for_organisation(*, organisation_id: uuid.UUID, intent_id: str) -> Intent:
    """An open intent the organisation's filters match; Http404 alike for every other id."""
    try:
        pk = uuid.UUID(intent_id)
    except ValueError:
        raise Http404("Not found.") from None
    intent = _visible(organisation_id).filter(pk=pk).first()
    if intent is None:
        raise Http404("Not found.")
    return intent


def offer_status(offer: Offer, *, at: dt.datetime | None = None) -> str:
    """The offer's status as of now: an open offer past its validity, or on an intent that has
    ended, is `expired` even before the expiry job marks it so."""
    now = at or timezone.now()
    if offer.status == Offer.Status.OPEN and (offer.valid_until <= now or offer.intent.ends_at <= now):
        return Offer.Status.EXPIRED.value
    return str(offer.status)


def offer_version(offer: Offer) -> str:
    """What the person saw of an offer: it changes whenever the vendor amends it."""
    return (offer.amended_at or offer.created_at).isoformat()


class OfferChanged(Exception):
    """The vendor amended the offer after the person read it."""


def offer_get_for_organisation(*, organisation_id: uuid.UUID, intent_id: str, offer_id: str) -> Offer:
    """The organisation's own offer on an intent, whatever became of the intent (so it learns the
    outcome); Http404 alike for anyone else's offer, another intent's, or none."""
    try:
        intent_pk, pk = uuid.UUID(intent_id), uuid.UUID(offer_id)
    except ValueError:
        raise Http404("Not found.") from None
    offer = (
        Offer.objects.select_related("intent")
        .filter(pk=pk, intent_id=intent_pk, organisation_id=organisation_id)
        .first()
    )
    if offer is None:
        raise Http404("Not found.")
    return offer


def _vendor_ledger(application: Application, intent: Intent, offer: Offer, reason: str) -> None:
    ledger_append(
        kind=LedgerEntry.Kind.INTENT_OFFERED,
        actor_type=LedgerEntry.ActorType.CLIENT,
        actor_id=application.client_id,
        scopes=[SCOPE],
        record_ids=[intent.pk, offer.pk],
        record_count=1,
        reason=reason,
    )


@transaction.atomic
def offer_create(*, application: Application, intent: Intent, data: object) -> Offer:
    """Make the application's organisation's offer on an open intent its filters match.

    Raise ValidationError per field, PermissionDenied for an unverified organisation, Http404
    for an intent it may not see, OfferExists if the organisation already offered, NotOpen if
    the intent ended meanwhile.
    """
    doc = _validated(OfferSchema, data)
    if not Organisation.objects.filter(pk=application.organisation_id, verified=True).exists():
        raise PermissionDenied("Only verified organisations answer intents.")
    if not _visible(application.organisation_id).filter(pk=intent.pk).exists():
        raise Http404("Not found.")  # outside the organisation's filters, or no longer open
    locked = Intent.objects.select_for_update().get(pk=intent.pk)
    if locked.status != Intent.Status.OPEN or locked.ends_at <= timezone.now():
        raise NotOpen("This intent is no longer open.")
    if Offer.objects.filter(intent=locked, organisation_id=application.organisation_id).exists():
        raise OfferExists("Your organisation has made an offer on this intent already; amend it.")
    try:
        with transaction.atomic():
            offer = Offer.objects.create(
                intent=locked, organisation_id=application.organisation_id, application=application, **doc
            )
    except IntegrityError:  # a concurrent offer of the same organisation
        raise OfferExists("Your organisation has made an offer on this intent already; amend it.") from None
    _vendor_ledger(application, locked, offer, "created")
    return offer


@transaction.atomic
def offer_amend(*, application: Application, offer: Offer, data: object) -> Offer:
    """Change the fields given of the organisation's open offer, while its intent is open."""
    doc = _validated(OfferSchema, data, partial=True)
    locked = Offer.objects.select_for_update().select_related("intent").get(pk=offer.pk)
    if locked.organisation_id != application.organisation_id:
        raise Http404("Not found.")
    intent = locked.intent
    if (
        intent.status != Intent.Status.OPEN
        or intent.ends_at <= timezone.now()
        or locked.status != Offer.Status.OPEN
    ):
        raise NotOpen("This offer can no longer be changed.")
    for field, value in doc.items():
        setattr(locked, field, value)
    locked.amended_at = timezone.now()
    locked.save()
    _vendor_ledger(application, intent, locked, "amended")
    return locked


# The organisation's filters and webhooks (vendor portal).


def intent_filters(*, organisation: Organisation) -> tuple[list[str], list[str]]:
    """The kinds and countries the organisation subscribes to (no countries: every country)."""
    rows = list(organisation.intent_filters.values_list("kind", "country"))
    kinds = [k for k in Intent.Kind.values if any(kind == k for kind, _c in rows)]
    countries = sorted({country for _k, country in rows if country})
    return kinds, countries


@transaction.atomic
def intent_filters_set(
    *, organisation: Organisation, kinds: Iterable[str], countries: Iterable[str], by: User
) -> None:
    """Subscribe the organisation to intents of these kinds in these countries (none: every
    country), as its staff member `by`, in the ledger. No kinds unsubscribes."""
    if not Membership.objects.filter(user=by, organisation_id=organisation.pk).exists():
        raise PermissionDenied("Only the organisation's staff set its intent filters.")
    kind_list = sorted(set(kinds))
    country_list = sorted({c.strip().upper() for c in countries if c.strip()})
    errors: dict[str, list[str]] = {}
    if bad := [k for k in kind_list if k not in Intent.Kind.values]:
        errors["kinds"] = [f"Unknown kinds: {', '.join(bad)}."]
    if bad := [c for c in country_list if c not in _COUNTRIES]:
        errors["countries"] = [f"Not ISO 3166-1 alpha-2 codes: {', '.join(bad)}."]
    if errors:
        raise ValidationError(errors)
    Organisation.objects.select_for_update().filter(pk=organisation.pk).values_list("pk").first()
    organisation.intent_filters.all().delete()
    IntentFilter.objects.bulk_create(
        [
            IntentFilter(organisation=organisation, kind=kind, country=country)
            for kind in kind_list
            for country in (country_list or [""])
        ]
    )
    ledger_append(
        kind=LedgerEntry.Kind.INTENT_FILTERS_SET,
        actor_type=LedgerEntry.ActorType.VENDOR_ORG,
        actor_id=str(organisation.pk),
        record_ids=kind_list,
        record_count=len(country_list),
        reason=f"staff {by.pk}",
    )


def organisations_matching(*, intent: Intent) -> list[uuid.UUID]:
    """The verified organisations whose filters match the intent (one index lookup)."""
    return list(
        IntentFilter.objects.filter(
            kind=intent.kind,
            country__in=[intent.country, ""],
            organisation__verified=True,
            # A suspended or ended organisation hears of no intent (vendors/suspensions.py).
            organisation__standing=Organisation.Standing.ACTIVE,
        )
        .values_list("organisation_id", flat=True)
        .distinct()
    )


def webhook_url_problem(url: str) -> str | None:
    """Say what is wrong with a webhook URL, or None: https, or loopback http while debugging."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "This is not a valid URL."
    if "@" in parts.netloc:
        return "A webhook URL cannot contain a user name or password."
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and settings.DEBUG:
        return None
    if parts.scheme != "https" or not parts.hostname:
        return "Use an https:// address."
    return webhook_host_problem(parts.hostname)


NOT_PUBLIC = "A webhook must reach a public address, not a private, loopback or link-local one."


def webhook_host_problem(host: str) -> str | None:
    """Refuse a host that names no public address: a literal private, loopback, link-local or
    reserved address, or a localhost name (the server must not be made to call its own network)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith((".localhost", ".internal", ".local")):
        return NOT_PUBLIC
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: its addresses are checked when a delivery resolves it
    return None if address.is_global else NOT_PUBLIC


@transaction.atomic
def intent_webhook_set(*, application: Application, url: str, by: User) -> str:
    """Point the application's intent webhook at `url` with a new signing secret; return the
    secret (shown once). The application must be a client-credentials app with intents:read."""
    if not Membership.objects.filter(user=by, organisation_id=application.organisation_id).exists():
        raise PermissionDenied("Only the organisation's staff set its webhooks.")
    url = url.strip()
    if problem := webhook_url_problem(url):
        raise ValidationError({"url": [problem]})
    if len(url) > 500:
        raise ValidationError({"url": ["At most 500 characters."]})
    if SCOPE not in application.scopes:
        raise ValidationError({"url": [f"Register the scope {SCOPE} for this application first."]})
    secret = "whsec_" + secrets.token_urlsafe(32)
    IntentWebhook.objects.update_or_create(application=application, defaults={"url": url, "secret": secret})
    ledger_append(
        kind=LedgerEntry.Kind.INTENT_FILTERS_SET,
        actor_type=LedgerEntry.ActorType.VENDOR_ORG,
        actor_id=str(application.organisation_id),
        record_ids=[application.client_id],
        reason=f"webhook set, staff {by.pk}",
    )
    return secret


@transaction.atomic
def intent_webhook_remove(*, application: Application, by: User) -> None:
    """Stop pushing intents to the application."""
    if not Membership.objects.filter(user=by, organisation_id=application.organisation_id).exists():
        raise PermissionDenied("Only the organisation's staff set its webhooks.")
    if IntentWebhook.objects.filter(application=application).delete()[0]:
        ledger_append(
            kind=LedgerEntry.Kind.INTENT_FILTERS_SET,
            actor_type=LedgerEntry.ActorType.VENDOR_ORG,
            actor_id=str(application.organisation_id),
            record_ids=[application.client_id],
            reason=f"webhook removed, staff {by.pk}",
        )


# Auditors: counts, no content.


def intent_counts_by_organisation() -> list[dict[str, Any]]:
    """Per organisation that offered: offers made, accepted, declined (by organisation id)."""
    rows = (
        Offer.objects.values("organisation_id", "organisation__name")
        .annotate(
            made=Count("id"),
            accepted=Count("id", filter=Q(status=Offer.Status.ACCEPTED)),
            declined=Count("id", filter=Q(status=Offer.Status.DECLINED)),
        )
        .order_by("organisation__name")
    )
    return [dict(row) for row in rows]


def intent_totals() -> dict[str, int]:
    """How many intents were published, and how many of them are open, withdrawn, expired, closed."""
    counts = dict(Intent.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    return {"published": sum(counts.values()), **{s: counts.get(s, 0) for s in Intent.Status.values}}
