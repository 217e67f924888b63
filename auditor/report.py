"""The signed verification report an auditor downloads after "verify now".

A JSON document saying what was checked and what was found, signed as a compact JWS with the
ledger signing key (audit.jws, as consent receipts are), so it can be shown to a third party and
checked with the key published at GET /api/v1/ledger/checkpoint (docs/ledger.md).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from audit import ledger
from audit.jws import document_sign, document_verify
from audit.services import VerifyResult
from core.formats import rfc3339

REPORT_FORMAT = "vrm-ledger-verification/1"
REPORT_TYP = "vrm-ledger-verification+jws"


def report_outcome(result: VerifyResult) -> str:
    """Return "intact", "problem" or "nothing_to_verify" (never "intact" after 0 entries)."""
    if result.first_problem is not None:
        return "problem"
    return "intact" if result.ok and result.entries > 0 else "nothing_to_verify"


def verification_report(*, result: VerifyResult, verified_at: dt.datetime, auditor_id: str) -> dict[str, Any]:
    """Build the report document for one run of ledger_verify (pure: no writes)."""
    return {
        "format": REPORT_FORMAT,
        "origin": ledger.origin(),
        "verified_at": rfc3339(verified_at),
        "seconds": round(result.seconds, 3),
        "requested_by": {"role": "auditor", "id": auditor_id},
        "result": report_outcome(result),
        "first_problem": result.first_problem,
        "warnings": list(result.warnings),
        "checked": {
            # Every leaf was recomputed from its entry: one leaf per sealed entry.
            "entries": result.entries,
            "leaves": result.entries,
            "checkpoints": result.checkpoints,
        },
        "newest_checkpoint": (
            {
                "tree_size": result.tree_size,
                "root_hash": base64.b64encode(result.root_hash).decode(),
            }
            if result.root_hash is not None and result.first_problem is None
            else None
        ),
        "signing_keys": [
            {"kid": kid, "key_id": key_id, "checkpoints": count} for kid, key_id, count in result.signers
        ],
        "unsealed_entries": result.unsealed,
        "outside_checkpoint": None if result.outside_size is None else {"tree_size": result.outside_size},
        # The newest checkpoint valid cosignatures of non-retired witnesses cover (null if none),
        # and how many witnesses the run required (0: none required).
        "witnessed_checkpoint": (
            {
                "tree_size": result.witnessed_size,
                "witnesses": list(result.witnessed_by),
                "entries_after": result.awaiting_witnesses,
            }
            if result.witnessed_by and result.first_problem is None
            else None
        ),
        "witnesses_required": result.witnesses_required,
        "alarms": list(result.alarms),
    }


def verification_report_sign(document: dict[str, Any]) -> str:
    """Sign a report with the ledger signing key; return the compact JWS."""
    return document_sign(document, typ=REPORT_TYP)


def verification_report_verify(compact: str, public_key: dict[str, Any] | None = None) -> dict[str, Any]:
    """Verify a report's signature (with a published JWK, or the key its kid names) and return it."""
    return document_verify(compact, public_key)
