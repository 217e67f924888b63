"""Summaries of the ledger that the auditor's pages read: grants, vendor days and late reads.

At ten million entries, counting a month of accesses on every page view takes seconds
(docs/performance.md, "Auditor pages at 10M entries"). These tables hold the counts instead:

- LedgerGrant, one row per grant, kept by ledger_append in the transaction of each grant.* entry
  (a grant's entries are few, and each touches its own row);
- LedgerVendorDay and LedgerLateRead, kept by the sealer for the entries it seals, in the
  sealing transaction: accesses are the hot path, and a counter row per vendor updated by every
  request would make a big vendor's requests queue on it. Entries not sealed yet are counted
  live by the pages (auditor.selectors).

They are derived, never a source of truth: `summaries_differences` (run by verify_ledger)
recomputes all three from the entries, and `grants_rebuild` and `counts_rebuild` replace them
(the sealer runs them when a LedgerSummaryRebuild is pending). Days are UTC days.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate

from audit.models import (
    LedgerEntry,
    LedgerGrant,
    LedgerLateRead,
    LedgerLeaf,
    LedgerSummaryRebuild,
    LedgerVendorDay,
)

Kind = LedgerEntry.Kind
VENDOR_ACTOR_TYPES = (LedgerEntry.ActorType.CLIENT, LedgerEntry.ActorType.VENDOR_ORG)
ACCESS_KINDS = (Kind.ACCESS_READ, Kind.ACCESS_WRITE, Kind.ACCESS_CHECK, Kind.ACCESS_DENIED)
GRANT_KINDS = (Kind.GRANT_CREATED, Kind.GRANT_AMENDED, Kind.GRANT_REVOKED, Kind.GRANT_EXPIRED)
END_KINDS = (Kind.GRANT_REVOKED, Kind.GRANT_EXPIRED)
SET_KINDS = (Kind.GRANT_CREATED, Kind.GRANT_AMENDED)
# A person creates a grant; the first token a vendor's client takes under it names the vendor.
TOKEN_KINDS = (Kind.TOKEN_ISSUED, Kind.TOKEN_REFRESHED)
SUMMARY_KINDS = (*GRANT_KINDS, *TOKEN_KINDS)
ALLOWED = LedgerEntry.Outcome.ALLOWED
DENIED = LedgerEntry.Outcome.DENIED
BATCH = 5_000
# How many differences verify_ledger names before it says "and N more".
DIFFERENCES_NAMED = 5


def utc_day(at: dt.datetime) -> dt.date:
    """Return the UTC day of an aware time, the day every summary counts in."""
    return at.astimezone(dt.UTC).date()


def rebuild_pending() -> bool:
    """Tell whether the summaries wait for a rebuild (and so must not be read yet)."""
    return LedgerSummaryRebuild.objects.exists()


def rebuild_request(*, reason: str) -> None:
    """Ask the next seal to rebuild the summaries from the entries."""
    LedgerSummaryRebuild.objects.create(reason=reason[:120])


# --- grants, as each grant.* entry is appended -----------------------------------------------


def grant_entry_apply(*, entry: LedgerEntry) -> None:
    """Fold a just-appended grant.* or token entry into its grant's summary row (same transaction)."""
    if entry.kind not in SUMMARY_KINDS or not entry.grant_id:
        return
    at = entry.created_at
    if entry.kind in TOKEN_KINDS:
        if entry.actor_type in VENDOR_ACTOR_TYPES:
            LedgerGrant.objects.filter(grant_id=entry.grant_id, vendor="").update(vendor=entry.actor_id)
        return
    if entry.kind == Kind.GRANT_CREATED:
        vendor = entry.actor_id if entry.actor_type in VENDOR_ACTOR_TYPES else ""
        row = LedgerGrant(
            grant_id=entry.grant_id,
            created_entry=entry.pk,
            vendor=vendor,
            subject=entry.subject,
            scopes=entry.scopes,
            created_at=at,
            last_at=at,
        )
        # A second grant.created of the same grant (the services never write one) only sets
        # the scopes, as a grant.amended would: the first names the vendor and the start.
        LedgerGrant.objects.bulk_create(
            [row], update_conflicts=True, unique_fields=["grant_id"], update_fields=["scopes", "last_at"]
        )
        return
    grant = LedgerGrant.objects.filter(grant_id=entry.grant_id)
    if entry.kind == Kind.GRANT_AMENDED:
        grant.update(scopes=entry.scopes, last_at=at)
    elif entry.kind == Kind.GRANT_REVOKED:
        grant.update(end_kind=Kind.GRANT_REVOKED, last_at=at, **_first_end(entry))
    else:
        # Revoked stays revoked: an expiry after a revocation does not change the status.
        grant.update(
            end_kind=Case(
                When(end_kind=Kind.GRANT_REVOKED, then=Value(Kind.GRANT_REVOKED)), default=Value(entry.kind)
            ),
            last_at=at,
            **_first_end(entry),
        )


