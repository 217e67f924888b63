"""Reads of grants and receipts for the person's pages and the API."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django.db.models import Count, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone
from oauth2_provider.models import get_application_model

from accounts.models import User
from consent.models import Grant, Receipt, TermsChoice
from consent.receipts import history_from
from consent.scopes import SCOPES
from consent.types import OAuthApplication
from core.ids import uuid_or_404
from personal_data.selectors import records_shared_qs

RECORD_CATEGORY_NAMES = ("purchases", "closet", "appliances", "prescriptions")


def grants_for_person(*, person: User) -> QuerySet[Grant]:
    """Return the person's grants, active ones first, newest first within each group."""
    return (
        Grant.objects.filter(person=person)
        .select_related("application__organisation")
        .order_by("status", "-created_at")
    )


def grant_get_for_person(*, person: User, grant_id: uuid.UUID | str) -> Grant:
    """Return one of the person's grants or raise Http404 (also for other people's grants)."""
    pk = uuid_or_404(grant_id, message="No such grant.")
    grant = grants_for_person(person=person).filter(pk=pk).first()
    if grant is None:
        raise Http404("No such grant.")
    return grant


def grant_live_for(*, person: User, application: OAuthApplication) -> Grant | None:
    """Return the person's live grant to this app (at most one is active), or None."""
    grant = (
        Grant.objects.filter(person=person, application_id=application.pk, status=Grant.Status.ACTIVE)
        .order_by("-created_at")
        .first()
    )
    return grant if grant is not None and grant.is_live() else None


def receipt_get(*, grant: Grant, number: int) -> Receipt:
    receipt = grant.receipts.filter(number=number).first()
    if receipt is None:
        raise Http404("No such receipt.")
    return receipt


def grants_live_for_person(*, person: User) -> list[Grant]:
    return [g for g in grants_for_person(person=person).filter(status=Grant.Status.ACTIVE) if g.is_live()]


def grant_store_filters(grant: Grant) -> dict[str, Any]:
    """Turn a grant into the store's plain filters: history window, gifts, named records."""
    since = history_from(grant)
    return {
        "since": dt.date.fromisoformat(since) if since else None,
        "include_gifts": grant.include_gifts,
        "ids": grant.record_ids,
    }


def visibility_for_person(*, person: User) -> list[dict[str, Any]]:
    """Per live grant: which categories the vendor can see right now and how many records."""
    summary = []
    for grant in grants_live_for_person(person=person):
        filters = grant_store_filters(grant)
        categories = []
        for scope in grant.scopes:
            category = SCOPES[scope].category
            if scope.endswith(":read") and category in RECORD_CATEGORY_NAMES:
                count = records_shared_qs(owner=person, category=category, **filters).count()
                categories.append({"category": category, "count": count})
            elif scope == "preferences:read":
                categories.append({"category": "preferences", "count": None})
            elif scope == "purchases:check":
                categories.append({"category": "yes/no questions about purchases", "count": None})
        summary.append({"grant": grant, "categories": categories})
    return summary


def grants_audit_facts(*, grant_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Facts an auditor may see about grants: vendor, app, declared purposes and end. No person."""
    ids = []
    for grant_id in grant_ids:
        try:
            ids.append(uuid.UUID(str(grant_id)))
        except ValueError:
            continue
    grants = Grant.objects.filter(pk__in=ids).select_related("application__organisation")
    return {
        str(g.pk): {
            "organisation": g.application.organisation.name,
            "app": g.application.name,
            "purposes": sorted(set(g.purposes.values())),
            "ends_at": g.ends_at,
        }
        for g in grants
    }


def application_find(client_id: str) -> OAuthApplication | None:
    """Return the OAuth application with this client id, with its organisation, or None.

    Applications are django-oauth-toolkit's swappable model (vendors.Application): consent
    reaches it through DOT, never by importing the vendors app above it.
    """
    return get_application_model().objects.select_related("organisation").filter(client_id=client_id).first()


def application_pk_for(*, client_id: str) -> str | None:
    """Return the pk of the application DOT resolves `client_id` to (an exact match), or None."""
    pk = get_application_model().objects.filter(client_id=client_id).values_list("pk", flat=True).first()
    return None if pk is None else str(pk)


def application_by_client_id(client_id: str) -> OAuthApplication:
    """Return the OAuth application with this client id or raise Http404."""
    application = application_find(client_id)
    if application is None:
        raise Http404("No such application.")
    return application


def grants_made_by_day(*, application_ids: list[Any], since: dt.datetime) -> dict[tuple[Any, dt.date], int]:
    """Count the grants people made to each app per day (UTC) since a time: {(app pk, day): n}."""
    rows = (
        Grant.objects.filter(application_id__in=application_ids, created_at__gte=since)
        .annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        .values("application_id", "day")
        .annotate(made=Count("id"))
    )
    return {(row["application_id"], row["day"]): row["made"] for row in rows}


def grants_live_count(*, application_ids: list[Any]) -> dict[Any, int]:
    """Count each app's grants that are active and not past their end now: {app pk: n}."""
    rows = (
        Grant.objects.filter(
            application_id__in=application_ids, status=Grant.Status.ACTIVE, ends_at__gt=timezone.now()
        )
        .values("application_id")
        .annotate(live=Count("id"))
    )
    return {row["application_id"]: row["live"] for row in rows}


def grants_live_total(*, now: dt.datetime | None = None) -> int:
    """Count the grants that are active and inside their window now, over all people and apps."""
    now = now or timezone.now()
    return Grant.objects.filter(status=Grant.Status.ACTIVE, starts_at__lte=now, ends_at__gt=now).count()


def terms_choice_get(*, person: User) -> TermsChoice:
    """Return the person's MyTerms choice; unsaved defaults (nothing proffered) if none yet."""
    return TermsChoice.objects.filter(person=person).first() or TermsChoice(person=person)


def terms_vendor_ids(*, person: User) -> set[uuid.UUID]:
    """Return the ids of the organisations the person has ever granted anything to."""
    return set(
        Grant.objects.filter(person=person).values_list("application__organisation_id", flat=True).distinct()
    )
