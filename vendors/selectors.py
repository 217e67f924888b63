"""Reads of vendor organisations and apps."""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.selectors import client_accesses_by_day
from consent.selectors import grants_live_count, grants_made_by_day
from core.ids import uuid_or_404
from vendors.models import Application, Organisation, organisation_name_key

USAGE_DAYS = 14


def applications_by_client_id(client_ids: Iterable[str]) -> dict[str, Application]:
    """Return the apps with these client ids, with their organisations, by client id."""
    rows = Application.objects.select_related("organisation").filter(client_id__in=set(client_ids))
    return {app.client_id: app for app in rows}


def organisation_for_staff(*, user: User) -> Organisation | None:
    """Return the organisation a vendor-staff account belongs to, if any."""
    return Organisation.objects.filter(members__user=user).first()


def organisation_name_problem(*, name: str, exclude_pk: uuid.UUID | None = None) -> str | None:
    """Say why an organisation cannot take this name, or None.

    Names are compared by their key (organisation_name_key): case, spacing, full-width letters and
    invisible characters do not make a name new. The database's unique constraint backs this up.
    A name needs a letter, digit, punctuation mark or symbol that shows (not only invisible or
    combining characters), and no control characters (a tab or a terminal escape is not part
    of anyone's name, and would show differently in each place the name appears).
    """
    key = organisation_name_key(name)
    if not any(unicodedata.category(c)[0] in "LNPS" for c in key):
        return "Give your organisation's name."
    taken = Organisation.objects.filter(name_key=key)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        return (
            "An organisation with this name (or one that differs only in capitals, spaces or "
            "look-alike characters) is already registered. If it is yours, ask its staff to add "
            "you; otherwise use your full legal or trading name."
        )
    if any(unicodedata.category(c) == "Cc" for c in name.strip()):  # stored stripped
        return "Use letters, digits, spaces and punctuation only: no tabs, line breaks or control characters."
    return None


def organisation_is_verified(*, organisation_id: uuid.UUID) -> bool:
    """Whether the operator has verified the organisation (read fresh: un-verifying takes effect at once)."""
    return Organisation.objects.filter(pk=organisation_id, verified=True).exists()


@dataclass(frozen=True)
class UsageDay:
    day: dt.date
    grants: int  # grants people made that day
    calls: int  # API requests recorded under a grant
    errors: int  # of those, refused (a scope the grant lacks, a record out of reach, bad input)


@dataclass(frozen=True)
class ApplicationUsage:
    application: Application
    live_grants: int
    days: list[UsageDay]  # the last USAGE_DAYS days, oldest first, today (UTC) last

    @property
    def total(self) -> UsageDay:
        return UsageDay(
            day=self.days[-1].day,
            grants=sum(d.grants for d in self.days),
            calls=sum(d.calls for d in self.days),
            errors=sum(d.errors for d in self.days),
        )

    @property
    def busiest(self) -> int:
        return max((d.calls for d in self.days), default=0)


def application_usage(*, applications: list[Application], days: int = USAGE_DAYS) -> list[ApplicationUsage]:
    """Return each app's grants, calls and errors per day (UTC) over the last `days` days.

    Grants come from the grants themselves, calls and errors from the ledger's access entries
    (audit.selectors.client_accesses_by_day says which requests those are).
    """
    today = timezone.now().astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    pks = [app.pk for app in applications]
    made = grants_made_by_day(application_ids=pks, since=since)
    live = grants_live_count(application_ids=pks)
    accesses = client_accesses_by_day(client_ids=[app.client_id for app in applications], since=since)
    usage = []
    for app in applications:
        rows = []
        for offset in range(days):
            day = first + dt.timedelta(days=offset)
            calls, errors = accesses.get((app.client_id, day), (0, 0))
            rows.append(UsageDay(day=day, grants=made.get((app.pk, day), 0), calls=calls, errors=errors))
        usage.append(ApplicationUsage(application=app, live_grants=live.get(app.pk, 0), days=rows))
    return usage


# --- vendors as auditors name them -----------------------------------------------------------
# The ledger names a vendor by the id that acted: an app's client id (actor type "client") or
# its organisation's id ("vendor_org"). Auditors pick and read vendors by name instead.


@dataclass(frozen=True)
class VendorName:
    organisation: str
    app: str = ""  # empty when the id is the organisation's own


@dataclass(frozen=True)
class VendorChoice:
    organisation_id: str
    organisation: str
    apps: list[tuple[str, str]]  # (client id, app name), by name


def vendor_directory() -> list[VendorChoice]:
    """Return every organisation with its apps' client ids and names, by name."""
    apps: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for org_id, client_id, name in Application.objects.order_by("name", "client_id").values_list(
        "organisation_id", "client_id", "name"
    ):
        apps.setdefault(org_id, []).append((client_id, name))
    return [
        VendorChoice(organisation_id=str(pk), organisation=name, apps=apps.get(pk, []))
        for pk, name in Organisation.objects.order_by("name", "pk").values_list("pk", "name")
    ]


def vendor_actor_ids(*, vendor_id: str) -> list[str]:
    """Return the ledger actor ids a vendor filter stands for.

    An organisation's id stands for itself and every client id of its apps; any other id (a
    client id, or an id the ledger holds for a vendor since deleted) stands for itself.
    """
    try:
        org_id = uuid.UUID(vendor_id)
    except ValueError:
        return [vendor_id]
    clients = Application.objects.filter(organisation_id=org_id).order_by("client_id")
    return [vendor_id, *clients.values_list("client_id", flat=True)]


def vendor_names(*, actor_ids: Iterable[str]) -> dict[str, VendorName]:
    """Return the names behind ledger actor ids (client ids and organisation ids) that still exist."""
    ids = set(actor_ids)
    names = {
        client_id: VendorName(organisation=org, app=app)
        for client_id, app, org in Application.objects.filter(client_id__in=ids).values_list(
            "client_id", "name", "organisation__name"
        )
    }
    org_ids = []
    for actor_id in ids - set(names):
        try:
            org_ids.append(uuid.UUID(actor_id))
        except ValueError:
            continue
    for pk, name in Organisation.objects.filter(pk__in=org_ids).values_list("pk", "name"):
        names[str(pk)] = VendorName(organisation=name)
    return names


def terms_accepted_by() -> dict[str, list[str]]:
    """Map each organisation that accepts any MyTerms agreement to the agreement ids, for the roster JSON."""
    return {
        str(pk): accepted
        for pk, accepted in Organisation.objects.order_by("pk").values_list("pk", "accepted_terms")
        if accepted
    }


def organisations_accepting(*, agreement_id: str) -> list[tuple[str, bool]]:
    """The (name, verified) of every organisation that accepts this agreement, by name.

    Read in Python: JSON containment is not portable across the databases vrm runs on, and the
    organisations are few next to the people.
    """
    rows = Organisation.objects.order_by("name").values_list("name", "verified", "accepted_terms")
    return [(name, verified) for name, verified, accepted in rows if agreement_id in (accepted or [])]


def organisation_get(*, organisation_id: str) -> Organisation:
    """The organisation with this id, or Http404 (a malformed id included)."""
    key = uuid_or_404(organisation_id, message="No such vendor.")
    organisation = Organisation.objects.filter(pk=key).first()
    if organisation is None:
        raise Http404("No such vendor.")
    return organisation