def _first_end(entry: LedgerEntry) -> dict[str, Any]:
    # The first end stays the first: a later one (the services never write one) changes neither.
    return {
        "ended_entry": Coalesce(F("ended_entry"), Value(entry.pk)),
        "ended_at": Case(When(ended_entry=None, then=Value(entry.created_at)), default=F("ended_at")),
    }


# --- counts, as the sealer seals entries ---------------------------------------------------------


@dataclass
class _End:
    entry: int
    at: dt.datetime
    sealed: bool


@dataclass
class SealCounts:
    """The vendor-day and late-read counts of the entries one seal takes, in leaf order.

    Call `prepare(rows)` before adding a chunk's rows, `add(row)` for each row in leaf order, and
    `write()` after the chunk's leaves are inserted. Rows follow ledger.ENTRY_COLUMNS.

    A read is late when its grant's first end (LedgerGrant.ended_entry, kept at append time) is
    sealed before it and is earlier in time. `prepare` looks each grant up once per seal: its
    first end, and whether that end has a leaf; `add` marks the end sealed when it passes.
    """

    days: dict[tuple[str, dt.date], list[int]] = field(default_factory=lambda: defaultdict(lambda: [0] * 5))
    late: dict[tuple[str, str, dt.date], list[Any]] = field(default_factory=dict)
    # Per grant looked up: its first end, or None if it has not ended (as of the lookup).
    ends: dict[str, _End | None] = field(default_factory=dict)

    def prepare(self, rows: Sequence[tuple[Any, ...]]) -> None:
        wanted = {
            row[6]
            for row in rows
            if row[2] == Kind.ACCESS_READ and row[10] == ALLOWED and row[6] and row[3] in VENDOR_ACTOR_TYPES
        } - self.ends.keys()
        if not wanted:
            return
        self.ends.update(dict.fromkeys(wanted))
        ended = LedgerGrant.objects.filter(grant_id__in=wanted, ended_entry__isnull=False).values_list(
            "grant_id", "ended_entry", "ended_at"
        )
        found = {
            grant_id: _End(entry, at, sealed=False)
            for grant_id, entry, at in ended
            if entry is not None and at is not None
        }
        sealed = set(
            LedgerLeaf.objects.filter(entry_id__in=[end.entry for end in found.values()]).values_list(
                "entry_id", flat=True
            )
        )
        for grant_id, end in found.items():
            end.sealed = end.entry in sealed
            self.ends[grant_id] = end

    def add(self, row: tuple[Any, ...]) -> None:
        entry_id, at, kind, actor_type, vendor, _, grant_id, _, _, record_count, outcome, _, _ = row
        if kind in END_KINDS:
            end = self.ends.get(grant_id)
            if end is not None and end.entry == entry_id:
                end.sealed = True
        if actor_type not in VENDOR_ACTOR_TYPES or not (kind in ACCESS_KINDS or outcome == DENIED):
            return
        day = utc_day(at)
        counts = self.days[(vendor, day)]
        if kind == Kind.ACCESS_DENIED or outcome == DENIED:
            counts[4] += 1
        elif kind == Kind.ACCESS_READ:
            counts[0] += 1
            counts[3] += record_count
            end = self.ends.get(grant_id) if grant_id else None
            if end is not None and end.sealed and end.at < at:
                late = self.late.setdefault((grant_id, vendor, day), [0, at])
                late[0] += 1
                late[1] = min(late[1], at)
        elif kind == Kind.ACCESS_WRITE:
            counts[1] += 1
        elif kind == Kind.ACCESS_CHECK:
            counts[2] += 1

    def write(self) -> None:
        """Add the counts gathered since the last write to the tables, and start afresh."""
        quote = connection.ops.quote_name
        if self.days:
            table = quote(LedgerVendorDay._meta.db_table)
            sums = ", ".join(
                f"{c} = {table}.{c} + excluded.{c}"
                for c in ("reads", "writes", "checks", "records", "denied")
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} (vendor, day, reads, writes, checks, records, denied) "  # noqa: S608
                    f"VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (vendor, day) DO UPDATE SET {sums}",
                    [(vendor, day, *counts) for (vendor, day), counts in self.days.items()],
                )
            self.days.clear()
        if self.late:
            table = quote(LedgerLateRead._meta.db_table)
            first = (
                f"CASE WHEN excluded.first_read_at < {table}.first_read_at "
                f"THEN excluded.first_read_at ELSE {table}.first_read_at END"
            )
            with connection.cursor() as cursor:
                cursor.executemany(
                    f"INSERT INTO {table} (grant_id, vendor, day, reads, first_read_at) "  # noqa: S608
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (grant_id, vendor, day) DO UPDATE SET "
                    f"reads = {table}.reads + excluded.reads, first_read_at = {first}",
                    [
                        (grant_id, vendor, day, reads, _db_time(at))
                        for (grant_id, vendor, day), (reads, at) in self.late.items()
                    ],
                )
            self.late.clear()


