"""Signed pushes of a newly published intent to the webhooks of the organisations it matches.

Each push is a `WebhookDelivery` row: a POST of the intent as GET /api/v1/intents/{id} shows it,
with `Vrm-Timestamp` (Unix seconds) and `Vrm-Signature` (hex HMAC-SHA256 under the webhook's
secret of `timestamp + "." + body`). A failed attempt (network error, timeout, any non-2xx
answer) is retried after 1 min, 5 min, 30 min, 2 h and 6 h, then marked failed. With a task
backend that can defer (the database backend, `manage.py db_worker`) each retry is a deferred
task; with the immediate backend, `manage.py expire_intents` (run from cron) sends the retries
that are due. Redirects are not followed, and only https URLs are called (loopback http while
debugging). Delivery is at least once: receivers dedupe on `Vrm-Delivery`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import socket
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import orjson
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from core.crypto import keyed_hash
from vendors.intents import SCOPE, intent_json, organisations_matching, webhook_url_problem
from vendors.models import Intent, IntentWebhook, WebhookDelivery

log = logging.getLogger(__name__)
BACKOFF_SECONDS = (60, 300, 1800, 7200, 21600)
MAX_ATTEMPTS = len(BACKOFF_SECONDS) + 1
TIMEOUT_SECONDS = 5
EVENT = "intent.published"

Sender = Callable[[str, bytes, dict[str, str]], "int | None"]


def webhook_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of `timestamp + "." + body` under the webhook's secret."""
    return keyed_hash(secret.encode(), timestamp.encode("ascii") + b"." + body).hex()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is an answer (3xx, retried), never a second request elsewhere


_OPENER = urllib.request.build_opener(_NoRedirects)


def http_post(url: str, body: bytes, headers: dict[str, str]) -> int | None:
    """POST the body; return the HTTP status, or None when no answer came."""
    if webhook_url_problem(url):  # checked when set; checked again in case DEBUG changed since
        return None
    if _resolves_to_private(url):
        return None
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 (https or debug loopback only)
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, ValueError):
        return None


def _resolves_to_private(url: str) -> bool:
    """Whether the URL's host resolves to any address that is not public (a name pointed at the
    server's own network). Debug loopback http is let through, as webhook_url_problem allows it.

    urllib resolves the name again when it connects; a DNS answer that changes in between is not
    caught here (docs/api.md says so).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "http":  # only debug loopback gets this far (webhook_url_problem)
        return False
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError:
        return False  # no address: the POST fails by itself and is retried
    return any(not ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_global for info in infos)


def webhooks_queue(*, intent_id: uuid.UUID) -> int:
    """Create a delivery to each webhook of an organisation the intent matches, and queue them."""
    intent = Intent.objects.filter(pk=intent_id, status=Intent.Status.OPEN).first()
    if intent is None:
        return 0
    hooks = IntentWebhook.objects.filter(
        application__organisation_id__in=organisations_matching(intent=intent)
    ).select_related("application")
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(webhook=hook, intent=intent) for hook in hooks if SCOPE in hook.application.scopes]
    )
    for delivery in deliveries:
        webhook_deliver_task.enqueue(delivery.pk)
    return len(deliveries)


@task()
def webhook_deliver_task(delivery_id: int) -> str:
    return webhook_deliver(delivery_id=delivery_id)


def webhook_deliver(*, delivery_id: int, send: Sender = http_post) -> str:
    """Make one attempt of a pending delivery that is due; return its status afterwards.

    The row stays locked during the attempt, so two workers never send it at once.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("webhook__application__organisation", "intent")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return "skipped"
        intent, hook = delivery.intent, delivery.webhook
        organisation = hook.application.organisation
        now = timezone.now()
        if (
            intent.status != Intent.Status.OPEN
            or intent.ends_at <= now
            or not organisation.verified
            or organisation.halted()
        ):
            # Withdrawn or ended since: never push an intent the API would no longer show.
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.save(update_fields=["status"])
            return delivery.status
        body = orjson.dumps(intent_json(intent))
        timestamp = str(int(now.timestamp()))
        status = send(
            hook.url,
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": "vrm-webhooks/1",
                "Vrm-Event": EVENT,
                "Vrm-Delivery": str(delivery.pk),
                "Vrm-Timestamp": timestamp,
                "Vrm-Signature": webhook_signature(secret=hook.secret, timestamp=timestamp, body=body),
            },
        )
        delivery.attempts += 1
        delivery.last_status = status
        if status is not None and 200 <= status < 300:
            delivery.status, delivery.delivered_at = WebhookDelivery.Status.DELIVERED, timezone.now()
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.status = WebhookDelivery.Status.FAILED
        else:
            delivery.next_attempt_at = now + dt.timedelta(seconds=BACKOFF_SECONDS[delivery.attempts - 1])
        delivery.save()
        log.info("webhook delivery %s attempt %s: %s", delivery.pk, delivery.attempts, status)
    if (
        delivery.status == WebhookDelivery.Status.PENDING
        and webhook_deliver_task.get_backend().supports_defer
    ):
        webhook_deliver_task.using(run_after=delivery.next_attempt_at).enqueue(delivery.pk)
    return delivery.status


def webhooks_retry_due(*, send: Sender = http_post) -> int:
    """Attempt every pending delivery whose retry is due (the immediate backend's retries)."""
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, attempts__gt=0, next_attempt_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    return sum(1 for pk in list(due) if webhook_deliver(delivery_id=pk, send=send) != "skipped")
