"""The complete export (`vrm-export/1`, INTERFACES.md §6), streamed, and the CSV ZIP."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from django.utils import timezone

from accounts.models import User
from consent.agreements import agreement_json
from consent.models import Grant
from consent.selectors import grants_for_person, terms_choice_get
from consent.terms import AGREEMENTS
from core.formats import csv_cell, rfc3339
from personal_data.categories import RECORD_CATEGORIES
from personal_data.selectors import preferences_get, records_for_owner
from personal_data.transfer import FORMAT, category_csv
from portal.activity import activity_for_person, entry_sentence, names_for_person
from portal.reminders import reminders_export
from vendors.alerts import alerts_export
from vendors.intents import intents_export
from vendors.messages import messages_export
from vendors.reports import reports_export


def _grant(grant: Grant) -> dict[str, Any]:
    return {
        "id": str(grant.pk),
        "vendor": grant.application.organisation.name,
        "app": grant.application.name,
        "scopes": grant.scopes,
        "purposes": grant.purposes,
        "status": grant.status,
        "created_at": rfc3339(grant.created_at),
        "ends_at": rfc3339(grant.ends_at),
        "ended_at": rfc3339(grant.ended_at) if grant.ended_at else None,
        "history_months": grant.history_months,
        "include_gifts": grant.include_gifts,
    }


def _receipts(grants: list[Grant]) -> list[dict[str, Any]]:
    return [
        {"grant": str(g.pk), "number": r.number, "event": r.event, "jws": r.jws, "document": r.document}
        for g in grants
        for r in g.receipts.order_by("number")
    ]


def _agreements(grants: list[Grant]) -> list[dict[str, Any]]:
    """Every signed MyTerms agreement record, as the grant page and the vendor's API give it."""
    return [
        {"grant": str(g.pk), "current": a.pk == g.agreement_id, **agreement_json(a)}
        for g in grants
        for a in g.agreements.order_by("made_at")
    ]


def _terms(person: User, grants: list[Grant]) -> dict[str, Any]:
    """The person's MyTerms choice: what they proffer, their per-vendor picks, the fallback.

    `updated_at` is null while they have never saved it (the defaults: nothing proffered, grants
    without terms allowed).
    """
    choice = terms_choice_get(person=person)
    vendors = {str(g.application.organisation_id): g.application.organisation.name for g in grants}

    def agreement(agreement_id: str) -> dict[str, Any]:
        known = AGREEMENTS.get(agreement_id)
        return {
            "id": agreement_id,
            "version": known.version if known else None,
            "title": known.title if known else None,
        }

    return {
        "proffered": [agreement(a) for a in choice.proffered],
        "per_vendor": [
            {"organisation": org, "vendor": vendors.get(org), "agreement": agreement(a)}
            for org, a in sorted(choice.per_vendor.items())
        ],
        "allow_without_terms": choice.allow_without_terms,
        "updated_at": rfc3339(choice.updated_at) if choice.pk else None,
    }


def _activity(person: User) -> Iterator[dict[str, Any]]:
    names = names_for_person(person=person)
    for entry in activity_for_person(person=person).iterator(chunk_size=2000):
        yield {
            "id": entry.pk,
            "at": rfc3339(entry.created_at),
            "kind": entry.kind,
            "what": entry_sentence(entry, names),
            "grant": entry.grant_id or None,
            "scopes": entry.scopes,
            "record_count": entry.record_count,
            "outcome": entry.outcome,
        }


def export_chunks(*, person: User) -> Iterator[str]:
    """Yield the export JSON piece by piece: one category, grant list or log at a time."""
    dumps = json.dumps
    yield "{" + f'"format": {dumps(FORMAT)}, "exported_at": {dumps(rfc3339(timezone.now()))}, '
    yield '"person": ' + dumps(
        {"email": person.email, "name": person.display_name, "joined_at": rfc3339(person.date_joined)}
    )
    for name in RECORD_CATEGORIES:
        yield f', "{name}": ' + dumps(records_for_owner(owner=person, category=name), ensure_ascii=False)
    yield ', "preferences": ' + dumps(preferences_get(owner=person), ensure_ascii=False)
    grants = list(grants_for_person(person=person))
    yield ', "grants": ' + dumps([_grant(g) for g in grants])
    yield ', "receipts": ' + dumps(_receipts(grants), ensure_ascii=False)
    yield ', "activity": ['
    for index, line in enumerate(_activity(person)):
        yield ("," if index else "") + dumps(line)
    yield '], "alerts": ' + dumps(alerts_export(person=person), ensure_ascii=False)
    yield ', "reminders": ' + dumps(reminders_export(person=person))
    yield ', "terms": ' + dumps(_terms(person, grants), ensure_ascii=False)
    yield ', "agreements": ' + dumps(_agreements(grants), ensure_ascii=False)
    yield ', "messages": ' + dumps(messages_export(person=person), ensure_ascii=False)
    yield ', "reports": ' + dumps(reports_export(person=person), ensure_ascii=False)
    yield ', "intents": ' + dumps(intents_export(person=person), ensure_ascii=False) + "}"


