"""Recalls: publish, match through the blind indexes in the background, alert the right people.

The publisher learns only a bucketed count. Matching runs as a django-tasks task (immediate in
tests, the database backend with `manage.py db_worker` in production) and is safe to re-run:
alerts are unique per person and recall, and each e-mail is sent once it is due and marked.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone
from django_tasks import task
from rest_framework import serializers

from audit.services import ledger_append
from personal_data.schemas import GtinField, StrictSchema
from personal_data.selectors import contact_preferences, records_matching_codes
from personal_data.store import validate
from vendors.models import Alert, Application, Organisation, Recall
from vendors.selectors import organisation_is_verified

log = logging.getLogger(__name__)
ALERT_BATCH = 1000


class RecallSchema(StrictSchema):
    title = serializers.CharField(max_length=200)
    message = serializers.CharField(max_length=5000)
    severity = serializers.ChoiceField(choices=Recall.Severity.values)
    gtins = serializers.ListField(child=GtinField(), min_length=1, max_length=1000)
    lots = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list, max_length=1000
    )
    purchased_from = serializers.DateField(required=False, allow_null=True, default=None)
    purchased_to = serializers.DateField(required=False, allow_null=True, default=None)
    remedy_url = serializers.URLField(max_length=500)

    def validate_gtins(self, value: list[str]) -> list[str]:
        if any(not g for g in value):
            raise serializers.ValidationError("Every GTIN must be given.")
        return sorted(set(value))

    def validate_remedy_url(self, value: str) -> str:
        if not value.lower().startswith("https://"):
            raise serializers.ValidationError("The remedy link must be an https:// address.")
        # "https://shop.example@elsewhere.example/" leads to elsewhere.example: say what you mean.
        if "@" in urlsplit(value).netloc:
            raise serializers.ValidationError("The remedy link cannot contain a user name or password.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("purchased_from"), attrs.get("purchased_to")
        if start and end and start > end:
            raise serializers.ValidationError({"purchased_to": ["The window ends before it starts."]})
        return attrs


def bucket(count: int) -> str:
    """Hide the exact number of people reached: "0-9", "10-99", "100-999", …

    The smallest bucket holds zero too, so a narrow recall never tells "nobody bought it" from
    "a few people bought it".
    """
    if count < 10:
        return "0-9"
    low = 10 ** (len(str(count)) - 1)
    return f"{low}-{low * 10 - 1}"


UNVERIFIED_DETAIL = (
    "Only organisations verified by the vrm operator can publish recalls, and yours is not verified "
    "yet. Ask the operator to verify your organisation."
)


@transaction.atomic
def recall_publish(*, application: Application, data: object) -> Recall:
    """Validate and store a recall of the application's verified organisation, queued for matching."""
    if not organisation_is_verified(organisation_id=application.organisation_id):
        raise PermissionDenied(UNVERIFIED_DETAIL)
    # The vendor portal's form publishes with no token: the standing is checked here as well.
    # Locked to the end of the publication: a suspension committing meanwhile waits, then stands.
    organisation = (
        Organisation.objects.select_for_update()
        .only("standing", "standing_reason")
        .get(pk=application.organisation_id)
    )
    if organisation.halted():
        raise PermissionDenied(organisation.halt_notice())
    doc = validate(RecallSchema, data)
    recall = Recall.objects.create(
        organisation_id=application.organisation_id,
        application=application,
        title=doc["title"],
        message=doc["message"],
        severity=doc["severity"],
        gtins=doc["gtins"],
        lots=doc["lots"],
        purchased_from=doc["purchased_from"],
        purchased_to=doc["purchased_to"],
        remedy_url=doc["remedy_url"],
    )
    ledger_append(
        kind="recall.published",
        actor_type="client",
        actor_id=application.client_id,
        record_ids=[recall.pk],
        record_count=len(recall.gtins),
        reason=f"severity {recall.severity}",
    )
    return recall


@task()
def recall_match_task(recall_id: str) -> int:
    return recall_match(recall_id=recall_id)