def _db_time(at: dt.datetime) -> Any:
    # The form a DateTimeField stores, so SQLite's text times compare as they do through the ORM.
    return LedgerLateRead._meta.get_field("first_read_at").get_db_prep_save(at, connection)


# --- from the entries: rebuild and compare --------------------------------------------------------


GrantRow = tuple[str, int, str, str, Any, dt.datetime, dt.datetime, str, int | None, dt.datetime | None]
GRANT_FIELDS = (
    "grant_id",
    "created_entry",
    "vendor",
    "subject",
    "scopes",
    "created_at",
    "last_at",
    "end_kind",
    "ended_entry",
    "ended_at",
)
DayRow = tuple[str, dt.date, int, int, int, int, int]
LateRow = tuple[str, str, dt.date, int, dt.datetime]


def _first_created() -> QuerySet[LedgerEntry]:
    """Each grant's first grant.created entry (the one its summary row stands on)."""
    earlier = LedgerEntry.objects.filter(
        grant_id=OuterRef("grant_id"), kind=Kind.GRANT_CREATED, id__lt=OuterRef("id")
    )
    return LedgerEntry.objects.filter(kind=Kind.GRANT_CREATED).exclude(grant_id="").filter(~Exists(earlier))


def _grants_from_entries(*, created_ids: Sequence[int] | None = None) -> Iterator[GrantRow]:
    """Each grant as the entries tell it, in grant.created order; with `created_ids`, those grants.

    `created_ids` are first grant.created entries (from _first_created): looked up by id, where
    a filter on their grant ids would read every entry of those grants.
    """
    of_grant = LedgerEntry.objects.filter(grant_id=OuterRef("grant_id"))
    created = _first_created() if created_ids is None else LedgerEntry.objects.filter(id__in=created_ids)
    # What ledger_append applies: only what follows the grant's first grant.created entry.
    after = of_grant.filter(id__gte=OuterRef("id"))
    first_ends = after.filter(kind__in=END_KINDS).order_by("id")
    first_client = after.filter(kind__in=TOKEN_KINDS, actor_type__in=VENDOR_ACTOR_TYPES).order_by("id")
    rows = (
        created.annotate(
            vendor=Case(
                When(actor_type__in=VENDOR_ACTOR_TYPES, then=F("actor_id")),
                default=Coalesce(Subquery(first_client.values("actor_id")[:1]), Value("")),
            ),
            last_scopes=Subquery(after.filter(kind__in=SET_KINDS).order_by("-id").values("scopes")[:1]),
            last_at=Subquery(after.filter(kind__in=GRANT_KINDS).order_by("-id").values("created_at")[:1]),
            revoked=Exists(after.filter(kind=Kind.GRANT_REVOKED)),
            expired=Exists(after.filter(kind=Kind.GRANT_EXPIRED)),
            ended_entry=Subquery(first_ends.values("id")[:1]),
            ended_at=Subquery(first_ends.values("created_at")[:1]),
        )
        .order_by("id")
        .values_list(
            "grant_id",
            "id",
            "vendor",
            "subject",
            "last_scopes",
            "created_at",
            "last_at",
            "revoked",
            "expired",
            "ended_entry",
            "ended_at",
        )
    )
    for (
        grant_id,
        pk,
        vendor,
        subject,
        scopes,
        at,
        last_at,
        revoked,
        expired,
        ended_entry,
        ended_at,
    ) in rows.iterator(BATCH):
        end = Kind.GRANT_REVOKED if revoked else Kind.GRANT_EXPIRED if expired else ""
        yield (grant_id, pk, vendor, subject, _scopes(scopes), at, last_at, end, ended_entry, ended_at)


