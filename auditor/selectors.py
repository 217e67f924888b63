"""Reads for the auditor portal, built from the ledger alone.

The ledger is the auditors' source of truth: grants are reconstructed from their grant.* entries
and activity from access.* entries. Nothing here joins to users or records, so an auditor sees
pseudonyms, ids, scopes and counts, never a name, an e-mail or a record's content.

Time ranges are whole days in the current time zone: `date_from` and `date_to` are inclusive.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from audit import ledger, summaries
from audit.models import LedgerEntry, LedgerGrant, LedgerLateRead, LedgerLeaf, LedgerVendorDay
from audit.selectors import checkpoint_latest

Kind = LedgerEntry.Kind
ACCESS_KINDS = (Kind.ACCESS_READ, Kind.ACCESS_WRITE, Kind.ACCESS_CHECK, Kind.ACCESS_DENIED)
VENDOR_ACTOR_TYPES = (LedgerEntry.ActorType.CLIENT, LedgerEntry.ActorType.VENDOR_ORG)
DENIED = LedgerEntry.Outcome.DENIED
ALLOWED = LedgerEntry.Outcome.ALLOWED

# Ledger entries read as rows of named columns (`.values(...)`), the shape every page and export takes.
EntryRows = QuerySet[LedgerEntry, Mapping[str, Any]]
_Rows = TypeVar("_Rows", bound=QuerySet[Any, object])


class GrantStatus:
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CHOICES = ((ACTIVE, "Active"), (REVOKED, "Revoked"), (EXPIRED, "Expired"))


DENIED_THRESHOLD = 10
SPIKE_FACTOR = 3
SPIKE_MIN_READS = 20
SPIKE_WINDOW_DAYS = 14
# The days the activity page shows when the auditor gives no start (activity_window).
ACTIVITY_DAYS = 30


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())


def _within(queryset: _Rows, field: str, date_from: dt.date | None, date_to: dt.date | None) -> _Rows:
    if date_from is not None:
        queryset = queryset.filter(**{f"{field}__gte": _day_start(date_from)})
    if date_to is not None:
        queryset = queryset.filter(**{f"{field}__lt": _day_start(date_to + dt.timedelta(days=1))})
    return queryset


# --- ledger status ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerStatus:
    total_entries: int
    sealed_size: int
    checkpoint_at: dt.datetime | None
    unsealed_entries: int
    oldest_unsealed_at: dt.datetime | None


def ledger_status() -> LedgerStatus:
    """Return how many entries the ledger holds, how many are sealed, and the newest checkpoint.

    The unsealed entries are those after the newest sealed one: an index range, where counting
    every entry (or an anti-join of entries and leaves) reads all of them. An entry whose
    transaction committed after a seal that sealed later ids is counted once sealed; the next
    seal takes it, and verifying reads every entry.
    """
    checkpoint = checkpoint_latest()
    # Leaf indexes run 0..n-1 without a gap (the sealer refuses one): the leaves are max + 1.
    sealed = LedgerLeaf.objects.aggregate(top=Max("leaf_index"), last=Max("entry_id"))
    leaves = 0 if sealed["top"] is None else sealed["top"] + 1
    after = LedgerEntry.objects.filter(id__gt=sealed["last"] or 0)
    unsealed = after.count()
    return LedgerStatus(
        total_entries=leaves + unsealed,
        sealed_size=checkpoint.tree_size if checkpoint else 0,
        checkpoint_at=checkpoint.created_at if checkpoint else None,
        unsealed_entries=unsealed,
        oldest_unsealed_at=after.order_by("id").values_list("created_at", flat=True).first(),
    )


# --- keyset pages ----------------------------------------------------------------------------


def _older_than(rows: _Rows, position: tuple[dt.datetime, int] | None, *, pk: str = "id") -> _Rows:
    """Keep the rows after `position` (created_at, pk) in newest-first order."""
    if position is None:
        return rows
    at, key = position
    # `created_at <= at` lets the index start at the position; the exclusion settles ties.
    return rows.filter(created_at__lte=at).exclude(**{"created_at": at, f"{pk}__gte": key})


def entry_position(*, entry_id: int) -> tuple[dt.datetime, int] | None:
    """Return the keyset position (created_at, id) of an entry, or None if there is none."""
    row = LedgerEntry.objects.filter(id=entry_id).values_list("created_at", "id").first()
    return None if row is None else (row[0], row[1])


def grant_position(*, grant_id: str) -> tuple[dt.datetime, int] | None:
    """Return the keyset position of a grant in grant_list: that of its grant.created entry."""
    row = LedgerGrant.objects.filter(grant_id=grant_id).values_list("created_at", "created_entry").first()
    return None if row is None else (row[0], row[1])


class SummariesPending(Exception):
    """The ledger's summaries wait to be rebuilt by the sealer; pages that count cannot answer yet."""


