"""Reads of vendor organisations and apps."""

from __future__ import annotations

from typing import Any

from django.http import Http404

from vendors.models import Application, Organisation


def application_by_client_id(client_id: str) -> Application:
    app = Application.objects.select_related("organisation").filter(client_id=client_id).first()
    if app is None:
        raise Http404("No such application.")
    return app


def organisation_for_staff(*, user: Any) -> Organisation | None:
    """Return the organisation a vendor-staff account belongs to, if any."""
    return Organisation.objects.filter(members__user=user).first()
