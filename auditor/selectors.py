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
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    JSONField,
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

from audit import ledger
from audit.models import LedgerEntry, LedgerLeaf
from audit.selectors import checkpoint_latest

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

Kind = LedgerEntry.Kind
GRANT_KINDS = (Kind.GRANT_CREATED, Kind.GRANT_AMENDED, Kind.GRANT_REVOKED, Kind.GRANT_EXPIRED)
GRANT_SET_KINDS = (Kind.GRANT_CREATED, Kind.GRANT_AMENDED)
GRANT_END_KINDS = (Kind.GRANT_REVOKED, Kind.GRANT_EXPIRED)
ACCESS_KINDS = (Kind.ACCESS_READ, Kind.ACCESS_WRITE, Kind.ACCESS_CHECK, Kind.ACCESS_DENIED)
VENDOR_ACTOR_TYPES = (LedgerEntry.ActorType.CLIENT, LedgerEntry.ActorType.VENDOR_ORG)
DENIED = LedgerEntry.Outcome.DENIED
ALLOWED = LedgerEntry.Outcome.ALLOWED

# Ledger entries read as rows of named columns (`.values(...)`), the shape every page and export takes.
EntryRows = QuerySet[LedgerEntry, Mapping[str, Any]]
_Entries = TypeVar("_Entries", bound=QuerySet[LedgerEntry, object])


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


def _within(queryset: _Entries, field: str, date_from: dt.date | None, date_to: dt.date | None) -> _Entries:
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


def _older_than(entries: _Entries, position: tuple[dt.datetime, int] | None) -> _Entries:
    """Keep the entries after `position` (created_at, id) in newest-first order."""
    if position is None:
        return entries
    at, pk = position
    # `created_at <= at` lets the index start at the position; the exclusion settles ties.
    return entries.filter(created_at__lte=at).exclude(created_at=at, id__gte=pk)


def entry_position(*, entry_id: int) -> tuple[dt.datetime, int] | None:
    """Return the keyset position (created_at, id) of an entry, or None if there is none."""
    row = LedgerEntry.objects.filter(id=entry_id).values_list("created_at", "id").first()
    return None if row is None else (row[0], row[1])


def grant_position(*, grant_id: str) -> tuple[dt.datetime, int] | None:
    """Return the keyset position of a grant in grant_list: that of its grant.created entry."""
    created = LedgerEntry.objects.filter(grant_id=grant_id, kind=Kind.GRANT_CREATED)
    row = created.order_by("id").values_list("created_at", "id").first()
    return None if row is None else (row[0], row[1])


# --- grants ----------------------------------------------------------------------------------


def _for_grant(kinds: tuple[str, ...] | None = None) -> QuerySet[LedgerEntry]:
    entries = LedgerEntry.objects.filter(grant_id=OuterRef("grant_id"))
    return entries if kinds is None else entries.filter(kind__in=kinds)


def _grant_end() -> Subquery:
    # A grant ends once (the services refuse to end or amend an ended grant); "revoked" sorts
    # after "expired", so a grant with both counts as revoked, as in grants_by_vendor. One
    # lookup per listed grant in ledger_grant_events; an EXISTS here would be planned as a hash
    # of every end in the ledger, built for a page of 50.
    return Subquery(_for_grant(GRANT_END_KINDS).order_by("-kind").values("kind")[:1])


_STATUS = Case(
    When(end_kind=Kind.GRANT_REVOKED, then=Value(GrantStatus.REVOKED)),
    When(end_kind=Kind.GRANT_EXPIRED, then=Value(GrantStatus.EXPIRED)),
    default=Value(GrantStatus.ACTIVE),
)