def _scopes(value: Any) -> list[str]:
    # A JSON column read through a subquery arrives as text on some backends.
    return list(json.loads(value) if isinstance(value, str) else value)


_READ = Q(kind=Kind.ACCESS_READ, outcome=ALLOWED)


def _days_from_entries() -> list[DayRow]:
    sealed = LedgerEntry.objects.filter(leaf__isnull=False, actor_type__in=VENDOR_ACTOR_TYPES)
    counted = (
        sealed.filter(Q(kind__in=ACCESS_KINDS) | Q(outcome=DENIED))
        .values("actor_id", day=TruncDate("created_at", tzinfo=dt.UTC))
        .annotate(
            reads=Count("id", filter=_READ),
            writes=Count("id", filter=Q(kind=Kind.ACCESS_WRITE, outcome=ALLOWED)),
            checks=Count("id", filter=Q(kind=Kind.ACCESS_CHECK, outcome=ALLOWED)),
            records=Coalesce(Sum("record_count", filter=_READ), 0, output_field=IntegerField()),
            denied=Count("id", filter=Q(kind=Kind.ACCESS_DENIED) | Q(outcome=DENIED)),
        )
        .order_by()
    )
    return [
        (r["actor_id"], r["day"], r["reads"], r["writes"], r["checks"], r["records"], r["denied"])
        for r in counted
    ]


