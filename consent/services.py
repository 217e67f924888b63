"""Grant lifecycle: authorize (create or amend), narrow, extend, revoke, expire.

Every change writes a signed consent receipt and a ledger entry in the same transaction, and
revoking or ending a grant deletes every token issued under it in that transaction too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import dateformat, timezone

from accounts.models import User
from audit.services import ledger_append
from consent.agreements import Outcome, TermsDecision, agreement_record, terms_decide, terms_offer
from consent.models import AccessToken, AuthorizationCode, Grant, RefreshToken, TermsChoice
from consent.receipts import history_from, receipt_issue
from consent.scopes import PERSON_SCOPES, SCOPES, SENSITIVE_SCOPES
from consent.selectors import terms_vendor_ids
from consent.terms import AGREEMENTS
from consent.types import Controller, OAuthApplication
from personal_data.categories import RECORD_CATEGORIES
from personal_data.keys import StoreLocked
from personal_data.models import Share
from personal_data.pseudonyms import person_subject
from personal_data.shares import (
    PREFERENCES,
    ShareFilters,
    share_create,
    share_create_empty,
    share_destroy,
    share_narrow,
    share_refill,
)

DURATIONS = (1, 7, 30, 90, 365)
SENSITIVE_MAX_DAYS = 90
HISTORY_MONTHS = (1, 3, 6, 12, 24)


def _check_choice(
    *, application: OAuthApplication, scopes: Iterable[str], duration_days: int, history_months: int | None
) -> list[str]:
    chosen = sorted(set(scopes))
    errors: dict[str, list[str]] = {}
    allowed = set(application.scopes) & set(PERSON_SCOPES)
    if not chosen:
        errors["scopes"] = ["Choose at least one thing to share, or deny the request."]
    elif not set(chosen) <= allowed:
        errors["scopes"] = ["This app did not register some of these scopes."]
    if duration_days not in DURATIONS:
        errors["duration_days"] = [f"Choose one of {', '.join(map(str, DURATIONS))} days."]
    elif duration_days > SENSITIVE_MAX_DAYS and SENSITIVE_SCOPES & set(chosen):
        errors["duration_days"] = [f"Sensitive data can be shared for at most {SENSITIVE_MAX_DAYS} days."]
    if history_months is not None and history_months not in HISTORY_MONTHS:
        errors["history_months"] = ["Choose a history window from the list."]
    if errors:
        raise ValidationError(errors)
    return chosen


def _ledger(
    grant: Grant,
    kind: str,
    *,
    actor_type: str,
    actor_id: str,
    scopes: Iterable[str] = (),
    reason: str = "",
    record_count: int | None = None,
    record_ids: Iterable[str] = (),
    outcome: str = "allowed",
    request_id: str = "",
    alone: bool = False,
) -> None:
    """Record an event of a grant, naming its person by their ledger pseudonym only."""
    ledger_append(
        kind=kind,
        actor_type=actor_type,
        actor_id=actor_id,
        subject=person_subject(grant.person),
        grant_id=str(grant.pk),
        scopes=scopes,
        reason=reason,
        record_count=record_count,
        record_ids=record_ids,
        outcome=outcome,
        request_id=request_id,
        alone=alone,
    )


def share_categories(scopes: Iterable[str]) -> tuple[str, ...]:
    """The store categories a grant's scopes let its vendor read (records and preferences)."""
    readable = set()
    for scope in scopes:
        category = SCOPES[scope].category
        if scope.endswith(":read") and (category in RECORD_CATEGORIES or category == PREFERENCES):
            readable.add(category)
    return tuple(sorted(c for c in readable if c is not None))


def _filters(grant: Grant) -> ShareFilters:
    since = history_from(grant)
    return ShareFilters(
        categories=share_categories(grant.scopes),
        include_gifts=grant.include_gifts,
        since=dt.date.fromisoformat(since) if since else None,
        record_ids=None if grant.record_ids is None else tuple(grant.record_ids),
    )


