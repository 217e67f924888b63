"""MyTerms at consent (IEEE 7012): match the person's terms against the vendor's, and keep the
signed agreement record that both parties retrieve.

The person proffers agreements from the roster (consent.terms), most preferred first, or one
agreement for a particular vendor. A vendor organisation declares which roster agreements it
accepts. At consent:

- the vendor accepts one or more of the proffered agreements: the grant is made under the
  person's most preferred one among them;
- it accepts none of them but accepts others: it offers exactly one alternative (the first of
  its accepted agreements in roster order), which the person takes or refuses;
- it accepts nothing: declined.

When no agreement comes out, the grant goes ahead only if the person allows grants without
terms. Each outcome is a ledger entry (terms.proffered, terms.accepted, terms.declined), in the
grant's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.jws import document_sign, document_verify
from audit.services import ledger_append
from consent.models import Grant, TermsAgreement
from consent.selectors import terms_choice_get
from consent.terms import AGREEMENTS, ROSTER, Agreement
from core.formats import rfc3339
from personal_data.pseudonyms import pairwise_subject, person_subject

AGREEMENT_TYP = "vrm-agreement+jws"
AGREEMENT_VERSION = "vrm-agreement/1 (IEEE 7012-2025 MyTerms)"
# What the person posts on the consent page about a vendor's alternative.
REFUSE_ALTERNATIVE = "none"


class Outcome:
    NO_TERMS = "no_terms"  # the person proffers nothing: consent as before
    ACCEPTED = "accepted"
    ALTERNATIVE = "alternative"
    DECLINED = "declined"


@dataclass(frozen=True)
class TermsOffer:
    """What the consent page knows about terms between one person and one organisation."""

    proffered: tuple[Agreement, ...]  # what the person proffers to this vendor, most preferred first
    accepted: tuple[Agreement, ...]  # which of those the vendor accepts, in the person's order
    alternative: Agreement | None  # when it accepts none of them: the one it offers instead
    allow_without: bool

    @property
    def outcome(self) -> str:
        if not self.proffered:
            return Outcome.NO_TERMS
        if self.accepted:
            return Outcome.ACCEPTED
        return Outcome.ALTERNATIVE if self.alternative is not None else Outcome.DECLINED

    @property
    def agreement(self) -> Agreement | None:
        """The agreement the grant is made under without asking the person anything more."""
        return self.accepted[0] if self.accepted else None

    @property
    def token(self) -> str:
        """What the consent page showed, posted back with the answer ("accepted:sd-base")."""
        shown = self.agreement or self.alternative
        return f"{self.outcome}:{shown.id if shown else ''}"

    @property
    def blocks(self) -> bool:
        """Whether no grant can be made as things stand (the person requires terms, none agreed)."""
        return self.outcome == Outcome.DECLINED and not self.allow_without


def terms_offer(*, person: User, organisation_id: Any, accepted_terms: list[str]) -> TermsOffer:
    """Match the person's terms against what the organisation accepts (reads only)."""
    choice = terms_choice_get(person=person)
    pick = (choice.per_vendor or {}).get(str(organisation_id))
    ids = [pick] if pick else list(choice.proffered or [])
    proffered = tuple(AGREEMENTS[i] for i in ids if i in AGREEMENTS)
    vendor = set(accepted_terms or [])
    accepted = tuple(a for a in proffered if a.id in vendor)
    alternative = None
    if proffered and not accepted:
        alternative = next((a for a in ROSTER if a.id in vendor), None)
    return TermsOffer(
        proffered=proffered,
        accepted=accepted,
        alternative=alternative,
        allow_without=choice.allow_without_terms,
    )


@dataclass(frozen=True)
class TermsDecision:
    offer: TermsOffer
    agreement: Agreement | None
    made: str  # TermsAgreement.Made, or "" with no agreement
    refused_alternative: bool = False


