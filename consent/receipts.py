"""Consent receipts: a signed JSON document for every state change of a grant.

The document follows the Kantara Consent Receipt v1.1 and ISO/IEC TS 27560 consent record
(docs/consent.md maps each field); it is signed as a compact JWS (EdDSA, Ed25519) with
VRM_LEDGER_SIGNING_KEY. Its protected header names the key by `kid` (the RFC 7638 thumbprint),
and `/api/v1/ledger/checkpoint` publishes every key of the key history with its kid, so a receipt
keeps verifying after the signing key is rotated.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import uuid
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Max
from django.utils import timezone

from audit.jws import document_sign, document_verify
from consent.models import Grant, Receipt
from consent.scopes import SCOPES
from core.formats import rfc3339
from personal_data.pseudonyms import pairwise_subject

RECEIPT_TYP = "vrm-receipt+jws"
RECEIPT_VERSION = "vrm-receipt/1 (Kantara CR v1.1, ISO/IEC TS 27560)"
SCHEMA_PATH = Path(__file__).with_name("receipt.schema.json")
TERMINATION = {
    "created": None,
    "amended": None,
    "revoked": "revoked by the person",
    "expired": "the agreed time ended",
}


def months_before(day: dt.date, months: int) -> dt.date:
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def history_from(grant: Grant) -> str | None:
    """Return the first date a vendor may see under the grant's history window, if any."""
    if grant.history_months is None:
        return None
    return months_before(timezone.now().date(), grant.history_months).isoformat()


def receipt_document(*, grant: Grant, event: str, number: int) -> dict[str, Any]:
    """Build the receipt for one grant event (pure: no writes)."""
    app = grant.application
    org = app.organisation
    scopes = [
        {
            "scope": name,
            "title": SCOPES[name].title,
            "reveals": SCOPES[name].reveals,
            "sensitive": SCOPES[name].sensitive,
            "purpose": grant.purposes.get(name, ""),
        }
        for name in grant.scopes
    ]
    return {
        "version": RECEIPT_VERSION,
        "receipt_id": str(uuid.uuid4()),
        "receipt_number": number,
        "event": event,
        "issued_at": rfc3339(timezone.now()),
        "issuer": settings.VRM_ISSUER,
        "jurisdiction": settings.VRM_JURISDICTION,
        "language": "en",
        "collection_method": "vrm consent page, explicit opt-in",
        "pii_principal_id": pairwise_subject(person_id=grant.person_id, organisation_id=org.pk),
        "pii_controllers": [
            {
                "name": org.name,
                "contact": org.privacy_contact,
                "url": org.website,
                "verified": org.verified,
            }
        ],
        "services": [
            {
                "service": app.name,
                "client_id": app.client_id,
                "purposes": [
                    {
                        "purpose": p["purpose"],
                        "scope": p["scope"],
                        "consent_type": "explicit",
                        "third_party_disclosure": False,
                    }
                    for p in scopes
                ],
            }
        ],
        "scopes": scopes,
        "sensitive": any(s["sensitive"] for s in scopes),
        "grant": {
            "id": str(grant.pk),
            "status": grant.status,
            "start": rfc3339(grant.starts_at),
            "end": rfc3339(grant.ends_at),
            "history_months": grant.history_months,
            "history_from": history_from(grant),
            "include_gifts": grant.include_gifts,
            "termination": TERMINATION[event],
            "how_to_withdraw": f"{settings.VRM_ISSUER}/grants/{grant.pk}/",
        },
        "agreement": _agreement_reference(grant),
    }


def _agreement_reference(grant: Grant) -> dict[str, str] | None:
    """Name the MyTerms agreement record the grant stands under, if any (consent.agreements)."""
    record = grant.agreement
    if record is None:
        return None
    return {"record_id": str(record.pk), "id": record.agreement_id, "version": record.agreement_version}


def receipt_sign(document: dict[str, Any]) -> str:
    """Sign a receipt with the configured key (refused unless it is in the key history)."""
    return document_sign(document, typ=RECEIPT_TYP)


def receipt_verify(compact: str, public_key: dict[str, Any] | None = None) -> dict[str, Any]:
    """Verify a receipt's signature and return its document; raise jws.InvalidJWSSignature.

    Without public_key (a JWK), take the key its header's `kid` names from the key history, so a
    receipt signed before a rotation verifies under the key that signed it.
    """
    return document_verify(compact, public_key)


def receipt_issue(*, grant: Grant, event: str) -> Receipt:
    """Sign and store the next receipt of a grant (call inside the grant change's transaction)."""
    number = (grant.receipts.aggregate(n=Max("number"))["n"] or 0) + 1
    document = receipt_document(grant=grant, event=event, number=number)
    return Receipt.objects.create(
        grant=grant,
        number=number,
        event=event,
        document=document,
        jws=receipt_sign(document),
        issued_at=timezone.now(),
    )


@lru_cache(maxsize=1)
def receipt_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())
