"""The person's view of the ledger: every entry about them, in plain language.

The ledger knows people only by pseudonym; this is where a signed-in person's pseudonym is
computed and their entries are told as sentences.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping

from django.db.models import QuerySet

from accounts.models import User
from audit.models import LedgerEntry
from audit.selectors import entries_for_subject
from personal_data.pseudonyms import ledger_pseudonym

# Who did it, for entries whose actor is not a vendor (vendor names come from the caller).
_ACTORS = {"person": "You", "operator": "The operator", "system": "vrm", "auditor": "An auditor"}

_SENTENCES: dict[str, str] = {
    "grant.created": "{actor} received your grant ({scopes})",
    "grant.amended": "{actor}'s grant was changed ({scopes})",
    "grant.revoked": "{actor}'s grant was revoked",
    "grant.expired": "{actor}'s grant ended",
    "token.issued": "{actor} got an access key under your grant",
    "token.refreshed": "{actor} renewed its access key",
    "token.revoked": "{actor}'s access key was withdrawn",
    "token.reuse_detected": "{actor} reused an old access key; every key of that grant was withdrawn",
    "token.code_replayed": "{actor} replayed a one-time code; every key it got was withdrawn",
    "access.read": "{actor} read {records}{categories} under your grant{grant_date}",
    "access.write": "{actor} added {records}{categories} to your store",
    "access.check": "{actor} asked a yes/no question about your purchases",
    "access.denied": "{actor} was refused ({reason})",
    "person.import": "You imported {records}",
    "person.export": "You downloaded everything vrm holds about you",
    "person.erased": "Your store was erased",
    "person.store_restarted": "You started an empty store; what you had ({records}) is set aside, locked",
    "person.store_restored": "You brought back {records} from before with your old recovery code",
    "person.store_destroyed": "What was set aside after your password reset ({records}) was destroyed",
    "key.rotated": "Your encryption key was re-protected under a new master key",
    "recall.published": "{actor} published a recall",
    "recall.matched": "A recall matched {records} of yours",
    "operator.deactivated": "{actor} deactivated your account",
    "operator.reactivated": "{actor} reactivated your account",
    "operator.password_reset": "{actor} e-mailed you a link to set a new password",
    "operator.email_changed": "{actor} changed your e-mail address",
}
# The same events told from the person's side, when the person did them.
_PERSON_SENTENCES: dict[str, str] = {
    "grant.created": "You granted access ({scopes})",
    "grant.amended": "You changed a grant ({scopes})",
    "grant.revoked": "You revoked a grant",
}


def _records(count: int) -> str:
    return "1 record" if count == 1 else f"{count} records"


def _categories(scopes: list[str]) -> str:
    names = sorted({scope.split(":", 1)[0] for scope in scopes})
    return f" ({', '.join(names)})" if names else ""


def entry_sentence(
    entry: LedgerEntry,
    *,
    vendor_name: Callable[[str], str] | None = None,
    grant_dates: Mapping[str, dt.datetime] | None = None,
) -> str:
    """Describe one ledger entry in a sentence a non-technical person understands."""
    granted = (grant_dates or {}).get(entry.grant_id)
    if entry.actor_type in _ACTORS:
        actor = _ACTORS[entry.actor_type]
    else:
        actor = vendor_name(entry.actor_id) if vendor_name else f"Vendor app {entry.actor_id}"
    template = (
        _PERSON_SENTENCES.get(entry.kind) if entry.actor_type == "person" else None
    ) or _SENTENCES.get(entry.kind, "{actor}: " + entry.kind)
    return template.format(
        actor=actor,
        records=_records(entry.record_count),
        scopes=", ".join(entry.scopes) or "no scopes",
        reason=entry.reason or "not allowed",
        categories=_categories(entry.scopes),
        grant_date=f" of {granted:%-d %B %Y}" if granted else "",
    )


def activity_for_person(*, person: User) -> QuerySet[LedgerEntry]:
    """Return every ledger entry about the person, newest first (with its leaf if sealed)."""
    try:
        subject = ledger_pseudonym(person_id=person.pk)
    except LookupError:
        return LedgerEntry.objects.none()
    return entries_for_subject(subject=subject)


def grant_dates_for_person(*, person: User) -> dict[str, dt.datetime]:
    """Return when each of the person's grants was first given, by grant id."""
    entries = activity_for_person(person=person).filter(kind=LedgerEntry.Kind.GRANT_CREATED)
    dates: dict[str, dt.datetime] = {}
    for grant_id, created_at in entries.order_by("created_at").values_list("grant_id", "created_at"):
        dates.setdefault(grant_id, created_at)
    return dates


def entries_for_grant(*, person: User, grant_id: str) -> QuerySet[LedgerEntry]:
    """Return the person's ledger entries under one grant, newest first."""
    return activity_for_person(person=person).filter(grant_id=grant_id)
