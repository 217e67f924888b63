"""The demo activity of `seed_demo`: alex's grant to the demo shop, its accesses, a recall alert.

So the first sign-in shows a dashboard with a vendor that can see something, the accesses it
made and an alert, and the vendor portal shows usage figures. Everything goes through the
services the site itself uses (consent, the vendor API's access records, recall matching), so
the ledger and the receipts are what they would be after real use. Made once: a live grant of
alex's to the demo app, or a demo recall of the shop, means it is already there.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts.models import User
from consent.selectors import grants_live_for_person
from consent.services import access_denied_record, access_record, grant_authorize
from personal_data.selectors import records_for_owner
from vendors.models import Application, Recall
from vendors.recalls import recall_match, recall_publish

DEMO_GRANT_SCOPES = ["profile:read", "purchases:read", "purchases:check", "preferences:read"]
DEMO_RECALL_TITLE = "Crunchy Peanut Butter 340 g: possible contamination"


def _shared_purchases(person: User) -> list[dict[str, Any]]:
    purchases = records_for_owner(owner=person, category="purchases")
    return [p for p in purchases if p["shared"] and not p["is_gift"]]


def _demo_grant(*, person: User, app: Application) -> bool:
    """Alex's grant to the demo app, and the accesses the app made under it; False if it exists."""
    if any(g.application_id == app.pk for g in grants_live_for_person(person=person)):
        return False
    grant = grant_authorize(person=person, application=app, scopes=DEMO_GRANT_SCOPES, duration_days=30)
    purchases = _shared_purchases(person)

    def read(kind: str, scope: str, **counts: Any) -> None:
        access_record(grant=grant, client_id=app.client_id, kind=kind, scopes=[scope], **counts)

    read("access.read", "profile:read", record_count=1)
    read("access.read", "purchases:read", record_ids=[p["id"] for p in purchases[:10]])
    read("access.check", "purchases:check", record_count=1)
    read("access.read", "preferences:read", record_count=1)
    # A request the grant does not allow: the vendor's error figures and the person's activity show it.
    access_denied_record(
        grant=grant, client_id=app.client_id, scopes=["prescriptions:read"], reason="insufficient-scope"
    )
    return True


def _demo_recall(*, person: User, recall_client: Application) -> bool:
    """A recall of something alex bought, matched so alex has an alert; False if it exists."""
    if Recall.objects.filter(organisation_id=recall_client.organisation_id, title=DEMO_RECALL_TITLE).exists():
        return False
    gtin = next(
        (p["gtin"] for p in _shared_purchases(person) if p["gtin"] and "Peanut" in p["product_name"]),
        None,
    ) or next(p["gtin"] for p in _shared_purchases(person) if p["gtin"])
    recall = recall_publish(
        application=recall_client,
        data={
            "title": DEMO_RECALL_TITLE,
            "message": "Some jars may contain traces of glass. Do not eat it; bring it back for a refund.",
            "severity": "danger",
            "gtins": [gtin],
            "remedy_url": "https://shop.example/recall",
        },
    )
    recall_match(recall_id=recall.pk)
    return True


@transaction.atomic
def demo_activity_seed(*, person: User, app: Application, recall_client: Application) -> dict[str, bool]:
    """Give the demo person a grant to the demo app with some accesses, and a recall alert (once)."""
    return {
        "grant": _demo_grant(person=person, app=app),
        "recall": _demo_recall(person=person, recall_client=recall_client),
    }
