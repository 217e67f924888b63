"""Reads of grants and receipts for the person's pages and the API."""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from consent.models import Grant, Receipt


def grants_for_person(*, person: Any) -> QuerySet[Grant]:
    """Return the person's grants, active ones first, newest first within each group."""
    return (
        Grant.objects.filter(person=person)
        .select_related("application__organisation")
        .order_by("status", "-created_at")
    )


def grant_get_for_person(*, person: Any, grant_id: Any) -> Grant:
    """Return one of the person's grants or raise Http404 (also for other people's grants)."""
    try:
        pk = uuid.UUID(str(grant_id))
    except ValueError:
        raise Http404("No such grant.") from None
    grant = grants_for_person(person=person).filter(pk=pk).first()
    if grant is None:
        raise Http404("No such grant.")
    return grant


def receipt_get(*, grant: Grant, number: int) -> Receipt:
    receipt = grant.receipts.filter(number=number).first()
    if receipt is None:
        raise Http404("No such receipt.")
    return receipt


def grants_live_for_person(*, person: Any) -> list[Grant]:
    return [g for g in grants_for_person(person=person).filter(status=Grant.Status.ACTIVE) if g.is_live()]