def _late_from_entries() -> list[LateRow]:
    """Count the sealed late reads from the entries, against the grant summary's first ends.

    The grant summary must hold what the entries say (grants_rebuild writes it first;
    summaries_differences compares it first). From each ended grant to its reads after the end:
    one index range per grant, which finds nothing unless a read came late.
    """
    quote = connection.ops.quote_name
    entries, leaves = quote(LedgerEntry._meta.db_table), quote(LedgerLeaf._meta.db_table)
    grants = quote(LedgerGrant._meta.db_table)
    vendor_types = ", ".join(["%s"] * len(VENDOR_ACTOR_TYPES))
    sql = (
        f"SELECT r.grant_id, r.actor_id, r.created_at FROM {grants} g "  # noqa: S608
        f"JOIN {leaves} el ON el.entry_id = g.ended_entry "
        f"JOIN {entries} r ON r.grant_id = g.grant_id AND r.created_at > g.ended_at "
        f"JOIN {leaves} rl ON rl.entry_id = r.id AND rl.leaf_index > el.leaf_index "
        f"WHERE r.kind = %s AND r.outcome = %s AND r.actor_type IN ({vendor_types})"
    )
    late: dict[tuple[str, str, dt.date], list[Any]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [Kind.ACCESS_READ, ALLOWED, *VENDOR_ACTOR_TYPES])
        for grant_id, vendor, raw in cursor.fetchall():
            at = _aware(raw)
            row = late.setdefault((grant_id, vendor, utc_day(at)), [0, at])
            row[0] += 1
            row[1] = min(row[1], at)
    return [(g, v, d, n, first) for (g, v, d), (n, first) in late.items()]


def _aware(value: Any) -> dt.datetime:
    # Raw SQL returns what the driver returns: an aware datetime on PostgreSQL, text on SQLite.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def grants_rebuild(*, batch: int = 1_000) -> int:
    """Rewrite the grant summary from the entries, a batch of grants per short transaction.

    Appends go on meanwhile: each batch locks only its own grants' rows (SELECT ... FOR UPDATE)
    before reading their entries, and rewrites them in place (an upsert, never a delete and
    insert), so a grant.* entry appended concurrently is either read here or applied by
    ledger_append on top of the rewritten row, never lost. Rows no grant.created entry backs go
    last. Return how many grants were written.
    """
    written, after = 0, 0
    while True:
        with transaction.atomic():
            firsts = list(
                _first_created().filter(id__gt=after).order_by("id").values_list("grant_id", "id")[:batch]
            )
            if not firsts:
                break
            grant_ids = [grant_id for grant_id, _ in firsts]
            list(LedgerGrant.objects.select_for_update().filter(grant_id__in=grant_ids).values_list("id"))
            rows = list(_grants_from_entries(created_ids=[pk for _, pk in firsts]))
            # A row that claims one of these grant.created entries under another grant id is not
            # any grant's: it would collide with the rewrite.
            created = [row[1] for row in rows]
            LedgerGrant.objects.filter(created_entry__in=created).exclude(grant_id__in=grant_ids).delete()
            LedgerGrant.objects.bulk_create(
                [LedgerGrant(**dict(zip(GRANT_FIELDS, row, strict=True))) for row in rows],
                update_conflicts=True,
                unique_fields=["grant_id"],
                update_fields=list(GRANT_FIELDS[1:]),
            )
            written += len(rows)
            after = max(row[1] for row in rows)
    with transaction.atomic():
        backed = LedgerEntry.objects.filter(grant_id=OuterRef("grant_id"), kind=Kind.GRANT_CREATED)
        LedgerGrant.objects.exclude(Exists(backed)).delete()
    return written


def counts_rebuild() -> dict[str, int]:
    """Replace the vendor-day and late-read counts with what the sealed entries say.

    Run by the sealer, under its lock and inside its transaction (the counts change only
    there), after grants_rebuild: late reads are judged against the grant summary's first ends.
    Clear the pending rebuild requests. Return how many rows each table got.
    """
    LedgerVendorDay.objects.all().delete()
    LedgerLateRead.objects.all().delete()
    days = LedgerVendorDay.objects.bulk_create(
        [
            LedgerVendorDay(vendor=v, day=d, reads=r, writes=w, checks=c, records=n, denied=x)
            for v, d, r, w, c, n, x in _days_from_entries()
        ],
        batch_size=BATCH,
    )
    late = LedgerLateRead.objects.bulk_create(
        [
            LedgerLateRead(grant_id=g, vendor=v, day=d, reads=n, first_read_at=t)
            for g, v, d, n, t in _late_from_entries()
        ],
        batch_size=BATCH,
    )
    LedgerSummaryRebuild.objects.all().delete()
    return {"vendor_days": len(days), "late_reads": len(late)}