def _csv(rows: Iterable[dict[str, Any]], columns: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        cells = [row.get(c) for c in columns]
        writer.writerow([csv_cell(", ".join(v) if isinstance(v, list) else v) for v in cells])
    return out.getvalue()


README = """What this ZIP holds (vrm, exported {at})

purchases.csv, closet.csv, appliances.csv, prescriptions.csv
    Your records, one kind per file. Each can be imported back (Import, on the site).
preferences.json
    Your preferences.
grants.csv
    Every grant you gave: the vendor, the app, what it could see and why, from when to when.
receipts/
    The signed receipt of every grant event: <grant>-<number>.json is the receipt, and
    <grant>-<number>.jws the same receipt as the store signed it (a compact JWS, Ed25519).
activity.csv
    Every entry of the tamper-evident log about you, newest first, in words.
alerts.json
    The recall alerts you received.
reminders.json
    The reminders vrm made for you (what each is about is the record or grant it names).
terms.json
    Your terms (MyTerms): the standard agreements you proffer to vendors, most preferred
    first, the one you chose for particular vendors, and whether you let a vendor that
    accepts none of them have a grant.
agreements/
    The signed record of every MyTerms agreement a grant was made under: <grant>-<record>.json
    (the record, its signature and when the vendor acknowledged it; "current" says whether
    the grant still stands under it) and <grant>-<record>.jws, the record as signed.
messages.json
    The messages vendors sent you, with your answers and reports.
reports.json
    The reports you made about vendors, with your words and whether you shared them.
intents.json
    The intents you published, each with the offers vendors made and what became of them.

The same, in one file: Download as JSON (vrm-export/1).
"""


def export_zip(*, person: User) -> bytes:
    """Return a ZIP of everything: a CSV per category (each imports back), the preferences,
    grants, signed receipts, the activity log, alerts, reminders, terms and agreements, with a README that
    says what is where."""
    buffer = io.BytesIO()
    grants = list(grants_for_person(person=person))
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README.format(at=rfc3339(timezone.now())))
        for name in RECORD_CATEGORIES:
            archive.writestr(
                f"{name}.csv", category_csv(name, records_for_owner(owner=person, category=name))
            )
        archive.writestr("preferences.json", json.dumps(preferences_get(owner=person), indent=2))
        grant_rows = [_grant(g) for g in grants]
        for row in grant_rows:
            row["purposes"] = "; ".join(f"{k}: {v}" for k, v in row["purposes"].items())
        archive.writestr("grants.csv", _csv(grant_rows, GRANT_COLUMNS))
        for receipt in _receipts(grants):
            stem = f"receipts/{receipt['grant']}-{receipt['number']}"
            archive.writestr(f"{stem}.json", json.dumps(receipt["document"], indent=2, ensure_ascii=False))
            archive.writestr(f"{stem}.jws", receipt["jws"])
        archive.writestr("activity.csv", _csv(_activity(person), ACTIVITY_COLUMNS))
        archive.writestr(
            "alerts.json", json.dumps(alerts_export(person=person), indent=2, ensure_ascii=False)
        )
        archive.writestr("reminders.json", json.dumps(reminders_export(person=person), indent=2))
        archive.writestr("terms.json", json.dumps(_terms(person, grants), indent=2, ensure_ascii=False))
        for record in _agreements(grants):
            stem = f"agreements/{record['grant']}-{record['record']['record_id']}"
            archive.writestr(f"{stem}.json", json.dumps(record, indent=2, ensure_ascii=False))
            archive.writestr(f"{stem}.jws", record["jws"])
        archive.writestr(
            "messages.json", json.dumps(messages_export(person=person), indent=2, ensure_ascii=False)
        )
        archive.writestr(
            "reports.json", json.dumps(reports_export(person=person), indent=2, ensure_ascii=False)
        )
        archive.writestr(
            "intents.json", json.dumps(intents_export(person=person), indent=2, ensure_ascii=False)
        )
    return buffer.getvalue()


GRANT_COLUMNS = [
    "id",
    "vendor",
    "app",
    "scopes",
    "purposes",
    "status",
    "created_at",
    "ends_at",
    "ended_at",
    "history_months",
    "include_gifts",
]
ACTIVITY_COLUMNS = ["id", "at", "kind", "what", "grant", "scopes", "record_count", "outcome"]