def _summaries_ready() -> None:
    if summaries.rebuild_pending():
        raise SummariesPending(
            "The ledger's summaries are being rebuilt from its entries; they are ready after the next "
            "seal (seal_ledger)."
        )


# --- grants ----------------------------------------------------------------------------------


_STATUS = Case(
    When(end_kind=Kind.GRANT_REVOKED, then=Value(GrantStatus.REVOKED)),
    When(end_kind=Kind.GRANT_EXPIRED, then=Value(GrantStatus.EXPIRED)),
    default=Value(GrantStatus.ACTIVE),
)
_END_OF = {
    GrantStatus.ACTIVE: "",
    GrantStatus.REVOKED: Kind.GRANT_REVOKED,
    GrantStatus.EXPIRED: Kind.GRANT_EXPIRED,
}


def _grants(
    *, vendors: Sequence[str], date_from: dt.date | None, date_to: dt.date | None
) -> QuerySet[LedgerGrant]:
    _summaries_ready()
    grants = LedgerGrant.objects.all()
    if vendors:
        grants = grants.filter(vendor__in=vendors)
    return _within(grants, "created_at", date_from, date_to)


def grant_list(
    *,
    vendors: Sequence[str] = (),
    status: str = "",
    scope: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    before: tuple[dt.datetime, int] | None = None,
) -> QuerySet[LedgerGrant, Mapping[str, Any]]:
    """Return one row per grant, as the ledger tells it (audit.summaries), newest grant first.

    Each row holds grant_id, vendor, subject, scopes (as last created or amended), status,
    first_at (created) and last_at (last grant.* change). The time range selects grants by when
    they were created; the scope filter looks at the current scopes. `before` (grant_position of a
    listed grant) starts after that grant, for the next page. Raise SummariesPending while the
    summaries wait for a rebuild.
    """
    grants = _grants(vendors=vendors, date_from=date_from, date_to=date_to)
    if status:
        grants = grants.filter(end_kind=_END_OF[status])
    if scope:
        # Scopes are stored as a JSON list of plain codes; matching the quoted code in its text
        # works the same on PostgreSQL and SQLite (SQLite has no JSON containment lookup).
        grants = grants.annotate(scopes_text=Cast("scopes", TextField())).filter(
            scopes_text__contains=f'"{scope}"'
        )
    return (
        _older_than(grants, before, pk="created_entry")
        .order_by("-created_at", "-created_entry")
        .values(
            "grant_id", "vendor", "subject", "scopes", "last_at", status=_STATUS, first_at=F("created_at")
        )
    )


# Every column of an entry, and where it was sealed.
ENTRY_FIELDS = (*ledger.ENTRY_COLUMNS, "leaf_index")


def grant_changes(*, grant_id: str) -> EntryRows:
    """Return every entry of a grant except its accesses (grant and token events), oldest first."""
    return (
        LedgerEntry.objects.filter(grant_id=grant_id)
        .exclude(kind__in=ACCESS_KINDS)
        .annotate(leaf_index=F("leaf__leaf_index"))
        .order_by("created_at", "id")
        .values(*ENTRY_FIELDS)
    )


def grant_accesses(*, grant_id: str, before: tuple[dt.datetime, int] | None = None) -> EntryRows:
    """Return the access.* entries recorded under a grant, newest first, after `before` if given.

    A grant can hold millions of accesses: pages read on from a keyset position (an
    entry_position), along the grant's index, and never count them all.
    """
    accesses = LedgerEntry.objects.filter(grant_id=grant_id, kind__in=ACCESS_KINDS)
    return (
        _older_than(accesses, before)
        .annotate(leaf_index=F("leaf__leaf_index"))
        .order_by("-created_at", "-id")
        .values(*ENTRY_FIELDS)
    )


