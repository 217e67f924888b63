"""The person's view of the ledger: every entry about them, in plain language, by name.

The ledger knows people only by pseudonym and vendors by client id; this is where a signed-in
person's pseudonym is computed, where client ids and grants become the organisation's and app's
names, the scopes the consent page's words and each line the grant's purpose, and where a burst
of requests ("Demo Shop read 20,070 purchases in 101 requests, 08:23–08:31") becomes one line.
"""

from __future__ import annotations

import bisect
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import TruncDate
from django.http import Http404
from django.utils import timezone

from accounts.models import User
from audit.models import LedgerEntry
from audit.selectors import entries_for_subject, witness_coverage
from consent.models import Grant
from consent.scopes import SCOPES
from consent.selectors import grants_for_person
from consent.terms import AGREEMENTS
from core.charts import DayChart, day_chart
from personal_data.pseudonyms import ledger_pseudonym
from vendors.models import Application
from vendors.selectors import applications_by_client_id

# Who did it, for entries whose actor is not a vendor.
_ACTORS = {"person": "You", "operator": "The operator", "system": "vrm", "auditor": "An auditor"}

_SENTENCES: dict[str, str] = {
    "grant.created": "{actor} received your grant: {scopes}",
    "grant.amended": "{actor}'s grant was changed: {scopes}",
    "grant.revoked": "{actor}'s grant was revoked",
    "grant.expired": "{actor}'s grant ended",
    "token.issued": "{actor} got an access key under your grant",
    "token.refreshed": "{actor} renewed its access key",
    "token.revoked": "{actor}'s access key was withdrawn",
    "token.reuse_detected": "{actor} reused an old access key; every key of that grant was withdrawn",
    "token.code_replayed": "{actor} replayed a one-time code; every key it got was withdrawn",
    "access.read": "{actor} read {what}{grant_date}",
    "access.write": "{actor} added {what} to your store",
    "access.check": "{actor} asked a yes/no question about your purchases",
    "access.denied": "{actor} was refused ({reason})",
    "person.import": "You imported {records}",
    "person.export": "You downloaded everything vrm holds about you",
    "person.erased": "Your store was erased",
    "person.store_restarted": "You started an empty store; what you had ({records}) is set aside, locked",
    "person.store_restored": "You brought back {records} from before with your old recovery code",
    "person.store_destroyed": "What was set aside after your password reset ({records}) was destroyed",
    "person.two_factor_on": "You turned on two-step sign-in",
    "person.two_factor_off": "You turned off two-step sign-in",
    "person.backup_codes_new": "You made new backup codes; the old ones no longer work",
    "key.rotated": "Your encryption key was re-protected under a new master key",
    "recall.published": "{actor} published a recall",
    "recall.matched": "A recall matched {records} of yours",
    "operator.deactivated": "{actor} deactivated your account",
    "operator.reactivated": "{actor} reactivated your account",
    "operator.password_reset": "{actor} e-mailed you a link to set a new password",
    "operator.email_changed": "{actor} changed your e-mail address",
    "operator.two_factor_removed": "{actor} turned off two-step sign-in for you, after checking it was you",
    "intent.published": "You published an intent",
    "intent.updated": "You changed an intent",
    "intent.withdrawn": "You withdrew an intent",
    "intent.expired": "{records_word} of yours ended",
    "intent.accepted": "You accepted an offer on an intent",
    "intent.declined": "You declined {offers} on an intent",
    "terms.chosen": "You changed your terms: {choice}",
    "terms.proffered": "You proffered your terms to {vendor}: {terms}",
    "terms.accepted": "{vendor} accepted your terms: {agreement}",
    "terms.declined": "{vendor} accepts none of your terms ({terms_declined})",
    "terms.acknowledged": "{vendor} acknowledged the signed record of your agreement: {agreement}",
    "message.sent": "{actor} sent you a message",
    "message.read": "You read a message from {vendor}",
    "message.answered": "You answered a message from {vendor}: {reason}",
    "message.reported": "You reported a message from {vendor} ({reason})",
    "message.allowance": "You changed how many messages {vendor} may send you: {reason}",
}
# The same events told from the person's side, when the person did them.
_PERSON_SENTENCES: dict[str, str] = {
    "grant.created": "You granted {vendor}: {scopes}",
    "grant.amended": "You changed {vendor}'s grant: {scopes}",
    "grant.revoked": "You revoked {vendor}'s grant",
    "terms.accepted": "You took {vendor}'s alternative terms: {agreement}",
    "terms.declined": "You refused {vendor}'s alternative terms and granted without terms",
}
# A burst of the same request, told once.
_BURSTS: dict[str, str] = {
    "access.read": "{actor} read {what} in {count} requests, {span}",
    "access.write": "{actor} added {what} to your store in {count} requests, {span}",
    "access.check": "{actor} asked {count} yes/no questions about your purchases, {span}",
    "access.denied": "{actor} was refused {count} times ({reason}), {span}",
    "token.issued": "{actor} got {count} access keys under your grant, {span}",
    "token.refreshed": "{actor} renewed its access key {count} times, {span}",
}
# Requests of one vendor under one grant less than this apart are one burst.
BURST_GAP = dt.timedelta(minutes=10)
# A page of activity reads at most this many entries (a burst longer than that goes on over the page).
ENTRY_BUDGET = 20_000
# What a record of each category is called, one and many.
_NOUNS = {
    "purchases": ("purchase", "purchases"),
    "closet": ("closet item", "closet items"),
    "appliances": ("appliance", "appliances"),
    "prescriptions": ("prescription", "prescriptions"),
    "preferences": ("set of preferences", "sets of preferences"),
}


