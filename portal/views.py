"""The person's portal pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import logout
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts import views as account_views
from accounts.forms import SignupForm
from accounts.limits import TooManyAttempts, password_reconfirm, too_many_attempts
from accounts.models import User
from accounts.permissions import local_path, person_required, signed_in_user
from accounts.reauth import recent_password_required
from accounts.signup import signup_request, signup_wait
from audit.selectors import entry_leaf_text
from consent.selectors import grants_live_for_person, visibility_for_person
from personal_data.categories import RECORD_CATEGORIES, category_get
from personal_data.models import ReminderKind
from personal_data.schemas import DIETARY, DIETARY_LABELS
from personal_data.selectors import (
    Position,
    category_counts,
    preferences_get,
    record_get_for_owner,
    records_page_for_owner,
    retired_stores_for_person,
)
from personal_data.services import (
    import_confirm,
    import_duplicates_find,
    import_stage,
    person_export_record,
    preferences_update,
    record_create,
    record_delete,
    record_update,
)
from personal_data.transfer import MAX_BYTES, MAX_ROWS, ImportProblem, ImportRefused, import_parse
from portal.activity import (
    ActivityFilters,
    EntryPosition,
    activity_chart,
    activity_page,
    counted,
    entry_for_person,
    entry_sentence,
    names_for_person,
    recent_lines,
    uuid_or_blank,
)
from portal.closet import closet_picture
from portal.export import export_chunks, export_zip
from portal.forms import LABELS, field_specs, form_payload
from portal.keyviews import signup_signed_in
from portal.services import account_delete, person_signup_confirm
from vendors.alerts import (
    alert_allow_contact,
    alert_get_for_person,
    alert_records,
    alerts_for_person,
    alerts_mark_read,
    alerts_unread_count,
)


@person_required
def dashboard(request: HttpRequest) -> HttpResponse:
    person = signed_in_user(request)
    counts = category_counts(owner=person)
    categories = [(RECORD_CATEGORIES[name].label, n) for name, n in counts.items()]
    return render(
        request,
        "personal_data/dashboard.html",
        {
            "categories": categories,
            "visibility": visibility_for_person(person=person),
            "unread_alerts": alerts_unread_count(person=person),
            "latest": recent_lines(person=person),
            "set_aside": retired_stores_for_person(person=person),
        },
    )


@person_required
def activity(request: HttpRequest) -> HttpResponse:
    """Every access to the person's data, by name, bursts folded, filtered by vendor and dates."""
    person = signed_in_user(request)
    params = request.GET
    filters = ActivityFilters(
        vendor=uuid_or_blank(params.get("vendor")),
        since=_date(params.get("from")),
        until=_date(params.get("to")),
    )
    page = activity_page(person=person, filters=filters, after=EntryPosition.parse(params.get("after")))
    query_string = params.copy()
    query_string.pop("after", None)
    return render(
        request,
        "personal_data/activity.html",
        {
            "page": page,
            "params": params,
            "filters": filters,
            "filtered": bool(filters.vendor or filters.since or filters.until),
            "query": query_string.urlencode(),
            "chart": activity_chart(person=person, filters=filters, names=page.names),
        },
    )


@person_required
def activity_proof(request: HttpRequest, entry_id: int) -> HttpResponse:
    """One entry of the person's activity, and a check in their browser that it is in the log."""
    person = signed_in_user(request)
    entry = entry_for_person(person=person, entry_id=entry_id)
    names = names_for_person(person=person, entries=[entry])
    return render(
        request,
        "personal_data/activity_proof.html",
        {
            "entry": entry,
            "sentence": entry_sentence(entry, names),
            "purpose": names.purpose(entry),
            "sealed": hasattr(entry, "leaf"),
            "leaf_text": entry_leaf_text(entry_id=entry.pk),
        },
    )


# Records.

PAGE_SIZE = 25
TEXT_FILTERS = {
    "purchases": ("merchant", "brand"),
    "closet": ("kind", "brand"),
    "appliances": ("kind", "brand"),
    "prescriptions": ("pharmacy", "prescriber"),
}