def grant_known(*, grant_id: str) -> bool:
    """Tell whether the ledger holds any entry for this grant id."""
    return LedgerEntry.objects.filter(grant_id=grant_id).exists()


# --- the raw ledger --------------------------------------------------------------------------


def entry_list(
    *,
    kind: str = "",
    vendors: Sequence[str] = (),
    subject: str = "",
    grant_id: str = "",
    outcome: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    before: tuple[dt.datetime, int] | None = None,
    with_leaf: bool = True,
) -> EntryRows:
    """Return ledger entries matching every filter given, newest first, with their leaf index.

    `before` (an entry_position) starts after that entry, for the next page. Without
    `with_leaf` the rows have no leaf_index (exports add it a chunk at a time, leaf_indexes).
    """
    entries = LedgerEntry.objects.all()
    if kind:
        entries = entries.filter(kind=kind)
    if vendors:
        entries = entries.filter(actor_id__in=vendors, actor_type__in=VENDOR_ACTOR_TYPES)
    if subject:
        entries = entries.filter(subject=subject)
    if grant_id:
        entries = entries.filter(grant_id=grant_id)
    if outcome:
        entries = entries.filter(outcome=outcome)
    entries = _older_than(_within(entries, "created_at", date_from, date_to), before).order_by(
        "-created_at", "-id"
    )
    if not with_leaf:
        return entries.values(*ledger.ENTRY_COLUMNS)
    return entries.annotate(leaf_index=F("leaf__leaf_index")).values(*ENTRY_FIELDS)


def leaf_indexes(*, entry_ids: Sequence[int]) -> dict[int, int]:
    """Return the leaf index of each sealed entry among these ids."""
    return dict(LedgerLeaf.objects.filter(entry_id__in=entry_ids).values_list("entry_id", "leaf_index"))


# --- vendor activity -------------------------------------------------------------------------

_READ = Q(kind=Kind.ACCESS_READ, outcome=ALLOWED)
_DENIED = Q(kind=Kind.ACCESS_DENIED) | Q(outcome=DENIED)


def _vendor_entries(*, vendors: Sequence[str]) -> QuerySet[LedgerEntry]:
    """Entries a vendor made; only those of these actor ids, when given."""
    entries = LedgerEntry.objects.filter(actor_type__in=VENDOR_ACTOR_TYPES)
    return entries.filter(actor_id__in=vendors) if vendors else entries


def activity_window(
    *, date_from: dt.date | None, date_to: dt.date | None
) -> tuple[dt.date | None, dt.date | None]:
    """Return the time range the activity page and export read: an open start is bounded.

    Without a start, the range is the ACTIVITY_DAYS days up to `date_to`, or up to the day of
    the newest entry: a year of activity is millions of entries to count on every view
    (docs/performance.md, "Auditor pages at 10M entries"). A start the auditor gave is kept.
    """
    if date_from is not None:
        return date_from, date_to
    end = date_to
    if end is None:
        newest = LedgerEntry.objects.aggregate(newest=Max("created_at"))["newest"]
        if newest is None:
            return None, None
        end = timezone.localdate(newest)
    return end - dt.timedelta(days=ACTIVITY_DAYS - 1), date_to


class DayCounts(TypedDict):
    vendor: str
    day: dt.date
    reads: int
    writes: int
    checks: int
    records: int
    denied: int


DAY_COUNTS = ("reads", "writes", "checks", "records", "denied")
_UTC = dt.UTC


def _unsealed(entries: QuerySet[LedgerEntry]) -> QuerySet[LedgerEntry]:
    """Keep the entries after the newest sealed one: those the summaries' counts do not hold yet.

    Part of the same statement as the counts (a union), so a seal that commits meanwhile cannot
    make an entry counted twice or not at all. An entry that commits after a seal took later ids
    is left out until the next seal counts it (docs/ledger.md, "Summaries").
    """
    newest_sealed = LedgerLeaf.objects.order_by("-entry_id").values("entry_id")[:1]
    # The value read now lets the planner walk the id index from it (a subquery's value it
    # cannot know, and would scan the date range instead); the subquery, in the statement's own
    # snapshot, then drops whatever a seal committed in between.
    read_now = newest_sealed.values_list("entry_id", flat=True).first() or 0
    return entries.filter(id__gt=read_now).filter(id__gt=Coalesce(Subquery(newest_sealed), Value(0)))


