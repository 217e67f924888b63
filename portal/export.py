"""The complete export (`vrm-export/1`, INTERFACES.md §6), streamed, and the CSV ZIP."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from accounts.models import User
from consent.models import Grant
from consent.selectors import grants_for_person
from core.formats import rfc3339
from personal_data.categories import RECORD_CATEGORIES
from personal_data.selectors import preferences_get, records_for_owner
from personal_data.transfer import FORMAT, category_csv
from portal.activity import activity_for_person, entry_sentence, names_for_person
from vendors.alerts import alerts_export


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
    receipts = [
        {"grant": str(g.pk), "number": r.number, "event": r.event, "jws": r.jws, "document": r.document}
        for g in grants
        for r in g.receipts.order_by("number")
    ]
    yield ', "receipts": ' + dumps(receipts, ensure_ascii=False)
    yield ', "activity": ['
    names = names_for_person(person=person)
    for index, entry in enumerate(activity_for_person(person=person).iterator(chunk_size=2000)):
        yield ("," if index else "") + dumps(
            {
                "id": entry.pk,
                "at": rfc3339(entry.created_at),
                "kind": entry.kind,
                "what": entry_sentence(entry, names),
                "grant": entry.grant_id or None,
                "scopes": entry.scopes,
                "record_count": entry.record_count,
                "outcome": entry.outcome,
            }
        )
    yield '], "alerts": ' + dumps(alerts_export(person=person), ensure_ascii=False) + "}"


def export_zip(*, person: User) -> bytes:
    """Return a ZIP with one CSV per category (the import accepts each back) and the preferences."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in RECORD_CATEGORIES:
            archive.writestr(
                f"{name}.csv", category_csv(name, records_for_owner(owner=person, category=name))
            )
        archive.writestr("preferences.json", json.dumps(preferences_get(owner=person), indent=2))
    return buffer.getvalue()