def terms_decide(
    *, offer: TermsOffer, alternative_answer: str | None, shown: str | None = None
) -> TermsDecision:
    """Decide the terms of a consent, or raise ValidationError({"terms": ...}) for no grant.

    `alternative_answer` is what the person posted about the vendor's alternative: its roster
    id to take it, REFUSE_ALTERNATIVE to refuse it, None when they answered nothing. An id that
    is not the alternative offered now (the vendor changed its terms after the page was shown)
    is refused: the person agrees only to what they saw. So is any other change since the page
    was shown (`shown`, the page's TermsOffer.token): a vendor that stopped accepting the
    person's terms meanwhile does not get a grant without them unasked.
    """
    if shown is not None and shown != offer.token:
        raise ValidationError(
            {"terms": ["The vendor's terms changed while you were deciding. Read them again below."]}
        )
    outcome = offer.outcome
    if outcome == Outcome.NO_TERMS:
        return TermsDecision(offer=offer, agreement=None, made="")
    if outcome == Outcome.ACCEPTED:
        return TermsDecision(offer=offer, agreement=offer.agreement, made=TermsAgreement.Made.ACCEPTED)
    if outcome == Outcome.ALTERNATIVE and offer.alternative is not None:
        if alternative_answer == offer.alternative.id:
            return TermsDecision(
                offer=offer, agreement=offer.alternative, made=TermsAgreement.Made.ALTERNATIVE
            )
        if alternative_answer not in (None, REFUSE_ALTERNATIVE):
            raise ValidationError(
                {"terms": ["The vendor's terms changed while you were deciding. Read them again below."]}
            )
        if alternative_answer is None:
            raise ValidationError(
                {
                    "terms": [
                        f"Choose whether to take “{offer.alternative.title}” instead"
                        + (", or go ahead without terms." if offer.allow_without else ", or press “Deny”.")
                    ]
                }
            )
        if not offer.allow_without:
            raise ValidationError(
                {
                    "terms": [
                        "Your settings allow no grant without terms: take the alternative or press “Deny”."
                    ]
                }
            )
        return TermsDecision(offer=offer, agreement=None, made="", refused_alternative=True)
    if offer.blocks:
        raise ValidationError(
            {
                "terms": [
                    "This vendor accepts none of your terms, and your settings allow no grant without them."
                ]
            }
        )
    return TermsDecision(offer=offer, agreement=None, made="")


def _terms_url(agreement: Agreement, name: str = "terms-detail") -> str:
    return settings.VRM_ISSUER + reverse(name, args=[agreement.id])


def agreement_document(
    *, grant: Grant, record_id: uuid.UUID, agreement: Agreement, made: str
) -> dict[str, Any]:
    """Build the agreement record (pure: no writes). The person is named by the vendor's pairwise id."""
    app = grant.application
    org = app.organisation
    return {
        "version": AGREEMENT_VERSION,
        "record_id": str(record_id),
        "made_at": rfc3339(timezone.now()),
        "issuer": settings.VRM_ISSUER,
        "agreement": {
            "id": agreement.id,
            "version": agreement.version,
            "title": agreement.title,
            "url": _terms_url(agreement),
            "json": _terms_url(agreement, "terms-detail-json"),
        },
        "made": made,
        "first_party": {
            "role": "individual",
            "id": pairwise_subject(person_id=grant.person_id, organisation_id=org.pk),
            "proffered": made == TermsAgreement.Made.ACCEPTED,
        },
        "second_party": {
            "role": "entity",
            "organisation": org.name,
            "url": org.website,
            "contact": org.privacy_contact,
            "service": app.name,
            "client_id": app.client_id,
            "proffered": made == TermsAgreement.Made.ALTERNATIVE,
        },
        "grant": {"id": str(grant.pk)},
    }


def _ledger(grant: Grant, kind: str, *, actor_type: str, actor_id: str, reason: str) -> None:
    ledger_append(
        kind=kind,
        actor_type=actor_type,
        actor_id=actor_id,
        subject=person_subject(grant.person),
        grant_id=str(grant.pk),
        reason=reason,
        record_count=0,
    )