def counted(count: int, category: str) -> str:
    """ "1 purchase", "2,070 purchases", "1 closet item": a count of one kind of record."""
    one, many = _NOUNS.get(category, ("record", "records"))
    return f"1 {one}" if count == 1 else f"{count:,} {many}"


def _records(count: int) -> str:
    return "1 record" if count == 1 else f"{count:,} records"


def _categories(scopes: Iterable[str]) -> list[str]:
    names: list[str] = []
    for scope in scopes:
        known = SCOPES.get(scope)
        category = known.category if known else scope.split(":", 1)[0]
        if category and category not in names:
            names.append(category)
    return names


def _what(count: int, scopes: Iterable[str]) -> str:
    """ "3 closet items", "1 purchase", "12 records (purchases, closet items)", "your name"."""
    categories = _categories(scopes)
    if categories == [] and "profile:read" in scopes:
        return "your name"
    if len(categories) == 1 and categories[0] in _NOUNS:
        return counted(count, categories[0])
    plural = ", ".join(_NOUNS.get(c, (c, c))[1] for c in categories)
    return _records(count) + (f" ({plural})" if plural else "")


def scope_words(scopes: Iterable[str]) -> str:
    """The scopes in the consent page's words: "Your purchases, Your closet"."""
    order = list(SCOPES)
    ranked = sorted(scopes, key=lambda s: order.index(s) if s in SCOPES else len(order))
    titles = [SCOPES[s].title if s in SCOPES else s for s in ranked]
    return ", ".join(titles) or "nothing"


def _app_label(app: Application) -> str:
    organisation = app.organisation.name
    return organisation if app.name in ("", organisation) else f"{organisation} ({app.name})"


@dataclass
class Names:
    """Who is behind each client id and grant of a person's entries, and why they asked."""

    grants: dict[str, Grant]
    apps: dict[str, Application]

    def app_of(self, entry: LedgerEntry) -> Application | None:
        if entry.actor_type == LedgerEntry.ActorType.CLIENT and entry.actor_id in self.apps:
            return self.apps[entry.actor_id]
        grant = self.grants.get(entry.grant_id)
        return grant.application if grant else None

    def vendor(self, entry: LedgerEntry) -> str:
        app = self.app_of(entry)
        if app is not None:
            return _app_label(app)
        return "A vendor app that no longer exists" if entry.actor_type == "client" else "A vendor"

    def organisation_id(self, entry: LedgerEntry) -> str:
        app = self.app_of(entry)
        return str(app.organisation_id) if app else ""

    def purpose(self, entry: LedgerEntry) -> str:
        """What the vendor said it needs these scopes for, as the person agreed to it."""
        grant = self.grants.get(entry.grant_id)
        purposes = grant.purposes if grant else {}
        app = self.app_of(entry)
        said: list[str] = []
        for scope in entry.scopes:
            text = purposes.get(scope) or (app.purpose_of(scope) if app else "")
            if text and text not in said:
                said.append(text)
        return "; ".join(said)

    def granted_on(self, entry: LedgerEntry) -> dt.datetime | None:
        grant = self.grants.get(entry.grant_id)
        return grant.created_at if grant else None