def _named(what: str, name: tuple[Any, ...], have: Any, want: Any) -> str:
    label = " ".join(str(part) for part in name)
    if have is None:
        return f"the {what} summary lacks {label}"
    if want is None:
        return f"the {what} summary has {label}, which the entries do not"
    return f"the {what} summary of {label} differs from the entries"


def _differences(what: str, stored: set[Any], computed: set[Any], key: int) -> Iterator[str]:
    stored_by = {row[:key]: row for row in stored}
    computed_by = {row[:key]: row for row in computed}
    for name in sorted(stored_by.keys() | computed_by.keys(), key=str):
        have, want = stored_by.get(name), computed_by.get(name)
        if have != want:
            yield _named(what, name, have, want)


def _grant_differences() -> Iterator[str]:
    # Both sides in the order of the grant.created entries, compared as they stream: a year of
    # grants is hundreds of thousands of rows, too many to hold twice.
    stored = (
        (*row[:4], list_key(row[4]), *row[5:])
        for row in LedgerGrant.objects.order_by("created_entry").values_list(*GRANT_FIELDS).iterator(BATCH)
    )
    computed = ((*row[:4], list_key(row[4]), *row[5:]) for row in _grants_from_entries())
    have, want = next(stored, None), next(computed, None)
    while have is not None or want is not None:
        if want is None or (have is not None and have[1] < want[1]):
            yield _named("grant", (have[0],), have, None)  # type: ignore[index]
            have = next(stored, None)
        elif have is None or want[1] < have[1]:
            yield _named("grant", (want[0],), None, want)
            want = next(computed, None)
        else:
            if have != want:
                yield _named("grant", (have[0],), have, want)
            have, want = next(stored, None), next(computed, None)


@contextlib.contextmanager
def _snapshot() -> Iterator[None]:
    """Read everything inside in one snapshot: stored summaries and entries as of one moment.

    A summary commits with what it counts, so in one snapshot they agree; read at two moments, a
    seal or a grant change in between would look like a difference. Inside a transaction
    already (a test), the caller's snapshot rules.
    """
    if connection.in_atomic_block or connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        yield


def summaries_differences() -> list[str]:
    """Recompute the summaries from the entries and name how the stored ones differ (none: [])."""
    with _snapshot():
        return _summaries_differences()


def _all_differences(stored_days: set[Any], stored_late: set[Any]) -> Iterator[str]:
    grants_agree = True
    for difference in _grant_differences():
        grants_agree = False
        yield difference
    yield from _differences("vendor day", stored_days, set(_days_from_entries()), 2)
    # Late reads are counted against the stored grant summary's ends: only once it is right.
    if grants_agree:
        yield from _differences("late read", stored_late, set(_late_from_entries()), 3)


def _summaries_differences() -> list[str]:
    stored_days = set(
        LedgerVendorDay.objects.values_list("vendor", "day", "reads", "writes", "checks", "records", "denied")
    )
    stored_late = set(
        LedgerLateRead.objects.values_list("grant_id", "vendor", "day", "reads", "first_read_at")
    )
    found = _all_differences(stored_days, stored_late)
    named = list(itertools.islice(found, DIFFERENCES_NAMED + 1))
    if len(named) > DIFFERENCES_NAMED:
        rest = 1 + sum(1 for _ in found)
        named = [*named[:DIFFERENCES_NAMED], f"and {rest} more differences"]
    return named


def list_key(scopes: Any) -> tuple[str, ...]:
    """A hashable form of a scope list, for comparing rows."""
    return tuple(_scopes(scopes))