def _share_fill(grant: Grant, person: User) -> None:
    """Copy what the grant covers under its own key (the person is signed in: their key is open)."""
    if grant.share is None:
        grant.share = share_create(owner=person, filters=_filters(grant))
        grant.save(update_fields=["share"])
    else:
        share_refill(share=grant.share, owner=person, filters=_filters(grant))


def _share_end(grant: Grant) -> None:
    """Destroy the grant's key and every copy under it, in the caller's transaction."""
    share = grant.share
    if share is not None:
        grant.share = None
        grant.save(update_fields=["share"])
        share_destroy(share=share)


def _tokens_delete(grant: Grant) -> int:
    refreshed, _ = RefreshToken.objects.filter(grant=grant).delete()
    accessed, _ = AccessToken.objects.filter(grant=grant).delete()
    return refreshed + accessed


def _halted_check(application: OAuthApplication) -> None:
    """Refuse a new grant to a suspended or ended vendor, by its standing as stored now."""
    if sentence := _halted_sentence(application):
        raise ValidationError({"__all__": [sentence]})


def _halted_sentence(application: OAuthApplication) -> str:
    """What the operator did to the app's organisation, naming it; "" while it is active.

    Read afresh, under a share lock held to the end of the caller's transaction: a suspension or
    an ending (which locks the row to update it) waits for the grant being made or extended, and
    then sees it, so none is left live under an ended vendor or unannounced under a suspended one.
    """
    organisation: Controller = application.organisation
    if connection.vendor == "postgresql":  # SQLite takes the one write lock at BEGIN anyway
        table = connection.ops.quote_name(cast(Any, organisation)._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {table} WHERE id = %s FOR SHARE", [str(organisation.pk)])  # noqa: S608
    # The caller's instance may have been loaded before the operator acted.
    organisation.refresh_from_db(fields=["standing", "standing_reason"])
    if not organisation.halted():
        return ""
    return str(organisation.halt_notice().replace("this organisation", organisation.name, 1))


@transaction.atomic
def grant_authorize(
    *,
    person: User,
    application: OAuthApplication,
    scopes: Iterable[str],
    duration_days: int,
    history_months: int | None = None,
    include_gifts: bool = False,
    terms_answer: str | None = None,
    terms_shown: str | None = None,
) -> Grant:
    """Record the person's consent to an app: a new grant, or an amendment of the active one.

    The person's MyTerms agreements are matched against the vendor's (consent.agreements);
    `terms_answer` is their answer to a vendor's alternative. When no agreement comes out and
    the person allows no grant without one, nothing is recorded (ValidationError on "terms").
    """
    chosen = _check_choice(
        application=application, scopes=scopes, duration_days=duration_days, history_months=history_months
    )
    # The consent page says so before the person chooses; this holds for every other way in.
    _halted_check(application)
    organisation = application.organisation
    decision = terms_decide(
        offer=terms_offer(
            person=person, organisation_id=organisation.pk, accepted_terms=organisation.accepted_terms
        ),
        alternative_answer=terms_answer,
        shown=terms_shown,
    )
    now = timezone.now()
    purposes = {s: application.purpose_of(s) for s in chosen}
    grant = (
        Grant.objects.select_for_update()
        .filter(person=person, application_id=application.pk, status=Grant.Status.ACTIVE)
        .first()
    )
    if grant is not None and grant.is_live(now):
        grant.scopes, grant.purposes = chosen, purposes
        grant.ends_at = now + dt.timedelta(days=duration_days)
        grant.history_months, grant.include_gifts, grant.amended_at = history_months, include_gifts, now
        grant.save()
        event = "amended"
    else:
        if grant is not None:  # active in name but past its end: close it first
            grant_expire(grant=grant)
        grant = Grant.objects.create(
            person=person,
            application=application,  # type: ignore[misc]  # vendors.Application, above consent
            scopes=chosen,
            purposes=purposes,
            created_at=now,
            starts_at=now,
            ends_at=now + dt.timedelta(days=duration_days),
            history_months=history_months,
            include_gifts=include_gifts,
        )
        event = "created"
    _share_fill(grant, person)
    _ledger(grant, f"grant.{event}", actor_type="person", actor_id=person_subject(person), scopes=chosen)
    agreement_record(grant=grant, person=person, decision=decision)
    receipt_issue(grant=grant, event=event)
    return grant


def _longest_days(scopes: Iterable[str]) -> int:
    return SENSITIVE_MAX_DAYS if SENSITIVE_SCOPES & set(scopes) else max(DURATIONS)


def grant_extension_days(*, grant: Grant, scopes: Iterable[str] | None = None, now: dt.datetime) -> int:
    """Return how many whole days the grant's end may move later (0: it runs as long as allowed).

    The caps of consent hold, counted from today: 365 days, 90 with a sensitive scope.
    """
    latest = now + dt.timedelta(days=_longest_days(grant.scopes if scopes is None else scopes))
    return max(0, (latest - grant.ends_at).days)


def _day(moment: dt.datetime | dt.date) -> str:
    return dateformat.format(moment, "j M Y")


@transaction.atomic
def grant_amend(
    *, grant: Grant, by: User, scopes: Iterable[str] | None = None, ends_on: dt.date | None = None
) -> Grant:
    """Narrow a grant (untick scopes) and/or move its end to a later day; the person's act.

    The new end keeps the time of day of the current one. It must be later than the current end
    (ending sooner is revoking) and within the caps of consent, counted from today.
    """
    grant = Grant.objects.select_for_update().get(pk=grant.pk)
    now = timezone.now()
    if not grant.is_live(now):
        raise ValidationError(
            {"__all__": ["This grant has ended, so it cannot be changed; the vendor must ask again."]}
        )
    new_scopes = sorted(set(grant.scopes if scopes is None else scopes))
    errors: dict[str, list[str]] = {}
    if not set(new_scopes) <= set(grant.scopes):
        errors["scopes"] = ["A grant can only be narrowed here; the vendor must ask for more."]
    elif not new_scopes:
        errors["scopes"] = ["Keep at least one scope, or revoke the grant."]
    ends_at = grant.ends_at
    if ends_on is not None:
        current = grant.ends_at.astimezone(dt.UTC)
        later_by = (ends_on - current.date()).days
        most = grant_extension_days(grant=grant, scopes=new_scopes, now=now)
        longest = _longest_days(new_scopes)
        halted = _halted_sentence(grant.application)
        if halted:
            # A longer grant is more access: not for a vendor the operator has stopped.
            errors["ends_on"] = [f"{halted} Its grants cannot be extended until the operator lifts that."]
        elif later_by <= 0:
            errors["ends_on"] = [
                f"Choose a day after {_day(current)}, when this grant ends now: extending only makes "
                "a grant last longer. To stop sharing sooner, revoke it."
            ]
        elif not most:
            errors["ends_on"] = [
                f"This grant already runs as long as allowed ({longest} days from today); "
                "you can extend it later, nearer its end."
            ]
        elif later_by > most:
            sensitive = " when it includes sensitive data" if longest == SENSITIVE_MAX_DAYS else ""
            errors["ends_on"] = [
                f"A grant can last at most {longest} days from today{sensitive}: "
                f"choose {_day(current + dt.timedelta(days=most))} or earlier."
            ]
        else:
            ends_at = grant.ends_at + dt.timedelta(days=later_by)
    if errors:
        raise ValidationError(errors)
    grant.scopes = new_scopes
    grant.purposes = {s: p for s, p in grant.purposes.items() if s in new_scopes}
    grant.ends_at, grant.amended_at = ends_at, now
    grant.save()
    if grant.share is not None:  # narrowing only deletes copies: no key needed
        share_narrow(share=grant.share, categories=share_categories(new_scopes))
    _ledger(grant, "grant.amended", actor_type="person", actor_id=person_subject(by), scopes=new_scopes)
    receipt_issue(grant=grant, event="amended")
    return grant


def _end(grant: Grant, *, status: str, by: str, reason: str) -> Grant:
    grant.status, grant.ended_at, grant.ended_by, grant.end_reason = status, timezone.now(), by, reason
    grant.save()
    _share_end(grant)
    return grant


@transaction.atomic
def grant_revoke(*, grant: Grant, by: User, reason: str = "revoked by the person") -> Grant:
    """Revoke a grant and every token issued under it, at once."""
    return _revoke(grant, ended_by="person", actor_type="person", actor_id=person_subject(by), reason=reason)


@transaction.atomic
def grant_revoke_by_operator(*, grant: Grant, operator: User, reason: str) -> Grant:
    """Revoke a grant because the operator ended its vendor (vendors/suspensions.py): the same
    end as the person's revocation, its tokens gone and a receipt issued, with the operator as actor."""
    return _revoke(
        grant, ended_by="operator", actor_type="operator", actor_id=str(operator.pk), reason=reason
    )


def _revoke(grant: Grant, *, ended_by: str, actor_type: str, actor_id: str, reason: str) -> Grant:
    grant = Grant.objects.select_for_update().get(pk=grant.pk)
    if grant.status != Grant.Status.ACTIVE:
        return grant
    withdrawn = _tokens_delete(grant)
    _end(grant, status=Grant.Status.REVOKED, by=ended_by, reason=reason)
    _ledger(grant, "grant.revoked", actor_type=actor_type, actor_id=actor_id, reason=reason, record_count=0)
    if withdrawn:
        _ledger(
            grant,
            "token.revoked",
            actor_type="system",
            actor_id="grant-revoked",
            record_count=0,
            reason=f"{withdrawn} tokens withdrawn",
        )
    receipt_issue(grant=grant, event="revoked")
    return grant


@transaction.atomic
def grant_expire(*, grant: Grant) -> Grant:
    """Mark a grant past its end as expired and delete its tokens."""
    grant = Grant.objects.select_for_update().get(pk=grant.pk)
    if grant.status != Grant.Status.ACTIVE:
        return grant
    _tokens_delete(grant)
    _end(grant, status=Grant.Status.EXPIRED, by="system", reason="the agreed time ended")
    _ledger(grant, "grant.expired", actor_type="system", actor_id="expire_grants")
    receipt_issue(grant=grant, event="expired")
    return grant


def grants_expire_overdue(*, now: dt.datetime | None = None) -> int:
    """Expire every active grant whose end has passed; return how many."""
    overdue = Grant.objects.filter(status=Grant.Status.ACTIVE, ends_at__lte=now or timezone.now())
    count = 0
    for grant in overdue.iterator():
        grant_expire(grant=grant)
        count += 1
    return count


@transaction.atomic
def grant_tokens_withdraw(*, grant: Grant, event: str, reason: str) -> int:
    """Delete every token of a grant after an attack signal (code replay, refresh reuse)."""
    withdrawn = _tokens_delete(grant)
    _ledger(
        grant,
        event,
        actor_type="client",
        actor_id=grant.application.client_id,
        reason=reason,
        record_count=withdrawn,
        scopes=grant.scopes,
    )
    return withdrawn


@transaction.atomic
def application_tokens_withdraw(*, application: OAuthApplication) -> int:
    """Delete every access token, refresh token and unexchanged authorization code of an
    application; return how many.

    A code is as good as a token to whoever holds the client secret, so it goes too. Its grants
    stay as the people gave them: the app asks each person again to get new tokens. The caller
    records why (a secret reset writes its own ledger entry) and holds the application's row
    (consent.oauth.GrantValidator.authenticate_client waits on it), so no token request that
    authenticated before can add a token after.
    """
    refreshed, _ = RefreshToken.objects.filter(application_id=application.pk).delete()
    accessed, _ = AccessToken.objects.filter(application_id=application.pk).delete()
    coded, _ = AuthorizationCode.objects.filter(application_id=application.pk).delete()
    return refreshed + accessed + coded


def token_event_record(
    *, event: str, client: OAuthApplication, grant: Grant | None, scopes: list[str]
) -> None:
    """Write a token event to the ledger (inside the token endpoint's transaction)."""
    if grant is None:
        ledger_append(kind=event, actor_type="client", actor_id=client.client_id, scopes=scopes)
    else:
        _ledger(grant, event, actor_type="client", actor_id=client.client_id, scopes=scopes)


def access_record(
    *,
    grant: Grant,
    client_id: str,
    kind: str,
    scopes: Iterable[str],
    record_ids: Iterable[str] = (),
    record_count: int | None = None,
    reason: str = "",
    request_id: str = "",
    alone: bool = False,
) -> None:
    """Record one vendor access under a grant, inside the transaction that wrote the data.

    `kind` is access.read, access.write or access.check; `record_count` defaults to the number
    of ids. A read writes nothing else: it passes `alone=True`, and outside a transaction its
    entry commits on its own (one statement instead of three, on every vendor read).
    """
    _ledger(
        grant,
        kind,
        actor_type="client",
        actor_id=client_id,
        scopes=scopes,
        record_ids=record_ids,
        record_count=record_count,
        reason=reason,
        request_id=request_id,
        alone=alone,
    )


@transaction.atomic
def access_denied_record(
    *, grant: Grant, client_id: str, scopes: Iterable[str], reason: str, request_id: str = ""
) -> None:
    """Record a vendor request refused under a grant (insufficient scope, unknown record, ...)."""
    _ledger(
        grant,
        "access.denied",
        actor_type="client",
        actor_id=client_id,
        scopes=scopes,
        outcome="denied",
        reason=reason,
        request_id=request_id,
    )


@transaction.atomic
def grant_for_records(
    *, person: User, application: OAuthApplication, record_ids: list[str], days: int = 30
) -> Grant:
    """Give one app `purchases:read` to named records only (a recall answer), with its receipt."""
    _halted_check(application)
    active = Grant.objects.filter(person=person, application_id=application.pk, status=Grant.Status.ACTIVE)
    if active.exists():
        raise ValidationError(
            {
                "__all__": [
                    f"You already share data with {application.organisation.name}; "
                    "change that grant on your grants page instead."
                ]
            }
        )
    decision = _terms_for_recall_answer(person=person, application=application)
    now = timezone.now()
    grant = Grant.objects.create(
        person=person,
        application=application,  # type: ignore[misc]  # vendors.Application, above consent
        scopes=["purchases:read"],
        purposes={"purchases:read": "to contact you about a product recall that matched these purchases"},
        starts_at=now,
        created_at=now,
        ends_at=now + dt.timedelta(days=days),
        include_gifts=True,
        record_ids=[str(r) for r in record_ids],
    )
    _share_fill(grant, person)
    _ledger(
        grant,
        "grant.created",
        actor_type="person",
        actor_id=person_subject(person),
        scopes=grant.scopes,
        record_count=len(record_ids),
    )
    agreement_record(grant=grant, person=person, decision=decision)
    receipt_issue(grant=grant, event="created")
    return grant


def _terms_for_recall_answer(*, person: User, application: OAuthApplication) -> TermsDecision:
    """The person's terms hold for a recall answer too. There is no consent page to offer the
    vendor's alternative on, so an alternative counts as none of the person's terms accepted."""
    organisation = application.organisation
    offer = terms_offer(
        person=person, organisation_id=organisation.pk, accepted_terms=organisation.accepted_terms
    )
    if offer.outcome == Outcome.ALTERNATIVE:
        if not offer.allow_without:
            raise ValidationError(
                {
                    "__all__": [
                        f"{organisation.name} accepts none of your terms, and your terms allow no grant "
                        "without them. To answer, change your terms."
                    ]
                }
            )
        return TermsDecision(offer=offer, agreement=None, made="")
    try:
        return terms_decide(offer=offer, alternative_answer=None)
    except ValidationError:
        raise ValidationError(
            {
                "__all__": [
                    f"{organisation.name} accepts none of your terms, and your terms allow no grant "
                    "without them. To answer, change your terms."
                ]
            }
        ) from None


@transaction.atomic
def grant_share_ensure(*, grant: Grant) -> Share:
    """The grant's share, made now for a grant from before grant keys existed.

    Its copies can be made while the person's data key is still wrapped by the master key (an
    account not yet moved to person-held keys) or while they are signed in; otherwise the share
    starts empty and is filled at their next sign-in (`grants_shares_fill`).
    """
    grant = Grant.objects.select_for_update().select_related("share").get(pk=grant.pk)
    if grant.share is not None:
        return grant.share
    try:
        _share_fill(grant, grant.person)
    except StoreLocked:
        grant.share = share_create_empty(owner=grant.person, filters=_filters(grant))
        grant.save(update_fields=["share"])
    if grant.share is None:
        raise StoreLocked("the grant's share could not be made")
    return grant.share


def grants_shares_fill(*, person: User) -> int:
    """At sign-in: give every live grant of the person its copies, where it has none yet."""
    filled = 0
    for grant in Grant.objects.filter(person=person, status=Grant.Status.ACTIVE).select_related("share"):
        if not grant.is_live():
            continue
        if grant.share is None or not grant.share.filled:
            with transaction.atomic():
                _share_fill(grant, person)
            filled += 1
    return filled


@transaction.atomic
def terms_choice_update(
    *,
    person: User,
    proffered: Sequence[str],
    per_vendor: Mapping[str, str],
    allow_without_terms: bool,
) -> TermsChoice:
    """Save the agreements the person proffers, in order, and their per-vendor choices.

    Raise ValidationError (and change nothing) for an unknown agreement, one listed twice, or
    a vendor the person has never granted anything to.
    """
    problems: dict[str, list[str]] = {}
    unknown = [a for a in [*proffered, *per_vendor.values()] if a not in AGREEMENTS]
    if unknown:
        problems["proffered"] = ["There is no agreement called " + ", ".join(sorted(set(unknown))) + "."]
    elif len(set(proffered)) != len(proffered):
        problems["proffered"] = ["Each agreement can have only one place in your list."]
    known_vendors = {str(o) for o in terms_vendor_ids(person=person)}
    if set(per_vendor) - known_vendors:
        problems["per_vendor"] = ["You can only choose terms for vendors you have granted access to."]
    if problems:
        raise ValidationError(problems)
    choice, created = TermsChoice.objects.select_for_update().get_or_create(person=person)
    before = (choice.proffered, choice.per_vendor, choice.allow_without_terms)
    choice.proffered = list(proffered)
    choice.per_vendor = dict(per_vendor)
    choice.allow_without_terms = allow_without_terms
    if not created and before == (choice.proffered, choice.per_vendor, choice.allow_without_terms):
        return choice  # saved as it was: nothing to record
    choice.updated_at = timezone.now()
    choice.save()
    _terms_chosen_record(choice, person=person)
    return choice


def _terms_chosen_record(choice: TermsChoice, *, person: User) -> None:
    """Record the person's new terms: roster ids (public) in their order, and per-vendor picks.

    Each per-vendor pick is `<organisation id>=<roster id>`; both are public ids, and which
    vendors the person deals with is in their grants' entries already.
    """
    subject = person_subject(person)
    picks = [f"{organisation}={agreement}" for organisation, agreement in sorted(choice.per_vendor.items())]
    ledger_append(
        kind="terms.chosen",
        actor_type="person",
        actor_id=subject,
        subject=subject,
        record_ids=[*choice.proffered, *picks],
        record_count=len(choice.proffered),
        reason="without terms: " + ("allowed" if choice.allow_without_terms else "refused"),
    )