def _utc_within(rows: _Rows, field: str, date_from: dt.date | None, date_to: dt.date | None) -> _Rows:
    if date_from is not None:
        rows = rows.filter(**{f"{field}__gte": dt.datetime.combine(date_from, dt.time.min, tzinfo=_UTC)})
    if date_to is not None:
        end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=_UTC)
        rows = rows.filter(**{f"{field}__lt": end})
    return rows


def _days_within(rows: _Rows, date_from: dt.date | None, date_to: dt.date | None) -> _Rows:
    if date_from is not None:
        rows = rows.filter(day__gte=date_from)
    if date_to is not None:
        rows = rows.filter(day__lte=date_to)
    return rows


def activity_by_day(
    *, vendors: Sequence[str] = (), date_from: dt.date | None = None, date_to: dt.date | None = None
) -> list[DayCounts]:
    """Return per vendor and UTC day: reads, writes, checks, records disclosed and denied requests.

    Newest day first, then by vendor. A read that was refused counts as denied, not as a read.
    Sealed entries are counted by the sealer (audit.summaries.LedgerVendorDay); the few not sealed
    yet are counted here, in the same statement. Raise SummariesPending while the counts wait
    for a rebuild.
    """
    _summaries_ready()
    sealed = _days_within(LedgerVendorDay.objects.all(), date_from, date_to)
    if vendors:
        sealed = sealed.filter(vendor__in=vendors)
    tail = _unsealed(_vendor_entries(vendors=vendors)).filter(Q(kind__in=ACCESS_KINDS) | Q(outcome=DENIED))
    tail_counts = (
        _utc_within(tail, "created_at", date_from, date_to)
        .values(by=F("actor_id"), on=TruncDate("created_at", tzinfo=_UTC))
        .annotate(
            n_reads=Count("id", filter=_READ),
            n_writes=Count("id", filter=Q(kind=Kind.ACCESS_WRITE, outcome=ALLOWED)),
            n_checks=Count("id", filter=Q(kind=Kind.ACCESS_CHECK, outcome=ALLOWED)),
            n_records=Coalesce(Sum("record_count", filter=_READ), 0, output_field=IntegerField()),
            n_denied=Count("id", filter=_DENIED),
        )
        .order_by()
    )
    rows: dict[tuple[str, dt.date], list[int]] = {}
    for vendor, day, *counts in (
        sealed.values_list("vendor", "day", *DAY_COUNTS)
        .order_by()
        .union(
            tail_counts.values_list("by", "on", "n_reads", "n_writes", "n_checks", "n_records", "n_denied"),
            all=True,
        )
    ):
        totals = rows.setdefault((vendor, day), [0] * len(DAY_COUNTS))
        for i, count in enumerate(counts):
            totals[i] += count
    ordered = sorted(rows.items(), key=lambda item: (-item[0][1].toordinal(), item[0][0]))
    return [
        DayCounts(vendor=vendor, day=day, **dict(zip(DAY_COUNTS, counts, strict=True)))  # type: ignore[typeddict-item]
        for (vendor, day), counts in ordered
    ]


@dataclass(frozen=True)
class Anomaly:
    kind: str  # "denied", "spike" or "after_end"
    vendor: str
    day: dt.date
    count: int
    text: str
    grant_id: str = ""


def _denied_flags(
    daily: Sequence[Mapping[str, Any]], date_from: dt.date | None, threshold: int
) -> list[Anomaly]:
    return [
        Anomaly(
            kind="denied",
            vendor=row["vendor"],
            day=row["day"],
            count=row["denied"],
            text=(
                f"{row['vendor']} had {row['denied']} requests denied on {row['day']:%Y-%m-%d} "
                f"(more than {threshold} in a day)."
            ),
        )
        for row in daily
        if row["denied"] > threshold and (date_from is None or row["day"] >= date_from)
    ]