def grant_list(
    *,
    vendors: Sequence[str] = (),
    status: str = "",
    scope: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    before: tuple[dt.datetime, int] | None = None,
) -> EntryRows:
    """Return one row per grant, rebuilt from its grant.* entries, newest grant first.

    A grant is its grant.created entry: the vendor is that entry's actor, the subject its
    person. Each row holds grant_id, vendor, subject, scopes (as last created or amended),
    status, first_at (created) and last_at (last grant.* change). The time range selects
    grants by when they were created; the scope filter looks at the current scopes. `before`
    (grant_position of a listed grant) starts after that grant, for the next page.
    """
    last_granted = _for_grant(GRANT_SET_KINDS).order_by("-created_at", "-id")
    last_change = _for_grant(GRANT_KINDS).order_by("-created_at", "-id")
    created = LedgerEntry.objects.filter(kind=Kind.GRANT_CREATED).exclude(grant_id="")
    if vendors:
        created = created.filter(actor_id__in=vendors, actor_type__in=VENDOR_ACTOR_TYPES)
    created = _older_than(_within(created, "created_at", date_from, date_to), before)
    grants = (
        created.values("grant_id", "subject")
        .annotate(
            vendor=Case(When(actor_type__in=VENDOR_ACTOR_TYPES, then=F("actor_id")), default=Value("")),
            first_at=F("created_at"),
            last_at=Subquery(last_change.values("created_at")[:1]),
            scopes=Subquery(last_granted.values("scopes")[:1], output_field=JSONField()),
            end_kind=_grant_end(),
        )
        .annotate(status=_STATUS)
    )
    if status:
        # On the end's kind, not the CASE built from it: the database looks the end up once.
        ends = {GrantStatus.REVOKED: Kind.GRANT_REVOKED, GrantStatus.EXPIRED: Kind.GRANT_EXPIRED}
        grants = grants.filter(end_kind=ends[status]) if status in ends else grants.filter(end_kind=None)
    if scope:
        # Scopes are stored as a JSON list of plain codes; matching the quoted code in its text
        # works the same on PostgreSQL and SQLite (SQLite has no JSON containment lookup).
        grants = grants.annotate(scopes_text=Cast("scopes", TextField())).filter(
            scopes_text__contains=f'"{scope}"'
        )
    return grants.values("grant_id", "vendor", "subject", "scopes", "status", "first_at", "last_at").order_by(
        "-created_at", "-id"
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


def grant_accesses(*, grant_id: str) -> EntryRows:
    """Return the access.* entries recorded under a grant, oldest first."""
    return (
        LedgerEntry.objects.filter(grant_id=grant_id, kind__in=ACCESS_KINDS)
        .annotate(leaf_index=F("leaf__leaf_index"))
        .order_by("created_at", "id")
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
    reads: int
    writes: int
    checks: int
    records: int
    denied: int


def activity_by_day(
    *, vendors: Sequence[str] = (), date_from: dt.date | None = None, date_to: dt.date | None = None
) -> QuerySet[WithAnnotations[LedgerEntry, DayCounts], Mapping[str, Any]]:
    """Return per vendor and day: reads, writes, checks, records disclosed and denied requests.

    Rows hold vendor, day, reads, writes, checks, records and denied; newest day first. A read
    that was refused counts as denied, not as a read.
    """
    entries = _vendor_entries(vendors=vendors).filter(Q(kind__in=ACCESS_KINDS) | Q(outcome=DENIED))
    entries = _within(entries, "created_at", date_from, date_to)
    return (
        entries.values(vendor=F("actor_id"), day=TruncDate("created_at"))
        .annotate(
            reads=Count("id", filter=_READ),
            writes=Count("id", filter=Q(kind=Kind.ACCESS_WRITE, outcome=ALLOWED)),
            checks=Count("id", filter=Q(kind=Kind.ACCESS_CHECK, outcome=ALLOWED)),
            records=Coalesce(Sum("record_count", filter=_READ), 0, output_field=IntegerField()),
            denied=Count("id", filter=_DENIED),
        )
        .order_by("-day", "vendor")
    )


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
    reads: dict[str, dict[dt.date, int]] = defaultdict(dict)
    for row in daily:
        reads[row["vendor"]][row["day"]] = row["reads"]
    flags = []
    for name, days in reads.items():
        for day, count in days.items():
            if count < minimum or (date_from is not None and day < date_from):
                continue
            average = sum(days.get(day - dt.timedelta(days=n), 0) for n in range(1, window + 1)) / window
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
    ended = (
        LedgerEntry.objects.filter(grant_id=OuterRef("grant_id"), kind__in=GRANT_END_KINDS)
        .order_by("created_at", "id")
        .values("created_at")[:1]
    )
    # A semi-join (reads with an end before them) finds the few late reads in one pass; the
    # end's time is then looked up for those alone.
    ended_before = LedgerEntry.objects.filter(
        grant_id=OuterRef("grant_id"), kind__in=GRANT_END_KINDS, created_at__lt=OuterRef("created_at")
    )
    late = (
        _vendor_entries(vendors=vendors)
        .filter(_READ)
        .exclude(grant_id="")
        .filter(Exists(ended_before))
        .annotate(ended_at=Subquery(ended))
    )
    rows = (
        _within(late, "created_at", date_from, date_to)
        .values("grant_id", "actor_id", "ended_at")
        .annotate(reads=Count("id"), first_read=Min("created_at"))
        .order_by("-first_read")
    )
    flags = []
    for row in rows:
        first_read = timezone.localtime(row["first_read"])
        ended_at = timezone.localtime(row["ended_at"])
        flags.append(
            Anomaly(
                kind="after_end",
                vendor=row["actor_id"],
                day=first_read.date(),
                count=row["reads"],
                grant_id=row["grant_id"],
                text=(
                    f"{row['actor_id']} read {row['reads']} times under grant {row['grant_id']} after "
                    f"the grant ended at {ended_at:%Y-%m-%d %H:%M} (first at {first_read:%Y-%m-%d %H:%M})."
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
    - reads under a grant after its grant.revoked or grant.expired entry.
    """
    since = None if date_from is None else date_from - dt.timedelta(days=spike_window_days)
    # One count per vendor and day, from the spike window's start: both the denied and the
    # spike rules read it, so the entries are aggregated once (a row per vendor and day is
    # small enough to compare in Python).
    daily = list(activity_by_day(vendors=vendors, date_from=since, date_to=date_to))
    flags = [
        *_denied_flags(daily, date_from, denied_threshold),
        *_spike_flags(daily, date_from, spike_factor, spike_min_reads, spike_window_days),
        *_after_end_flags(vendors, date_from, date_to),
    ]
    return sorted(flags, key=lambda flag: (flag.day, flag.kind, flag.vendor), reverse=True)


# --- charts ----------------------------------------------------------------------------------


class VendorGrantCounts(TypedDict):
    vendor: str
    status: str
    grants: int


def grants_by_vendor(
    *, vendors: Sequence[str] = (), date_from: dt.date | None = None, date_to: dt.date | None = None
) -> list[VendorGrantCounts]:
    """Count grants per vendor and status, in the database: one row per vendor and status.

    A grant is counted from its grant.created entry (one per grant); its vendor and status are
    worked out as grant_list does. The time range selects grants by when they were created.
    """
    created = LedgerEntry.objects.filter(kind=Kind.GRANT_CREATED).exclude(grant_id="")
    if vendors:
        created = created.filter(actor_id__in=vendors, actor_type__in=VENDOR_ACTOR_TYPES)
    created = _within(created, "created_at", date_from, date_to)
    # One pass over the grant.created entries; each end test is an uncorrelated IN, which the
    # database hashes once, instead of a lookup per grant.
    revoked = Q(grant_id__in=LedgerEntry.objects.filter(kind=Kind.GRANT_REVOKED).values("grant_id"))
    expired = Q(grant_id__in=LedgerEntry.objects.filter(kind=Kind.GRANT_EXPIRED).values("grant_id"))
    counted = (
        created.values(
            vendor=Case(When(actor_type__in=VENDOR_ACTOR_TYPES, then=F("actor_id")), default=Value(""))
        )
        .annotate(
            grants=Count("id"),
            revoked=Count("id", filter=revoked),
            expired=Count("id", filter=expired & ~revoked),
        )
        .order_by()
    )
    rows = []
    for row in counted:
        by_status = (
            (GrantStatus.ACTIVE, row["grants"] - row["revoked"] - row["expired"]),
            (GrantStatus.REVOKED, row["revoked"]),
            (GrantStatus.EXPIRED, row["expired"]),
        )
        rows += [VendorGrantCounts(vendor=row["vendor"], status=st, grants=n) for st, n in by_status if n]
    return rows


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
