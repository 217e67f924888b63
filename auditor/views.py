"""The auditor portal: ledger status and verification, grants, vendor activity, the raw ledger.

Every view is for auditors only. Pages and exports read the ledger through
auditor.selectors and never join to users or records, so no personal content can show.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import itertools
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from accounts.permissions import auditor_required, signed_in_user
from audit.selectors import alarms_all, witness_by_id, witnesses_overview
from audit.services import (
    SigningKeyUnknown,
    VerifyResult,
    WitnessKeyTaken,
    ledger_verify,
    witness_register,
    witness_retire,
)
from auditor import abuse, selectors
from auditor.abuse import vendor_review, vendors_for_review
from auditor.charts import grant_chart
from auditor.exports import (
    ACTIVITY_COLUMNS,
    ENTRY_COLUMNS,
    GRANT_COLUMNS,
    ActivityFilterForm,
    EntryFilterForm,
    FilterForm,
    GrantFilterForm,
    activity_shape,
    entries_with_leaves,
    entry_shape,
    export_response,
    grant_shape,
)
from auditor.forms import CaseCloseForm, CaseOpenForm, VerifyForm, WitnessForm
from auditor.report import verification_report, verification_report_sign
from consent.selectors import grants_audit_facts
from core.charts import day_chart
from core.replica import replica_iterate, replica_reads
from vendors.intents import intent_counts_by_organisation, intent_totals
from vendors.models import Report
from vendors.reports import (
    case_close,
    case_get_for_organisation,
    case_open,
    cases_for_organisation,
    report_reasons,
    reports_by_day,
    reports_shared,
)
from vendors.selectors import VendorName, organisation_get, vendor_actor_ids, vendor_names

PAGE_SIZE = 50
FLAGS_SHOWN = 50
# A keyset position in a URL: an entry id on the entries page, a grant id on the grants page.
BEFORE = "before"
# Signed reports of the last few runs, kept in the session until downloaded or pushed out.
REPORTS_KEPT = 5
REPORTS_SESSION_KEY = "audit_reports"
# The vendor page charts its reads against its reports over these days: the summary's 30, at a
# size that stays readable on a phone (90 days of bars shrank to a sliver).
CHART_DAYS = 30


def _names(rows: Iterable[Mapping[str, Any]], key: str) -> dict[str, VendorName]:
    """Name the vendors of a page's rows (organisation and app), by the id the ledger holds."""
    return vendor_names(actor_ids={row[key] for row in rows if row.get(key)})


def _label(names: Mapping[str, VendorName]) -> Callable[[str], str]:
    def label(actor_id: str) -> str:
        name = names.get(actor_id)
        if name is None:
            return actor_id
        return f"{name.organisation} · {name.app}" if name.app else name.organisation

    return label


@dataclass(frozen=True)
class KeysetPage:
    """A page of rows read after a keyset position, with the position of the next (older) page.

    Pages over millions of entries have no total and no page numbers: counting them is what
    made the pages slow (docs/performance.md, "Auditor pages at 10M entries"). A page offers
    "Newest" and "Older" links instead.
    """

    rows: list[Mapping[str, Any]]
    older: str  # the `before` value of the next page; empty on the last
    newest: bool  # whether this is the first page

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def _keyset_page(rows: Iterable[Mapping[str, Any]], *, key: str, newest: bool) -> KeysetPage:
    """Cut PAGE_SIZE rows from the first PAGE_SIZE + 1 (the one more tells whether there is more)."""
    taken = list(itertools.islice(rows, PAGE_SIZE + 1))
    older = str(taken[PAGE_SIZE - 1][key]) if len(taken) > PAGE_SIZE else ""
    return KeysetPage(rows=taken[:PAGE_SIZE], older=older, newest=newest)


def _before(request: HttpRequest) -> str:
    """Return the keyset position the URL names, or "" for the first page (a bad one included)."""
    value = request.GET.get(BEFORE, "")
    return value if 0 < len(value) <= 64 else ""


def _entry_before(request: HttpRequest) -> tuple[dt.datetime, int] | None:
    """Return the keyset position of the entry the URL names, or None for the first page."""
    before = _before(request)
    # An entry id is a bigint: 18 digits at most keeps int() inside it.
    entry_id = int(before) if before.isdigit() and len(before) < 19 else None
    return selectors.entry_position(entry_id=entry_id) if entry_id else None