def names_for_person(*, person: User, entries: Iterable[LedgerEntry] = ()) -> Names:
    """The names behind the person's grants, and behind any other app the entries mention."""
    grants = {str(g.pk): g for g in grants_for_person(person=person)}
    known = {g.application.client_id for g in grants.values()}
    wanted = {e.actor_id for e in entries if e.actor_type == LedgerEntry.ActorType.CLIENT} - known
    apps: dict[str, Application] = {g.application.client_id: g.application for g in grants.values()}
    apps.update(applications_by_client_id(wanted) if wanted else {})
    return Names(grants=grants, apps=apps)


def entry_sentence(entry: LedgerEntry, names: Names | None = None) -> str:
    """Describe one ledger entry in a sentence a non-technical person understands."""
    return _sentence([entry], names)


def _terms_choice_words(entry: LedgerEntry, names: Names | None) -> str:
    """A terms.chosen entry in words: what the person proffers, per-vendor picks, the fallback."""
    if entry.kind != "terms.chosen":
        return ""
    proffered = [i for i in entry.record_ids if "=" not in i]
    titles = [f"“{AGREEMENTS[i].title}”" if i in AGREEMENTS else i for i in proffered]
    words = "you proffer " + (", then ".join(titles) if titles else "no agreement")
    organisations = (
        {str(g.application.organisation_id): g.application.organisation.name for g in names.grants.values()}
        if names
        else {}
    )
    for pick in (i for i in entry.record_ids if "=" in i):
        organisation, agreement = pick.split("=", 1)
        title = AGREEMENTS[agreement].title if agreement in AGREEMENTS else agreement
        words += f"; “{title}” for {organisations.get(organisation, 'a vendor')}"
    if entry.reason.endswith("refused"):
        return words + "; no access for a vendor that accepts none of them"
    return words + "; you may still grant access to a vendor that accepts none of them"


def _span(newest: dt.datetime, oldest: dt.datetime) -> str:
    first, last = timezone.localtime(oldest), timezone.localtime(newest)
    if first.date() == last.date():
        return f"{first:%H:%M}–{last:%H:%M}"
    return f"{first:%-d %b %H:%M} – {last:%-d %b %H:%M}"


def _sentence(entries: list[LedgerEntry], names: Names | None) -> str:
    entry = entries[0]
    vendor = names.vendor(entry) if names else f"Vendor app {entry.actor_id}"
    actor = _ACTORS.get(entry.actor_type, vendor)
    granted = names.granted_on(entry) if names else None
    records = sum(e.record_count for e in entries)
    if len(entries) > 1 and entry.kind in _BURSTS:
        template = _BURSTS[entry.kind]
    elif entry.kind == "access.read" and entry.scopes == ["messages:send"]:
        template = "{actor} checked whether you answered its message"
    elif entry.actor_type == "person" and entry.kind in _PERSON_SENTENCES:
        template = _PERSON_SENTENCES[entry.kind]
    else:
        template = _SENTENCES.get(entry.kind, "{actor}: " + entry.kind)
    return template.format(
        actor=actor,
        vendor=vendor,
        count=f"{len(entries):,}",
        span=_span(entries[0].created_at, entries[-1].created_at),
        records=_records(records),
        what=_what(records, entry.scopes),
        scopes=scope_words(entry.scopes),
        reason=entry.reason or "not allowed",
        grant_date=f" under your grant of {granted:%-d %B %Y}" if granted else "",
        choice=_terms_choice_words(entry, names),
        offers="1 offer" if records == 1 else f"{records:,} offers",
        records_word="An intent" if records <= 1 else f"{records:,} intents",
        terms=_titles(entry.reason),
        agreement=_titles(entry.reason.split(" ", 1)[0]),
        terms_declined="no grant was made"
        if "no grant" in entry.reason
        else "the grant went ahead without them",
    )


def _titles(ids: str) -> str:
    """Roster ids ("sd-base,shared-intent") as the agreements' titles."""
    titles = [AGREEMENTS[i].title if i in AGREEMENTS else i for i in ids.split(",") if i]
    return ", ".join(f"“{t}”" for t in titles)