def recall_match(*, recall_id: uuid.UUID | str) -> int:
    """Match a recall against every store, write alerts, send e-mails; return the people reached."""
    recall = Recall.objects.get(pk=recall_id)
    Recall.objects.filter(pk=recall.pk).update(status=Recall.Status.MATCHING)
    matches: dict[Any, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for category, owner_id, record_id in records_matching_codes(
        gtins=recall.gtins,
        lots=recall.lots,
        purchased_from=recall.purchased_from,
        purchased_to=recall.purchased_to,
    ):
        matches[owner_id][category].append(record_id)
    owners = list(matches)
    for start in range(0, len(owners), ALERT_BATCH):
        # ignore_conflicts: a re-run after a crash finds the alerts already written.
        Alert.objects.bulk_create(
            [
                Alert(person_id=o, recall=recall, matched=dict(matches[o]))
                for o in owners[start : start + ALERT_BATCH]
            ],
            ignore_conflicts=True,
        )
    with transaction.atomic():
        locked = Recall.objects.select_for_update().get(pk=recall.pk)
        if locked.finished_at is None:  # one recall.matched entry per recall, even after a re-run
            ledger_append(
                kind="recall.matched",
                actor_type="system",
                actor_id="recall-matcher",
                record_ids=[recall.pk],
                record_count=len(owners),
                reason=f"bucket {bucket(len(owners))}",
            )
        locked.status, locked.matched_people, locked.finished_at = (
            Recall.Status.DONE,
            len(owners),
            timezone.now(),
        )
        locked.save(update_fields=["status", "matched_people", "finished_at"])
    alerts_notify(recall=recall)
    return len(owners)


def sender_status(organisation: Organisation) -> str:
    """Say in plain words who sent an alert and whether the operator checked who they are."""
    if organisation.verified:
        return f"Sent by {organisation.name}, an organisation verified by the vrm operator."
    return (
        f"Sent by {organisation.name}, an organisation NOT verified by the vrm operator: "
        "vrm has not checked who they are."
    )


def _wants_email(prefs: dict[str, Any], severity: str) -> bool:
    if severity == Recall.Severity.DANGER:
        return True  # safety first: danger goes out whatever the contact settings say
    contact = prefs.get("contact") or {}
    return bool(contact.get("email", True)) and not contact.get("safety_alerts_only", False)


def alerts_notify(*, recall: Recall) -> int:
    """E-mail every matched person who wants it and has not been told yet; return how many.

    Each alert is marked as soon as its e-mail is sent, so a crash re-sends at most one; one
    mail connection serves the whole run.
    """
    sent = 0
    pending = Alert.objects.filter(recall=recall, emailed_at__isnull=True).select_related("person")
    subject = f"[{recall.get_severity_display()}] Recall: {recall.title}"
    body = (
        f"{recall.organisation.name} has recalled a product that your vrm records say you bought.\n"
        f"{sender_status(recall.organisation)}\n\n"
        f"{recall.message}\n\nWhat to do: {recall.remedy_url}\n"
        f"(this link leads to {recall.remedy_host or 'an address vrm cannot read'})\n\n"
        f"See which of your records matched: {settings.VRM_ISSUER}/alerts/\n"
    )
    with get_connection() as connection:
        for alert in pending.iterator(chunk_size=500):
            # Danger goes out whatever the contact settings say: no need to read them.
            if recall.severity != Recall.Severity.DANGER and not _wants_email(
                {"contact": contact_preferences(owner=alert.person)}, recall.severity
            ):
                continue
            EmailMessage(subject, body, to=[alert.person.email], connection=connection).send()
            Alert.objects.filter(pk=alert.pk).update(emailed_at=timezone.now())
            sent += 1
    return sent


def recall_publish_and_match(*, application: Application, data: object) -> Recall:
    """Publish a recall (committed first, so a worker can see it), then queue its matching.

    If queueing fails the recall stays `queued`; `recall_match` can be run for it again.
    """
    recall = recall_publish(application=application, data=data)
    recall_match_task.enqueue(str(recall.pk))
    return recall