def _from_replica(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Read the page, or stream the export, from the replica when one is set (core/replica.py).

    Applied under the role check, which reads the session and the account from the primary.
    """

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with replica_reads() as on_replica:
            response = view(request, *args, **kwargs)
        if on_replica and isinstance(response, StreamingHttpResponse):
            content = response.streaming_content
            if isinstance(content, Iterator):  # the exports are synchronous generators
                response.streaming_content = replica_iterate(content)
        return response

    return wrapped


def _counted(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """Answer 503 with the reason, instead of partial counts, while the summaries are rebuilt."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except selectors.SummariesPending as exc:
            response = render(request, "audit/summaries_pending.html", {"reason": str(exc)}, status=503)
            response["Retry-After"] = "60"
            return response

    return wrapped


def _bad_filters(form: FilterForm) -> HttpResponse:
    return HttpResponse(
        "Those filters are not valid: " + "; ".join(str(m) for ms in form.errors.values() for m in ms),
        status=400,
        content_type="text/plain; charset=utf-8",
    )


@auditor_required
@require_http_methods(["GET", "POST"])
def portal(request: HttpRequest) -> HttpResponse:
    """Show the ledger's status; on POST, verify the whole ledger and show the outcome.

    The findings are verify_ledger's: the first problem, gaps in entry ids as warnings, "nothing
    to verify" for an empty ledger, and consistency with a checkpoint the auditor pasted.
    """
    form = VerifyForm(request.POST if request.method == "POST" else None)
    context: dict[str, object] = {"form": form}
    status = 200
    if request.method == "POST":
        if form.is_valid():
            result = ledger_verify(outside_checkpoint=form.cleaned_data["checkpoint"])
            context["result"] = result
            context["root_b64"] = base64.b64encode(result.root_hash).decode() if result.root_hash else ""
            context["report"] = _report_keep(request, result)
        else:
            status = 400
    context["status"] = selectors.ledger_status()
    return render(request, "audit/portal.html", context, status=status)


def _report_keep(request: HttpRequest, result: VerifyResult) -> dict[str, str]:
    """Sign the report of this run and keep it in the session for download; say how it went."""
    verified_at = timezone.now()
    document = verification_report(result=result, verified_at=verified_at, auditor_id=str(request.user.pk))
    try:
        compact = verification_report_sign(document)
    except SigningKeyUnknown as exc:
        return {"error": str(exc)}
    token = secrets.token_urlsafe(12)
    name = f"ledger-verification-{verified_at:%Y%m%dT%H%M%SZ}.jws"
    kept = list(request.session.get(REPORTS_SESSION_KEY, []))[-(REPORTS_KEPT - 1) :]
    request.session[REPORTS_SESSION_KEY] = [*kept, {"token": token, "name": name, "jws": compact}]
    return {"token": token, "name": name}


@auditor_required
@require_GET
def report_download(request: HttpRequest, token: str) -> HttpResponse:
    """Download a signed verification report made in this session."""
    for kept in request.session.get(REPORTS_SESSION_KEY, []):
        if secrets.compare_digest(kept["token"], token):
            response = HttpResponse(kept["jws"], content_type="application/jose")
            response["Content-Disposition"] = f'attachment; filename="{kept["name"]}"'
            return response
    raise Http404("That report is no longer kept: verify again to get a new one.")


@auditor_required
@require_GET
@_from_replica
@_counted
def grants(request: HttpRequest) -> HttpResponse:
    """List grants rebuilt from the ledger, filtered and paginated."""
    form = GrantFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/grants.html", {"form": form}, status=400)
    filters = form.filters()
    before = _before(request)
    position = selectors.grant_position(grant_id=before) if before else None
    rows = selectors.grant_list(**filters, before=position)[: PAGE_SIZE + 1]
    page = _keyset_page(rows, key="grant_id", newest=position is None)
    # Purpose, end and the vendor's name come from the grant itself (never anything about the person).
    facts = grants_audit_facts(grant_ids=[row["grant_id"] for row in page])
    counts = selectors.grants_by_vendor(
        vendors=filters["vendors"], date_from=filters["date_from"], date_to=filters["date_to"]
    )
    counts = [row for row in counts if not filters["status"] or row["status"] == filters["status"]]
    chart = grant_chart(rows=counts, label=_label(vendor_names(actor_ids={row["vendor"] for row in counts})))
    return render(
        request,
        "audit/grants.html",
        {"form": form, "page": page, "facts": facts, "names": _names(page, "vendor"), "chart": chart},
    )


@auditor_required
@require_GET
@_from_replica
def grant_detail(request: HttpRequest, grant_id: str) -> HttpResponse:
    """Show one grant's changes and its accesses, newest first, a keyset page at a time."""
    if not selectors.grant_known(grant_id=grant_id):
        raise Http404("The ledger has no entry for that grant.")
    position = _entry_before(request)
    accesses = selectors.grant_accesses(grant_id=grant_id, before=position)[: PAGE_SIZE + 1]
    page = _keyset_page(accesses, key="id", newest=position is None)
    changes = selectors.grant_changes(grant_id=grant_id)
    return render(
        request,
        "audit/grant_detail.html",
        {
            "grant_id": grant_id,
            "changes": changes,
            "page": page,
            "names": _names([*changes, *page], "actor_id"),
        },
    )


@auditor_required
@require_GET
@_from_replica
@_counted
def activity(request: HttpRequest) -> HttpResponse:
    """Show vendor activity per day and the flags raised over it."""
    form = ActivityFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/activity.html", {"form": form}, status=400)
    filters = form.filters()
    # One row per vendor and day, counted once in the database: the page and the charts use it.
    rows, anomalies = selectors.activity_overview(**filters)
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    # Reads after a grant ended come first, whatever their day: they are never cut off.
    shown = sorted(anomalies, key=lambda flag: flag.kind != "after_end")[:FLAGS_SHOWN]
    message_counts = selectors.messages_by_vendor(**filters)
    daily = [{**row, "accesses": row["reads"] + row["writes"] + row["checks"]} for row in rows]
    label = _label(vendor_names(actor_ids={row["vendor"] for row in rows}))
    # Both charts over the same days, so an auditor can read one against the other.
    newest = max((row["day"] for row in rows), default=None)
    span = {"first": form.cleaned_data["date_from"], "last": form.cleaned_data["date_to"] or newest}
    return render(
        request,
        "audit/activity.html",
        {
            "form": form,
            # The newest flags; a year of a busy store can raise thousands, which no one reads on
            # one page (and which took longer to draw than to find).
            "anomalies": shown,
            "flags_more": max(0, len(anomalies) - FLAGS_SHOWN),
            "charts": [
                chart
                for chart in (
                    day_chart(
                        title="Accesses per vendor per day", rows=daily, value="accesses", label=label, **span
                    ),
                    day_chart(
                        title="Refusals per vendor per day", rows=daily, value="denied", label=label, **span
                    ),
                )
                if chart is not None
            ],
            "page": page,
            "window": (filters["date_from"], filters["date_to"]),
            "window_days": selectors.ACTIVITY_DAYS,
            "message_counts": message_counts,
            "names": vendor_names(
                actor_ids={row["vendor"] for row in page}
                | {a.vendor for a in shown}
                | {c["vendor"] for c in message_counts}
            ),
        },
    )


@auditor_required
@require_GET
@_from_replica
def entries(request: HttpRequest) -> HttpResponse:
    """List raw ledger entries, newest first, filtered and paginated."""
    form = EntryFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "audit/entries.html", {"form": form}, status=400)
    position = _entry_before(request)
    rows = selectors.entry_list(**form.filters(), before=position)[: PAGE_SIZE + 1]
    page = _keyset_page(rows, key="id", newest=position is None)
    names = _names(page, "actor_id")
    return render(request, "audit/entries.html", {"form": form, "page": page, "names": names})