@dataclass
class Line:
    """One line of the person's activity: an entry, or a burst of the same request."""

    entries: list[LedgerEntry]
    sentence: str = ""
    purpose: str = ""
    vendor: str = ""
    # How many independent witnesses cosigned a checkpoint covering the line's sealed entries
    # (None when none of them is sealed yet): see witness_words.
    witnesses: int | None = None

    @property
    def newest(self) -> LedgerEntry:
        return self.entries[0]

    @property
    def oldest(self) -> LedgerEntry:
        return self.entries[-1]

    @property
    def denied(self) -> bool:
        return self.newest.outcome == LedgerEntry.Outcome.DENIED

    @property
    def proofs(self) -> list[LedgerEntry]:
        """The sealed entries of the line, at most 20 (each links to its inclusion proof)."""
        return [e for e in self.entries if hasattr(e, "leaf")][:20]

    @property
    def unsealed(self) -> int:
        return sum(1 for e in self.entries if not hasattr(e, "leaf"))

    @property
    def witnessed(self) -> str:
        return witness_words(self.witnesses)


def witnesses_covering(coverage: list[int], leaf_index: int) -> int:
    """How many witnesses cover a leaf: those whose newest cosigned tree size is larger than its index.

    `coverage` is audit.selectors.witness_coverage(): each non-retired witness's newest cosigned
    size, smallest first.
    """
    return len(coverage) - bisect.bisect_right(coverage, leaf_index)


def witness_words(witnesses: int | None) -> str:
    """ "Witnessed by 2 independent witnesses", "Sealed, not yet witnessed", "Not sealed yet"."""
    if witnesses is None:
        return "Not sealed yet"
    if witnesses == 0:
        return "Sealed, not yet witnessed"
    return f"Witnessed by {witnesses} independent witness{'es' if witnesses != 1 else ''}"


def _joins(line: Line, entry: LedgerEntry) -> bool:
    last = line.oldest
    return (
        entry.kind in _BURSTS
        and (entry.kind, entry.actor_type, entry.actor_id, entry.grant_id, entry.outcome, entry.reason)
        == (last.kind, last.actor_type, last.actor_id, last.grant_id, last.outcome, last.reason)
        and entry.scopes == last.scopes
        and last.created_at - entry.created_at <= BURST_GAP
    )


@dataclass(frozen=True)
class EntryPosition:
    """Where a page of activity ends: one entry's time and id."""

    created_at: dt.datetime
    id: int

    def token(self) -> str:
        return f"{self.created_at.isoformat()}~{self.id}"

    @classmethod
    def parse(cls, token: str | None) -> EntryPosition | None:
        if not token or len(token) > 80:
            return None
        try:
            created, entry_id = token.split("~")
            moment = dt.datetime.fromisoformat(created)
            number = int(entry_id)
        except ValueError:
            return None
        if moment.tzinfo is None or not 0 < number < 2**63:
            return None
        return cls(moment, number)


@dataclass(frozen=True)
class ActivityFilters:
    vendor: str = ""  # an organisation id
    since: dt.date | None = None
    until: dt.date | None = None


@dataclass
class ActivityPage:
    lines: list[Line]
    older: EntryPosition | None
    names: Names
    vendors: list[tuple[str, str]] = field(default_factory=list)


def activity_for_person(*, person: User) -> QuerySet[LedgerEntry]:
    """Return every ledger entry about the person, newest first (with its leaf if sealed)."""
    try:
        subject = ledger_pseudonym(person_id=person.pk)
    except LookupError:
        return LedgerEntry.objects.none()
    return entries_for_subject(subject=subject)


def vendors_for_person(names: Names) -> list[tuple[str, str]]:
    """The organisations the person has granted, by name: the activity page's vendor filter."""
    seen = {
        str(g.application.organisation_id): g.application.organisation.name for g in names.grants.values()
    }
    return sorted(seen.items(), key=lambda item: item[1].lower())


def _filtered(person: User, filters: ActivityFilters, names: Names) -> QuerySet[LedgerEntry]:
    entries = activity_for_person(person=person)
    if filters.vendor:
        grant_ids = [
            k for k, g in names.grants.items() if str(g.application.organisation_id) == filters.vendor
        ]
        client_ids = [c for c, a in names.apps.items() if str(a.organisation_id) == filters.vendor]
        entries = entries.filter(
            Q(grant_id__in=grant_ids) | Q(actor_type=LedgerEntry.ActorType.CLIENT, actor_id__in=client_ids)
        )
    zone = timezone.get_current_timezone()
    if filters.since:
        entries = entries.filter(created_at__gte=dt.datetime.combine(filters.since, dt.time(), zone))
    if filters.until:
        end = dt.datetime.combine(filters.until + dt.timedelta(days=1), dt.time(), zone)
        entries = entries.filter(created_at__lt=end)
    return entries