def agreement_record(*, grant: Grant, person: User, decision: TermsDecision) -> TermsAgreement | None:
    """Record the terms of a consent under its grant (call in the grant's transaction).

    A consent under the same agreement (id and version) as the grant's current record keeps
    that record; any other agreement makes a new one; no agreement clears the grant's current
    record (its history stays on the grant).
    """
    offer = decision.offer
    org = grant.application.organisation
    if offer.outcome == Outcome.NO_TERMS:
        _set_current(grant, None)
        return None
    me = person_subject(person)
    _ledger(
        grant,
        "terms.proffered",
        actor_type="person",
        actor_id=me,
        reason=",".join(a.id for a in offer.proffered),
    )
    agreement = decision.agreement
    if agreement is None:
        if decision.refused_alternative:
            _ledger(grant, "terms.declined", actor_type="person", actor_id=me, reason="alternative refused")
        else:
            _ledger(
                grant, "terms.declined", actor_type="vendor_org", actor_id=str(org.pk), reason="none accepted"
            )
        _set_current(grant, None)
        return None
    current = grant.agreement
    if (
        current is not None
        and current.agreement_id == agreement.id
        and current.agreement_version == agreement.version
    ):
        return current
    record_id = uuid.uuid4()
    document = agreement_document(grant=grant, record_id=record_id, agreement=agreement, made=decision.made)
    record = TermsAgreement.objects.create(
        id=record_id,
        grant=grant,
        agreement_id=agreement.id,
        agreement_version=agreement.version,
        made=decision.made,
        document=document,
        jws=document_sign(document, typ=AGREEMENT_TYP),
    )
    actor_type, actor_id = ("vendor_org", str(org.pk))
    if decision.made == TermsAgreement.Made.ALTERNATIVE:
        actor_type, actor_id = ("person", me)  # the vendor proffered; the person accepted
    _ledger(
        grant,
        "terms.accepted",
        actor_type=actor_type,
        actor_id=actor_id,
        reason=f"{agreement.id} {agreement.version} {decision.made}",
    )
    _set_current(grant, record)
    return record


def _set_current(grant: Grant, record: TermsAgreement | None) -> None:
    if grant.agreement_id != (record.pk if record else None):
        grant.agreement = record
        grant.save(update_fields=["agreement"])


def terms_refusal_record(*, person: User, organisation_id: Any, offer: TermsOffer) -> None:
    """Record that a consent ended without a grant because the vendor accepts none of the
    person's required terms (the person pressed Deny on a page that could not grant)."""
    with transaction.atomic():
        ledger_append(
            kind="terms.declined",
            actor_type="vendor_org",
            actor_id=str(organisation_id),
            subject=person_subject(person),
            reason="none accepted, no grant",
            record_count=0,
        )


def agreement_current(*, grant: Grant) -> TermsAgreement:
    """The agreement record the grant's latest consent was made under, or Http404."""
    if grant.agreement_id is None:
        raise Http404("This grant was made without a MyTerms agreement.")
    return TermsAgreement.objects.get(pk=grant.agreement_id)


def agreement_json(record: TermsAgreement) -> dict[str, Any]:
    """The record as both parties retrieve it: the signed document, its JWS, the acknowledgement."""
    return {
        "record": record.document,
        "jws": record.jws,
        "acknowledged_at": rfc3339(record.acknowledged_at) if record.acknowledged_at else None,
    }


@transaction.atomic
def agreement_acknowledge(
    *, grant: Grant, client_id: str, request_id: str = ""
) -> tuple[TermsAgreement, bool]:
    """Record the vendor's acknowledgement of the grant's agreement; a repeat changes nothing.

    Return the record and whether this call acknowledged it.
    """
    if grant.agreement_id is None:
        raise Http404("This grant was made without a MyTerms agreement.")
    record = TermsAgreement.objects.select_for_update().get(pk=grant.agreement_id)
    if record.acknowledged_at is None:
        record.acknowledged_at = timezone.now()
        record.save(update_fields=["acknowledged_at"])
        ledger_append(
            kind="terms.acknowledged",
            actor_type="client",
            actor_id=client_id,
            subject=person_subject(grant.person),
            grant_id=str(grant.pk),
            reason=f"{record.agreement_id} {record.agreement_version}",
            record_count=0,
            request_id=request_id,
        )
        return record, True
    return record, False


def agreement_verify(compact: str, public_key: dict[str, Any] | None = None) -> dict[str, Any]:
    """Verify an agreement record's signature and return its document (jws.InvalidJWSSignature if not)."""
    return document_verify(compact, public_key)
