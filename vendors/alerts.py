"""The person's recall alerts: their inbox, and the choice to let the publisher contact them."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from consent.models import Grant
from consent.services import grant_for_records
from core.formats import rfc3339
from personal_data.selectors import record_get_for_owner
from vendors.models import Alert, Application, Organisation


def alerts_for_person(*, person: User) -> QuerySet[Alert]:
    return Alert.objects.filter(person=person).select_related("recall__organisation")


def alerts_unread_count(*, person: User) -> int:
    return alerts_for_person(person=person).filter(read_at__isnull=True).count()


def alert_records(*, alert: Alert) -> list[tuple[str, dict[str, Any]]]:
    """The person's own matched records, decrypted for them (deleted ones are skipped)."""
    found = []
    for category, ids in alert.matched.items():
        for record_id in ids:
            try:
                found.append(
                    (
                        category,
                        record_get_for_owner(owner=alert.person, category=category, record_id=record_id),
                    )
                )
            except Http404:
                continue
    return found


def alert_get_for_person(*, person: User, alert_id: int | str) -> Alert:
    # ASCII digits only: str.isdigit() also says yes to "²" and "٣", which int() refuses or
    # reads as another number.
    text = str(alert_id)
    alert = (
        alerts_for_person(person=person).filter(pk=text).first()
        if text.isascii() and text.isdigit()
        else None
    )
    if alert is None:
        raise Http404("No such alert.")
    return alert


def alerts_mark_read(*, person: User) -> int:
    return alerts_for_person(person=person).filter(read_at__isnull=True).update(read_at=timezone.now())


def publisher_app_for_contact(*, organisation: Organisation) -> Application | None:
    """The publishing organisation's app that can read purchases (person flow), if it has one."""
    for app in organisation.apps.filter(authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE):
        if "purchases:read" in app.scopes:
            return app
    return None


@transaction.atomic
def alert_allow_contact(*, person: User, alert: Alert) -> Grant:
    """Create a 30-day purchases:read grant to the publisher, limited to the matched purchases."""
    app = publisher_app_for_contact(organisation=alert.recall.organisation)
    if app is None:
        raise ValidationError({"__all__": ["This publisher has no app that can receive your answer."]})
    record_ids = alert.matched.get("purchases", [])
    if not record_ids:
        raise ValidationError({"__all__": ["Only matched purchases can be shared with the publisher."]})
    grant = grant_for_records(person=person, application=app, record_ids=record_ids)
    Alert.objects.filter(pk=alert.pk).update(contact_grant=grant)
    return grant


def alerts_export(*, person: User) -> list[dict[str, Any]]:
    return [
        {
            "id": a.pk,
            "recall": str(a.recall_id),
            "title": a.recall.title,
            "severity": a.recall.severity,
            "publisher": a.recall.organisation.name,
            "message": a.recall.message,
            "remedy_url": a.recall.remedy_url,
            "matched": a.matched,
            "created_at": rfc3339(a.created_at),
            "read_at": rfc3339(a.read_at) if a.read_at else None,
        }
        for a in alerts_for_person(person=person)
    ]