def _stream(entries: QuerySet[LedgerEntry], after: EntryPosition | None) -> Iterator[LedgerEntry]:
    """The entries in order, read in chunks by keyset position (never OFFSET)."""
    position, chunk = after, 200
    while True:
        window = entries
        if position is not None:
            window = window.filter(
                Q(created_at__lt=position.created_at) | Q(created_at=position.created_at, id__lt=position.id)
            )
        rows = list(window[:chunk])
        yield from rows
        if len(rows) < chunk:
            return
        position = EntryPosition(rows[-1].created_at, rows[-1].id)
        chunk = min(chunk * 4, 5000)


def activity_page(
    *, person: User, filters: ActivityFilters, after: EntryPosition | None = None, size: int = 50
) -> ActivityPage:
    """One page of the person's activity: up to `size` lines, bursts folded into one line each."""
    names = names_for_person(person=person)
    lines: list[Line] = []
    older: EntryPosition | None = None
    for read, entry in enumerate(_stream(_filtered(person, filters, names), after), start=1):
        if lines and _joins(lines[-1], entry):
            lines[-1].entries.append(entry)
        elif len(lines) == size:
            older = EntryPosition(lines[-1].oldest.created_at, lines[-1].oldest.id)
            break
        else:
            lines.append(Line([entry]))
        if read >= ENTRY_BUDGET:
            older = EntryPosition(entry.created_at, entry.id)
            break
    clients = {
        line.newest.actor_id for line in lines if line.newest.actor_type == LedgerEntry.ActorType.CLIENT
    }
    if missing := clients - set(names.apps):
        names.apps.update(applications_by_client_id(missing))
    # One query for the page: each witness's newest cosigned tree size.
    coverage = witness_coverage() if lines else []
    for line in lines:
        line.sentence = _sentence(line.entries, names)
        line.purpose = names.purpose(line.newest)
        line.vendor = names.vendor(line.newest) if line.newest.actor_type == "client" else ""
        sealed = [e.leaf.leaf_index for e in line.entries if hasattr(e, "leaf")]
        # The newest sealed entry is covered by the fewest witnesses: say that many for the line.
        line.witnesses = witnesses_covering(coverage, max(sealed)) if sealed else None
    return ActivityPage(lines=lines, older=older, names=names, vendors=vendors_for_person(names))


# The chart: requests per vendor per day.

CHART_DAYS = 30


def activity_chart(*, person: User, filters: ActivityFilters, names: Names) -> DayChart | None:
    """Requests by vendor apps per day over the filtered dates (the last 30 days by default)."""
    today = timezone.localdate()
    last = min(filters.until or today, today)
    first = filters.since or last - dt.timedelta(days=CHART_DAYS - 1)
    if first > last:
        return None
    window = ActivityFilters(
        vendor=filters.vendor, since=max(first, last - dt.timedelta(days=365)), until=last
    )
    rows = list(
        _filtered(person, window, names)
        .filter(kind__startswith="access.", actor_type=LedgerEntry.ActorType.CLIENT)
        .order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day", vendor=F("actor_id"))
        .annotate(n=Count("id"))
    )
    wanted = {row["vendor"] for row in rows} - set(names.apps)
    apps = {**names.apps, **(applications_by_client_id(wanted) if wanted else {})}

    def label(client_id: str) -> str:
        return _app_label(apps[client_id]) if client_id in apps else "A vendor app that no longer exists"

    return day_chart(
        title="Requests by vendors per day",
        rows=rows,
        value="n",
        label=label,
        first=window.since,
        last=last,
        unit="request",
    )


def entries_for_grant(*, person: User, grant_id: str) -> QuerySet[LedgerEntry]:
    """Return the person's ledger entries under one grant, newest first."""
    return activity_for_person(person=person).filter(grant_id=grant_id)


def uuid_or_blank(value: str | None) -> str:
    """A vendor filter's value: an organisation id, or blank for anything else."""
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        return ""


def recent_lines(*, person: User, count: int = 5) -> list[Line]:
    """The newest few lines of activity, for the dashboard."""
    return activity_page(person=person, filters=ActivityFilters(), size=count).lines


def entry_for_person(*, person: User, entry_id: int) -> LedgerEntry:
    """One of the person's own ledger entries, or 404 (another person's entry looks the same)."""
    entry = activity_for_person(person=person).filter(pk=entry_id).first()
    if entry is None:
        raise Http404("No such entry in your activity.")
    return entry