def _spike_flags(
    daily: Sequence[Mapping[str, Any]], date_from: dt.date | None, factor: int, minimum: int, window: int
) -> list[Anomaly]:
    # Days as ordinals: the window's sum is then integer keys, not date arithmetic, per day.
    reads: dict[str, dict[int, int]] = defaultdict(dict)
    for row in daily:
        reads[row["vendor"]][row["day"].toordinal()] = row["reads"]
    start = None if date_from is None else date_from.toordinal()
    flags = []
    for name, days in reads.items():
        for ordinal, count in days.items():
            if count < minimum or (start is not None and ordinal < start):
                continue
            day = dt.date.fromordinal(ordinal)
            average = sum(days.get(ordinal - n, 0) for n in range(1, window + 1)) / window
            if count > factor * average:
                flags.append(
                    Anomaly(
                        kind="spike",
                        vendor=name,
                        day=day,
                        count=count,
                        text=(
                            f"{name} read {count} times on {day:%Y-%m-%d}, more than {factor} times "
                            f"its average of {average:.1f} reads a day over the previous {window} days."
                        ),
                    )
                )
    return flags


def _after_end_flags(
    vendors: Sequence[str], date_from: dt.date | None, date_to: dt.date | None
) -> list[Anomaly]:
    # Sealed late reads are counted by the sealer (audit.summaries.LedgerLateRead); an unsealed
    # read is late when its grant's first end came before it, in time and in the ledger.
    sealed = _days_within(LedgerLateRead.objects.all(), date_from, date_to)
    if vendors:
        sealed = sealed.filter(vendor__in=vendors)
    ended_before = LedgerGrant.objects.filter(
        grant_id=OuterRef("grant_id"), ended_entry__lt=OuterRef("id"), ended_at__lt=OuterRef("created_at")
    )
    tail = (
        _utc_within(_unsealed(_vendor_entries(vendors=vendors)), "created_at", date_from, date_to)
        .filter(_READ)
        .exclude(grant_id="")
        .filter(Exists(ended_before))
        .values("grant_id", "actor_id", on=TruncDate("created_at", tzinfo=_UTC))
        .annotate(n=Count("id"), first=Min("created_at"))
        .order_by()
    )
    late: dict[tuple[str, str], list[Any]] = {}
    for grant_id, vendor, reads, first_read in (
        sealed.values_list("grant_id", "vendor", "reads", "first_read_at")
        .order_by()
        .union(tail.values_list("grant_id", "actor_id", "n", "first"), all=True)
    ):
        totals = late.setdefault((grant_id, vendor), [0, first_read])
        totals[0] += reads
        totals[1] = min(totals[1], first_read)
    ends = dict(
        LedgerGrant.objects.filter(grant_id__in={grant_id for grant_id, _ in late}).values_list(
            "grant_id", "ended_at"
        )
    )
    flags = []
    for (grant_id, vendor), (reads, first) in sorted(late.items(), key=lambda item: item[1][1], reverse=True):
        first_read = timezone.localtime(first)
        ended = ends.get(grant_id)
        ended_text = f"{timezone.localtime(ended):%Y-%m-%d %H:%M}" if ended else "an unknown time"
        flags.append(
            Anomaly(
                kind="after_end",
                vendor=vendor,
                day=first_read.date(),
                count=reads,
                grant_id=grant_id,
                text=(
                    f"{vendor} read {reads} times under grant {grant_id} after "
                    f"the grant ended at {ended_text} (first at {first_read:%Y-%m-%d %H:%M})."
                ),
            )
        )
    return flags


def activity_anomalies(
    *,
    vendors: Sequence[str] = (),
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    denied_threshold: int = DENIED_THRESHOLD,
    spike_factor: int = SPIKE_FACTOR,
    spike_min_reads: int = SPIKE_MIN_READS,
    spike_window_days: int = SPIKE_WINDOW_DAYS,
) -> list[Anomaly]:
    """Flag what an auditor should look at, newest day first.

    - more than `denied_threshold` denied requests by a vendor in a day;
    - a vendor reading at least `spike_min_reads` times in a day and more than `spike_factor`
      times its own average over the previous `spike_window_days` days (days without reads
      count as zero);
    - reads under a grant after its first end (grant.revoked or grant.expired), in time and in
      the ledger's order (docs/ledger.md, "Summaries").
    """
    return activity_overview(
        vendors=vendors,
        date_from=date_from,
        date_to=date_to,
        denied_threshold=denied_threshold,
        spike_factor=spike_factor,
        spike_min_reads=spike_min_reads,
        spike_window_days=spike_window_days,
    )[1]