@auditor_required
@require_GET
@_from_replica
@_counted
def grants_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """Stream the filtered grant list as CSV or JSON."""
    form = GrantFilterForm(request.GET)
    if not form.is_valid():
        return _bad_filters(form)
    rows = selectors.grant_list(**form.filters())
    return export_response(queryset=rows, shape=grant_shape, columns=GRANT_COLUMNS, fmt=fmt, name="grants")


@auditor_required
@require_GET
@_from_replica
@_counted
def activity_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """Stream the filtered per-day activity as CSV or JSON."""
    form = ActivityFilterForm(request.GET)
    if not form.is_valid():
        return _bad_filters(form)
    rows = selectors.activity_by_day(**form.filters())
    return export_response(
        queryset=rows, shape=activity_shape, columns=ACTIVITY_COLUMNS, fmt=fmt, name="activity"
    )


@auditor_required
@require_GET
@_from_replica
def entries_export(request: HttpRequest, fmt: str) -> HttpResponseBase:
    """Stream the filtered ledger entries as CSV or JSON."""
    form = EntryFilterForm(request.GET)
    if not form.is_valid():
        return _bad_filters(form)
    rows = entries_with_leaves(selectors.entry_list(**form.filters(), with_leaf=False))
    return export_response(queryset=rows, shape=entry_shape, columns=ENTRY_COLUMNS, fmt=fmt, name="ledger")


@auditor_required
@require_GET
@_from_replica
def intents(request: HttpRequest) -> HttpResponse:
    """Intentcasting in counts: offers per organisation and their outcomes, intents by status.

    No titles, prices, places or people: the counts come from the offers and intents themselves.
    """
    return render(
        request,
        "audit/intents.html",
        {"organisations": intent_counts_by_organisation(), "totals": intent_totals()},
    )


