"""Vendors ranked for review: people's reports next to anomalies in the vendor's own activity.

Everything here is counted in the database and read whole (one query per kind of count, never
one per vendor): reads and refusals from the ledger's per-day summaries (auditor.selectors),
messages from the ledger, live grants as counts, reports and cases from vendors.reports. Nothing
joins to a person; a report is a reason and an organisation (docs/abuse.md).
"""

from __future__ import annotations

import datetime as dt
import statistics
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.utils import timezone

from auditor import selectors
from consent.selectors import grants_live_count
from vendors.models import Application, Organisation, Report
from vendors.reports import ReportCounts, cases_open_count, report_counts_by_organisation

RECENT_DAYS = 30
HISTORY_DAYS = 90  # the days before the recent ones that a vendor's own usual is read from
# A vendor's reads per live grant are flagged at this many times its own usual, or its peers'
# median, once it read at least MIN_READS times in the recent days.
FACTOR = 2
MIN_READS = 20


@dataclass
class VendorReview:
    organisation: Organisation
    reports: ReportCounts
    live_grants: int = 0
    reads: int = 0  # in the last RECENT_DAYS days
    reads_before: int = 0  # in the HISTORY_DAYS days before those
    denied: int = 0  # in the last RECENT_DAYS days
    messages: int = 0  # sent in the last RECENT_DAYS days
    open_cases: int = 0
    peer_median: float | None = None
    flags: list[str] = field(default_factory=list)

    @property
    def per_grant(self) -> float | None:
        return self.reads / self.live_grants if self.live_grants else None

    @property
    def usual_per_day(self) -> float:
        return self.reads_before / HISTORY_DAYS

    @property
    def own_ratio(self) -> float | None:
        """Reads a day lately against reads a day in the days before: 1.0 is as usual."""
        return (self.reads / RECENT_DAYS) / self.usual_per_day if self.reads_before else None

    @property
    def reasons(self) -> list[tuple[str, int]]:
        return [(label, self.reports.by_reason.get(code, 0)) for code, label in Report.Reason.choices]


def _today() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _flags(review: VendorReview) -> list[str]:
    flags = []
    ratio = review.own_ratio
    if review.reads >= MIN_READS and ratio is not None and ratio >= FACTOR:
        flags.append(f"Reads {ratio:.1f} times as often as in the {HISTORY_DAYS} days before.")
    per_grant, median = review.per_grant, review.peer_median
    if review.reads >= MIN_READS and per_grant is not None and median and per_grant >= FACTOR * median:
        flags.append(f"Reads {per_grant / median:.1f} times the median of other vendors per live grant.")
    if review.denied > selectors.DENIED_THRESHOLD:
        flags.append(f"Was refused {review.denied:,} requests in {RECENT_DAYS} days.")
    return flags


def vendors_for_review(*, today: dt.date | None = None) -> list[VendorReview]:
    """Every organisation with its counts and flags, those most reported and flagged first.

    Raise selectors.SummariesPending while the ledger's summaries wait for a rebuild.
    """
    today = today or _today()
    recent_from = today - dt.timedelta(days=RECENT_DAYS - 1)
    history_from = recent_from - dt.timedelta(days=HISTORY_DAYS)
    organisation_of: dict[str, uuid.UUID] = {}
    apps_of: dict[uuid.UUID, list[int]] = defaultdict(list)
    for app_pk, client_id, org_id in Application.objects.values_list("pk", "client_id", "organisation_id"):
        organisation_of[client_id] = org_id
        apps_of[org_id].append(app_pk)
    organisations = list(Organisation.objects.order_by("name"))
    for org in organisations:
        organisation_of[str(org.pk)] = org.pk

    counts = report_counts_by_organisation()
    cases = cases_open_count()
    live = grants_live_count(application_ids=[app_pk for pks in apps_of.values() for app_pk in pks])
    reviews = {
        org.pk: VendorReview(
            organisation=org,
            reports=counts.get(org.pk, ReportCounts()),
            live_grants=sum(live.get(app_pk, 0) for app_pk in apps_of.get(org.pk, [])),
            open_cases=cases.get(org.pk, 0),
        )
        for org in organisations
    }
    for row in selectors.activity_by_day(date_from=history_from, date_to=today):
        review = reviews.get(organisation_of.get(row["vendor"], uuid.UUID(int=0)))
        if review is None:
            continue  # a vendor since deleted
        if row["day"] >= recent_from:
            review.reads += row["reads"]
            review.denied += row["denied"]
        else:
            review.reads_before += row["reads"]
    for sent in selectors.messages_by_vendor(date_from=recent_from, date_to=today):
        review = reviews.get(organisation_of.get(sent["vendor"], uuid.UUID(int=0)))
        if review is not None:
            review.messages += sent["sent"]

    per_grant = {pk: r.per_grant for pk, r in reviews.items() if r.per_grant is not None}
    for pk, review in reviews.items():
        peers = [value for other, value in per_grant.items() if other != pk]
        review.peer_median = statistics.median(peers) if peers else None
        review.flags = _flags(review)
    return _ranked(list(reviews.values()))


def _ranked(reviews: Sequence[VendorReview]) -> list[VendorReview]:
    return sorted(
        reviews,
        key=lambda r: (
            -r.reports.last_30,
            -len(r.flags),
            -r.reports.last_90,
            -r.open_cases,
            r.organisation.name,
        ),
    )


def vendor_review(*, organisation: Organisation, today: dt.date | None = None) -> VendorReview:
    """One organisation's counts and flags, measured against every other organisation's."""
    for review in vendors_for_review(today=today):
        if review.organisation.pk == organisation.pk:
            return review
    raise LookupError(organisation.pk)  # every organisation is reviewed