def _date(value: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _yes_no(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def record_title(doc: dict[str, Any]) -> str:
    """A short name for a record of any category, for links and confirmations."""
    return (
        doc.get("product_name")
        or doc.get("name")
        or doc.get("medication")
        or f"{doc.get('brand', '')} {str(doc.get('kind', '')).replace('_', ' ')}".strip()
    )


def _text_match(params: Any, category: str) -> Callable[[dict[str, Any]], bool] | None:
    """The content filters of a list (search, merchant, brand, status) as one predicate."""
    query = params.get("q", "").strip().lower()
    fields = {
        name: wanted for name in TEXT_FILTERS[category] if (wanted := params.get(name, "").strip().lower())
    }
    status = params.get("status", "") if category == "closet" else ""
    if not (query or fields or status):
        return None

    def match(doc: dict[str, Any]) -> bool:
        if query and not any(isinstance(v, str) and query in v.lower() for v in doc.values()):
            return False
        if any(wanted not in str(doc.get(name, "")).lower() for name, wanted in fields.items()):
            return False
        return not status or doc.get("status") == status

    return match


@person_required
def data_list(request: HttpRequest, category: str) -> HttpResponse:
    """List, search and filter the person's records of one category, one page at a time.

    Dates, shared and gifts filter in the database and a page opens only its own records
    (`records_page_for_owner`); a text search opens records in order until the page is full.
    """
    person = signed_in_user(request)
    cat = category_get(category)
    params = request.GET
    filters = {
        "since": _date(params.get("from")),
        "until": _date(params.get("to")),
        "shared": _yes_no(params.get("shared")),
        "is_gift": _yes_no(params.get("gift")),
    }
    page = records_page_for_owner(
        owner=person,
        category=category,
        size=PAGE_SIZE,
        after=Position.parse(params.get("after")),
        before=None if "after" in params else Position.parse(params.get("before")),
        match=_text_match(params, category),
        **filters,
    )
    today = timezone.now().date()
    for doc in page.documents:
        doc["display_title"] = record_title(doc)
        warranty = _date(doc.get("warranty_until"))
        doc["warranty_soon"] = bool(warranty and today <= warranty <= today + dt.timedelta(days=60))
        doc["warranty_over"] = bool(warranty and warranty < today)
    query_string = params.copy()
    for name in ("after", "before", "page"):
        query_string.pop(name, None)
    return render(
        request,
        f"personal_data/list_{category}.html",
        {
            "category": cat,
            "page": page,
            "params": params,
            "query": query_string.urlencode(),
            "filtered": bool(query_string),
            "text_filters": TEXT_FILTERS[category],
            "picture": closet_picture(page.documents) if category == "closet" else None,
        },
    )


def _form_page(
    request: HttpRequest,
    category: str,
    *,
    record: dict[str, Any] | None,
    values: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
) -> HttpResponse:
    cat = category_get(category)
    fields = field_specs(cat.schema, values if values is not None else (record or {}), errors)
    return render(
        request,
        "personal_data/record_form.html",
        {
            "category": cat,
            "record": record,
            "fields": fields,
            "error_fields": [f for f in fields if f.errors],
            "non_field_errors": (errors or {}).get("non_field_errors", []),
        },
        status=400 if errors else 200,
    )


def _record_form(
    request: HttpRequest,
    category: str,
    *,
    record: dict[str, Any] | None,
    save: Callable[[dict[str, Any]], object],
) -> HttpResponse:
    """Show a record form; on POST hand the fields to the service and show its errors, if any."""
    if request.method != "POST":
        return _form_page(request, category, record=record)
    payload = form_payload(category_get(category).schema, request.POST)
    try:
        save(payload)
    except ValidationError as error:
        return _form_page(request, category, record=record, values=payload, errors=error.message_dict)
    messages.success(request, "Saved.")
    return redirect("data-list", category=category)


@person_required
@require_http_methods(["GET", "POST"])
def data_add(request: HttpRequest, category: str) -> HttpResponse:
    person = signed_in_user(request)
    category_get(category)
    return _record_form(
        request,
        category,
        record=None,
        save=lambda data: record_create(owner=person, category=category, data=data),
    )


@person_required
@require_http_methods(["GET", "POST"])
def data_edit(request: HttpRequest, category: str, record_id: str) -> HttpResponse:
    person = signed_in_user(request)
    record = record_get_for_owner(owner=person, category=category, record_id=record_id)
    return _record_form(
        request,
        category,
        record=record,
        save=lambda data: record_update(owner=person, category=category, record_id=record_id, data=data),
    )


@person_required
@require_http_methods(["GET", "POST"])
def data_delete(request: HttpRequest, category: str, record_id: str) -> HttpResponse:
    person = signed_in_user(request)
    cat = category_get(category)
    record = record_get_for_owner(owner=person, category=category, record_id=record_id)
    if request.method == "POST":
        record_delete(owner=person, category=category, record_id=record_id)
        messages.success(request, "Deleted.")
        return redirect("data-list", category=category)
    return render(
        request,
        "personal_data/record_delete.html",
        {"category": cat, "record": record, "title": record_title(record)},
    )


@person_required
@require_POST
def data_toggle(request: HttpRequest, category: str, record_id: str, flag: str) -> HttpResponse:
    """Flip `shared` or `is_gift` at once (a one-button form on the list)."""
    person = signed_in_user(request)
    record = record_get_for_owner(owner=person, category=category, record_id=record_id)
    if flag not in ("shared", "is_gift") or flag not in record:
        raise Http404("No such switch.")
    record_update(owner=person, category=category, record_id=record_id, data={flag: not record[flag]})
    listing = reverse("data-list", kwargs={"category": category})
    return redirect(local_path(request, request.POST.get("next"), listing))


@person_required
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest) -> HttpResponse:
    person = signed_in_user(request)
    current = preferences_get(owner=person)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        posted = request.POST
        payload = {
            "dietary": posted.getlist("dietary"),
            "allergies": _split(posted.get("allergies", "")),
            "sizes": _sizes(posted.get("sizes", "")),
            "brands_liked": _split(posted.get("brands_liked", "")),
            "brands_avoided": _split(posted.get("brands_avoided", "")),
            "contact": {
                "email": "contact_email" in posted,
                "safety_alerts_only": "contact_safety_alerts_only" in posted,
                "reminders": posted.getlist("reminders"),
                "reminders_email": "contact_reminders_email" in posted,
                "messages_email": "contact_messages_email" in posted,
            },
        }
        try:
            preferences_update(owner=person, data=payload)
        except ValidationError as error:
            errors, current = error.message_dict, payload
        else:
            messages.success(request, "Your preferences are saved.")
            return redirect("preferences")
    return render(
        request,
        "personal_data/preferences.html",
        {
            "prefs": current,
            "errors": errors,
            "dietary_choices": [(code, DIETARY_LABELS[code]) for code in DIETARY],
            "reminder_choices": ReminderKind.choices,
            "sizes_text": "\n".join(f"{k}: {v}" for k, v in current.get("sizes", {}).items()),
        },
        status=400 if errors else 200,
    )


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _sizes(text: str) -> dict[str, str]:
    sizes = {}
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if name.strip():
            sizes[name.strip()] = value.strip() if sep else ""
    return sizes


# Import, export, deletion.


@person_required
@require_http_methods(["GET", "POST"])
def data_import(request: HttpRequest) -> HttpResponse:
    """Upload a file; see how many records of each kind it holds and every bad row; store nothing."""
    person = signed_in_user(request)
    context: dict[str, Any] = {
        "categories": RECORD_CATEGORIES,
        "max_mb": MAX_BYTES // (1024 * 1024),
        "max_rows": f"{MAX_ROWS:,}",
    }
    if request.method == "POST":
        upload = request.FILES.get("file")
        category = request.POST.get("category") or None
        context["chosen"] = category
        if upload is None:
            context["refused"] = "Choose a file to import."
        elif upload.size is None or upload.size > MAX_BYTES:
            context["refused"] = f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB."
        else:
            try:
                plan = import_parse(raw=upload.read(), filename=upload.name or "", category=category)
            except ImportRefused as refusal:
                context["refused"] = str(refusal)
            else:
                context["plan"] = plan
                context["problems"] = [_problem_row(p) for p in plan.problems[:500]]
                if plan.inferred:
                    context["inferred_label"] = RECORD_CATEGORIES[plan.inferred].label
                if plan.ok:
                    import_duplicates_find(owner=person, plan=plan)
                    context["pending"] = import_stage(owner=person, plan=plan, filename=upload.name or "")
                    context["duplicates"] = [counted(n, k) for k, n in plan.duplicate_counts.items()]
                    context["new_counts"] = [
                        counted(n, k) for k, n in plan.without_duplicates().counts.items()
                    ]
                elif not plan.problems:
                    context["refused"] = "The file holds no records."
        status = 400 if context.get("refused") or (context.get("plan") and context["plan"].problems) else 200
        return render(request, "personal_data/import.html", context, status=status)
    return render(request, "personal_data/import.html", context)


@person_required
@require_POST
def data_import_confirm(request: HttpRequest, pending_id: str) -> HttpResponse:
    person = signed_in_user(request)
    copies = request.POST.get("include_duplicates") == "on"
    counts = import_confirm(owner=person, pending_id=pending_id, include_duplicates=copies)
    total = sum(counts.values())
    if not total:
        messages.info(request, "Nothing was imported: everything in the file is already in your store.")
    else:
        messages.success(
            request,
            f"Imported {counted(total, '')}: "
            + ", ".join(counted(n, name) for name, n in counts.items())
            + ".",
        )
    return redirect("dashboard")


def _problem_row(problem: ImportProblem) -> dict[str, str | int]:
    """An import problem in the page's words: the field's label beside the file's column name."""
    columns = [c.strip() for c in problem.field.split(",") if c.strip()]
    labels = ", ".join(LABELS.get(c, c.replace("_", " ").capitalize()) for c in columns)
    kind = (
        RECORD_CATEGORIES[problem.category].label if problem.category in RECORD_CATEGORIES else "Preferences"
    )
    return {
        "row": problem.row,
        "kind": kind,
        "label": labels,
        "column": problem.field,
        "message": problem.message,
        "value": problem.value,
    }


@person_required
@recent_password_required
def data_export(request: HttpRequest) -> HttpResponse:
    """Offer the downloads (GET) and stream them (?format=json or zip)."""
    person = signed_in_user(request)
    kind = request.GET.get("format")
    if kind not in ("json", "zip"):
        return render(request, "personal_data/export.html")
    person_export_record(person=person)
    stamp = timezone.now().strftime("%Y%m%d")
    if kind == "zip":
        response: HttpResponse = HttpResponse(export_zip(person=person), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="vrm-export-{stamp}.zip"'
        return response
    streaming = StreamingHttpResponse(export_chunks(person=person), content_type="application/json")
    streaming["Content-Disposition"] = f'attachment; filename="vrm-export-{stamp}.json"'
    return streaming  # type: ignore[return-value]


@person_required
@recent_password_required
@require_http_methods(["GET", "POST"])
def account_delete_view(request: HttpRequest) -> HttpResponse:
    """Explain, offer the export, ask for the password, then crypto-shred and log out."""
    person = signed_in_user(request)
    error = ""
    if request.method == "POST":
        try:
            confirmed = password_reconfirm(request, user=person, password=request.POST.get("password", ""))
        except TooManyAttempts as refused:
            return too_many_attempts(request, wait=refused.wait, reason="reconfirm")
        if confirmed:
            logout(request)
            account_delete(person=person)
            return render(request, "personal_data/account_deleted.html")
        error = "That is not your password; nothing was deleted."
    return render(
        request, "personal_data/account_delete.html", {"error": error}, status=400 if error else 200
    )


# Recall alerts.


@person_required
def alerts(request: HttpRequest) -> HttpResponse:
    """The person's recall alerts, with their own matched records; viewing marks them read."""
    person = signed_in_user(request)
    # A publisher the person already shares with is not offered a second grant (one per app).
    live = {g.application.organisation_id: g for g in grants_live_for_person(person=person)}
    rows = [
        {
            "alert": a,
            "records": alert_records(alert=a),
            "existing_grant": live.get(a.recall.organisation_id),
        }
        for a in alerts_for_person(person=person)
    ]
    alerts_mark_read(person=person)
    return render(request, "personal_data/alerts.html", {"rows": rows})


@person_required
@require_POST
def alert_contact(request: HttpRequest, alert_id: str) -> HttpResponse:
    person = signed_in_user(request)
    alert = alert_get_for_person(person=person, alert_id=alert_id)
    try:
        grant = alert_allow_contact(person=person, alert=alert)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("alerts")
    messages.success(
        request, f"{alert.recall.organisation.name} can now read the matched purchases for 30 days."
    )
    return redirect("consent:grant", grant_id=grant.pk)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Ask for an address and a password; answer alike whether the address has an account or not."""
    form = SignupForm(request.POST or None)
    if request.method == "POST" and (wait := signup_wait(request)):
        return too_many_attempts(request, wait=wait, reason="signup")
    if request.method == "POST" and form.is_valid():
        signup_request(
            request,
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            display_name=form.cleaned_data.get("display_name", ""),
            role=User.Role.PERSON,
            confirm_url_name="signup-confirm",
        )
        return redirect("signup-sent")
    return render(request, "registration/signup.html", {"form": form})


@require_http_methods(["GET"])
def signup_sent(request: HttpRequest) -> HttpResponse:
    return account_views.signup_sent(request, again_url_name="signup")


@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    return account_views.signup_confirm(
        request,
        token=token,
        role=User.Role.PERSON,
        create=lambda pending, password: person_signup_confirm(pending=pending, password=password),
        signed_in=signup_signed_in,
        button="Create my store",
        again_url_name="signup",
        done_url_name="dashboard",
    )