@auditor_required
@require_http_methods(["GET", "POST"])
def witnesses(request: HttpRequest) -> HttpResponse:
    """List the registered witnesses with what they cosigned; on POST, register one."""
    form = WitnessForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                witness = witness_register(
                    name=form.cleaned_data["name"],
                    public_raw=form.cleaned_data["public_raw"],
                    by=request.user,
                )
            except WitnessKeyTaken as exc:  # registered meanwhile, by another auditor
                form.add_error("key", f"{exc}.")
            else:
                messages.success(
                    request, f"Witness {witness.name} registered (key id {form.cleaned_data['key_id']})."
                )
                return redirect("audit:witnesses")
        status = 400
    return render(
        request, "audit/witnesses.html", {"form": form, "rows": witnesses_overview()}, status=status
    )


@auditor_required
@require_http_methods(["GET", "POST"])
def witness_retire_confirm(request: HttpRequest) -> HttpResponse:
    """Ask to confirm retiring a witness (GET ?witness=<id>); retire it on POST."""
    raw = (request.POST if request.method == "POST" else request.GET).get("witness", "")
    witness = (
        witness_by_id(witness_id=int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
    )
    if request.method == "POST":
        if witness is None:
            raise Http404("No such witness.")
        if witness_retire(witness=witness, by=request.user):
            messages.success(request, f"Witness {witness.name} retired: its cosignatures stay as evidence.")
        else:
            messages.info(request, f"Witness {witness.name} was already retired.")
        return redirect("audit:witnesses")
    return render(request, "audit/witness_retire.html", {"witness": witness})


@auditor_required
@require_GET
def alarms(request: HttpRequest) -> HttpResponse:
    """List the alarms witnesses raised, newest first, with their evidence."""
    page = Paginator(alarms_all(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "audit/alarms.html", {"page": page})


# --- vendors under review (docs/abuse.md) ----------------------------------------------------


@auditor_required
@require_GET
@_counted
def vendors(request: HttpRequest) -> HttpResponse:
    """Every vendor, the most reported and flagged first: reports, reads, refusals, messages, cases."""
    return render(
        request,
        "audit/vendors.html",
        {
            "reviews": vendors_for_review(),
            "recent_days": abuse.RECENT_DAYS,
            "history_days": abuse.HISTORY_DAYS,
            "reasons": Report.Reason.choices,
        },
    )


@auditor_required
@require_http_methods(["GET", "POST"])
@_counted
def vendor_detail(request: HttpRequest, organisation_id: str) -> HttpResponse:
    """One vendor: reads against reports per day, reasons, shared words, cases; POST opens a case."""
    organisation = organisation_get(organisation_id=organisation_id)
    form = CaseOpenForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        finding = form.cleaned_data["finding"]
        case = case_open(organisation=organisation, finding=finding, by=signed_in_user(request))
        messages.success(request, f"Case opened on {organisation.name}.")
        return redirect("audit:vendor-case", organisation_id=organisation.pk, case_id=case.pk)
    today = timezone.now().astimezone(dt.UTC).date()
    span = {"first": today - dt.timedelta(days=CHART_DAYS - 1), "last": today}
    reads = selectors.activity_by_day(
        vendors=vendor_actor_ids(vendor_id=str(organisation.pk)), date_from=span["first"], date_to=today
    )
    app_label = _label(vendor_names(actor_ids={row["vendor"] for row in reads}))
    charts = [
        day_chart(title="Reads per day", rows=reads, value="reads", label=app_label, unit="read", **span),
        day_chart(
            title="Reports per day",
            rows=reports_by_day(organisation=organisation, since=span["first"]),
            value="reports",
            label=str,
            unit="report",
            **span,
        ),
    ]
    return render(
        request,
        "audit/vendor_detail.html",
        {
            "organisation": organisation,
            "review": vendor_review(organisation=organisation, today=today),
            "charts": charts,
            "reasons": report_reasons(organisation=organisation),
            "shared": reports_shared(organisation=organisation),
            "cases": cases_for_organisation(organisation=organisation),
            "form": form,
            "recent_days": abuse.RECENT_DAYS,
            "history_days": abuse.HISTORY_DAYS,
        },
        status=400 if form.errors else 200,
    )


@auditor_required
@require_http_methods(["GET", "POST"])
def vendor_case(request: HttpRequest, organisation_id: str, case_id: str) -> HttpResponse:
    """One case on a vendor; POST closes it with an outcome."""
    organisation = organisation_get(organisation_id=organisation_id)
    case = case_get_for_organisation(organisation=organisation, case_id=case_id)
    form = CaseCloseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            case_close(case=case, outcome=form.cleaned_data["outcome"], by=signed_in_user(request))
        except ValidationError as error:
            form.add_error("outcome", error.message_dict.get("outcome", error.messages))
        else:
            messages.success(request, f"Case on {organisation.name} closed.")
            return redirect("audit:vendor", organisation_id=organisation.pk)
    return render(
        request,
        "audit/vendor_case.html",
        {"organisation": organisation, "case": case, "form": form},
        status=400 if form.errors else 200,
    )