def activity_overview(
    *,
    vendors: Sequence[str] = (),
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    denied_threshold: int = DENIED_THRESHOLD,
    spike_factor: int = SPIKE_FACTOR,
    spike_min_reads: int = SPIKE_MIN_READS,
    spike_window_days: int = SPIKE_WINDOW_DAYS,
) -> tuple[list[DayCounts], list[Anomaly]]:
    """Return activity_by_day and activity_anomalies for the same filters, counted once."""
    since = None if date_from is None else date_from - dt.timedelta(days=spike_window_days)
    # One count per vendor and day, from the spike window's start: the page's rows and both the
    # denied and the spike rules read it (a row per vendor and day is small enough for Python).
    daily = activity_by_day(vendors=vendors, date_from=since, date_to=date_to)
    flags = [
        *_denied_flags(daily, date_from, denied_threshold),
        *_spike_flags(daily, date_from, spike_factor, spike_min_reads, spike_window_days),
        *_after_end_flags(vendors, date_from, date_to),
    ]
    rows = daily if date_from is None else [row for row in daily if row["day"] >= date_from]
    return rows, sorted(flags, key=lambda flag: (flag.day, flag.kind, flag.vendor), reverse=True)


# --- charts ----------------------------------------------------------------------------------


class VendorGrantCounts(TypedDict):
    vendor: str
    status: str
    grants: int


def grants_by_vendor(
    *, vendors: Sequence[str] = (), date_from: dt.date | None = None, date_to: dt.date | None = None
) -> list[VendorGrantCounts]:
    """Count grants per vendor and status, in the database: one row per vendor and status.

    From the grant summary (audit.summaries.LedgerGrant), as grant_list lists them. The time range
    selects grants by when they were created.
    """
    counted = (
        _grants(vendors=vendors, date_from=date_from, date_to=date_to)
        .values("vendor", status=_STATUS)
        .annotate(grants=Count("id"))
        .order_by("vendor", "status")
    )
    return [
        VendorGrantCounts(vendor=row["vendor"], status=row["status"], grants=row["grants"]) for row in counted
    ]


class VendorMessageCounts(TypedDict):
    vendor: str
    sent: int
    answered: int
    reported: int


MESSAGE_PERSON_KINDS = (Kind.MESSAGE_ANSWERED, Kind.MESSAGE_REPORTED)


def messages_by_vendor(
    *, vendors: Sequence[str] = (), date_from: dt.date | None = None, date_to: dt.date | None = None
) -> list[VendorMessageCounts]:
    """Count per vendor the messages it sent, and how many of them people answered or reported.

    From the ledger alone: message.sent entries name the vendor; an answer or a report is the
    person's entry under the same grant, and counts once per message however often it changed.
    The time range selects entries by when they were recorded.
    """
    sent_rows = _within(
        _vendor_entries(vendors=vendors).filter(kind=Kind.MESSAGE_SENT), "created_at", date_from, date_to
    )
    counts: dict[str, VendorMessageCounts] = {}

    def row(vendor: str) -> VendorMessageCounts:
        return counts.setdefault(vendor, VendorMessageCounts(vendor=vendor, sent=0, answered=0, reported=0))

    for sent in sent_rows.values("actor_id").annotate(n=Count("id")).order_by():
        row(sent["actor_id"])["sent"] = sent["n"]
    sender = LedgerEntry.objects.filter(kind=Kind.MESSAGE_SENT, grant_id=OuterRef("grant_id")).values(
        "actor_id"
    )
    person_rows = _within(
        LedgerEntry.objects.filter(kind__in=MESSAGE_PERSON_KINDS).exclude(grant_id=""),
        "created_at",
        date_from,
        date_to,
    ).annotate(vendor=Subquery(sender[:1]))
    if vendors:
        person_rows = person_rows.filter(vendor__in=vendors)
    counted = person_rows.values("vendor", "kind").annotate(n=Count("record_ids", distinct=True)).order_by()
    for person_row in counted:
        if person_row["vendor"]:
            counts_of = row(person_row["vendor"])
            if person_row["kind"] == Kind.MESSAGE_ANSWERED:
                counts_of["answered"] = person_row["n"]
            else:
                counts_of["reported"] = person_row["n"]
    return sorted(counts.values(), key=lambda c: c["vendor"])
