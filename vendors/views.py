"""The vendor portal: staff sign-up, the organisation, its OAuth applications and their usage.

A client secret is shown on one page, once. The POST that made it (registration or reset)
redirects to that page (POST-redirect-GET, so a reload does not register again or reset
again): the secret crosses the redirect sealed with AES-256-GCM in the session under a fresh
key that only the browser holds, in a short-lived HttpOnly cookie, as the person's keys do
(portal/keysession.py). The session table alone opens nothing. The first GET takes the sealed
secret out of the session and deletes the cookie, so a reload, the Back button or a later page
never shows it again. It is never in a message, a URL or the logs.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from accounts import views as account_views
from accounts.limits import too_many_attempts
from accounts.models import User
from accounts.permissions import signed_in_user, vendor_required
from accounts.services import account_signup
from accounts.signup import signup_request, signup_wait
from consent.scopes import SCOPES, SENSITIVE_SCOPES
from consent.terms import AGREEMENTS, ROSTER
from core import crypto
from vendors import intents, services
from vendors.forms import (
    ApplicationForm,
    ApplicationRegisterForm,
    IntentFiltersForm,
    OrganisationForm,
    StaffSignupForm,
    TermsAcceptForm,
    WebhookForm,
)
from vendors.models import Application, Organisation, Recall
from vendors.recalls import bucket, recall_publish_and_match
from vendors.selectors import USAGE_DAYS, ApplicationUsage, application_usage, organisation_for_staff

SECRET_SESSION = "_vrm_new_client_secret"  # noqa: S105 (a session key's name)
SECRET_COOKIE = "vrm_new_secret"  # noqa: S105 (a cookie's name)
SECRET_COOKIE_AGE = 300  # the redirect follows at once; a secret not fetched by then is gone


def _staff_user(request: HttpRequest) -> User:
    # vendor_required has already let only signed-in vendor staff through.
    return signed_in_user(request)


def _scope_summary(application: Application) -> list[dict[str, Any]]:
    """Describe each scope of an app for the portal: title, sensitivity, required, purpose."""
    return [
        {
            "name": name,
            "title": SCOPES[name].title if name in SCOPES else name,
            "sensitive": name in SENSITIVE_SCOPES,
            "required": name in application.required_scopes,
            "purpose": application.purpose_of(name),
        }
        for name in application.scopes
    ]


CHART_HEIGHT = 60
CHART_BAR = 20  # px per day, in the chart's own units (the SVG scales to its box)


def _usage_chart(usage: ApplicationUsage) -> dict[str, Any]:
    """Bars of calls per day (errors as the bar's red top), scaled to the busiest day."""
    scale = (CHART_HEIGHT - 4) / usage.busiest if usage.busiest else 0
    bars = []
    for i, day in enumerate(usage.days):
        calls, errors = round(day.calls * scale), round(day.errors * scale)
        bars.append(
            {
                "day": day,
                "x": i * CHART_BAR + 2,
                "width": CHART_BAR - 4,
                "calls_y": CHART_HEIGHT - calls,
                "calls_height": calls,
                "errors_y": CHART_HEIGHT - calls,
                "errors_height": min(errors, calls),
            }
        )
    return {"bars": bars, "width": len(usage.days) * CHART_BAR, "height": CHART_HEIGHT}


def _application_for_staff(request: HttpRequest, client_id: str) -> Application:
    """Return an app of the staff's organisation; any other id is a 404, like one that does not exist."""
    organisation = organisation_for_staff(user=_staff_user(request))
    application = None
    if organisation is not None:
        application = organisation.apps.select_related("organisation").filter(client_id=client_id).first()
    if application is None:
        raise Http404("No such application.")
    return application


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """Ask for an address and a password; answer alike whether the address has an account or not."""
    form = StaffSignupForm(request.POST or None)
    if request.method == "POST" and (wait := signup_wait(request)):
        return too_many_attempts(request, wait=wait, reason="signup")
    if request.method == "POST" and form.is_valid():
        signup_request(
            request,
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            display_name="",
            role=User.Role.VENDOR_STAFF,
            confirm_url_name="vendors:signup_confirm",
        )
        return redirect("vendors:signup_sent")
    return render(request, "vendors/signup.html", {"form": form})


@require_http_methods(["GET"])
def signup_sent(request: HttpRequest) -> HttpResponse:
    return account_views.signup_sent(request, again_url_name="vendors:signup")


@require_http_methods(["GET", "POST"])
def signup_confirm(request: HttpRequest, token: str) -> HttpResponse:
    return account_views.signup_confirm(
        request,
        token=token,
        role=User.Role.VENDOR_STAFF,
        create=lambda pending, password: account_signup(pending=pending),
        button="Create staff account",
        again_url_name="vendors:signup",
        done_url_name="vendors:organisation_create",
    )


@vendor_required
@require_http_methods(["GET"])
def portal(request: HttpRequest) -> HttpResponse:
    organisation = organisation_for_staff(user=_staff_user(request))
    if organisation is None:
        return render(request, "vendors/organisation_form.html", {"form": OrganisationForm()})
    apps = list(organisation.apps.order_by("name"))
    usage = {u.application.pk: u for u in application_usage(applications=apps)}
    applications = [(app, _scope_summary(app), usage[app.pk], _usage_chart(usage[app.pk])) for app in apps]
    recalls = [
        (r, bucket(r.matched_people or 0) if r.status == Recall.Status.DONE else None)
        for r in organisation.recalls.all()[:50]
    ]
    return render(
        request,
        "vendors/portal.html",
        {
            "organisation": organisation,
            "applications": applications,
            "recalls": recalls,
            "can_publish": organisation.verified and _recall_app(organisation) is not None,
            "usage_days": USAGE_DAYS,
            "accepted_terms": [AGREEMENTS[a] for a in organisation.accepted_terms if a in AGREEMENTS],
        },
    )


@vendor_required
@require_http_methods(["GET", "POST"])
def terms_accept(request: HttpRequest) -> HttpResponse:
    organisation = organisation_for_staff(user=_staff_user(request))
    if organisation is None:
        return redirect("vendors:portal")
    # Bound on every POST: with no box ticked (every agreement withdrawn) request.POST is empty.
    posted = request.POST if request.method == "POST" else None
    form = TermsAcceptForm(posted, initial={"accepted_terms": organisation.accepted_terms})
    if request.method == "POST":
        if form.is_valid():
            services.organisation_terms_accept(
                organisation=organisation,
                agreement_ids=form.cleaned_data["accepted_terms"],
                by=_staff_user(request),
            )
            messages.success(request, "The agreements your organisation accepts are saved and published.")
            return redirect("vendors:portal")
    return render(
        request,
        "vendors/terms_form.html",
        {"form": form, "organisation": organisation, "roster": ROSTER},
        status=400 if form.is_bound and form.errors else 200,
    )


@vendor_required
@require_http_methods(["GET", "POST"])
def organisation_create(request: HttpRequest) -> HttpResponse:
    if organisation_for_staff(user=_staff_user(request)) is not None:
        return redirect("vendors:portal")
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.organisation_create(staff=_staff_user(request), **form.cleaned_data)
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, "Your organisation is registered. Now register an application.")
            return redirect("vendors:portal")
    return render(request, "vendors/organisation_form.html", {"form": form})


def _secret_aad(request: HttpRequest, client_id: str) -> bytes:
    return f"vrm/new-client-secret/v1|{_staff_user(request).pk}|{client_id}".encode()


def _secret_handover(
    request: HttpRequest, application: Application, secret: str, *, registered: bool
) -> HttpResponse:
    """Answer the POST that made a secret with a redirect to the page that shows it once."""
    key = crypto.random_key()
    sealed = crypto.seal(key, secret.encode(), _secret_aad(request, application.client_id))
    request.session[SECRET_SESSION] = {
        "client_id": application.client_id,
        "registered": registered,
        "sealed": base64.b64encode(sealed).decode(),
    }
    response = redirect("vendors:application_secret", client_id=application.client_id)
    response.set_cookie(
        SECRET_COOKIE,
        base64.b64encode(key).decode(),
        max_age=SECRET_COOKIE_AGE,
        path=reverse("vendors:application_secret", args=[application.client_id]),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response


def _secret_take(request: HttpRequest, client_id: str) -> tuple[str | None, bool]:
    """Take the secret handed over for this app out of the session: (secret or None, registered)."""
    handover = request.session.get(SECRET_SESSION)
    if not isinstance(handover, dict) or handover.get("client_id") != client_id:
        return None, False
    del request.session[SECRET_SESSION]
    try:
        secret = crypto.unseal(
            base64.b64decode(request.COOKIES.get(SECRET_COOKIE, "")),
            base64.b64decode(handover["sealed"]),
            _secret_aad(request, client_id),
        ).decode()
    except (crypto.CryptoError, binascii.Error, ValueError, KeyError):
        return None, False
    return secret, bool(handover.get("registered"))


@vendor_required
@require_http_methods(["GET"])
def application_secret(request: HttpRequest, client_id: str) -> HttpResponse:
    """Show a new client secret once; after that, say it was shown and how to get another."""
    application = _application_for_staff(request, client_id)
    handover = request.session.get(SECRET_SESSION)
    mine = isinstance(handover, dict) and handover.get("client_id") == client_id
    secret, registered = _secret_take(request, client_id)
    response = render(
        request,
        "vendors/secret.html",
        {"application": application, "client_secret": secret, "registered": registered},
    )
    if mine:  # the key is of no use once its secret left the session
        response.delete_cookie(SECRET_COOKIE, path=request.path, samesite="Lax")
    return response


@vendor_required
@require_http_methods(["GET", "POST"])
def application_create(request: HttpRequest) -> HttpResponse:
    organisation: Organisation | None = organisation_for_staff(user=_staff_user(request))
    if organisation is None:
        return redirect("vendors:organisation_create")
    form = ApplicationRegisterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            application, secret = services.application_register(
                organisation=organisation, by=_staff_user(request), **form.service_arguments()
            )
        except ValidationError as error:
            form.add_service_errors(error)
        else:
            return _secret_handover(request, application, secret, registered=True)
    return render(request, "vendors/application_form.html", {"form": form, "organisation": organisation})


@vendor_required
@require_http_methods(["GET", "POST"])
def application_detail(request: HttpRequest, client_id: str) -> HttpResponse:
    application = _application_for_staff(request, client_id)
    if request.method == "POST":
        form = ApplicationForm(request.POST)
        if form.is_valid():
            try:
                services.application_update(application=application, **form.service_arguments())
            except ValidationError as error:
                form.add_service_errors(error)
            else:
                messages.success(request, "Your changes are saved.")
                return redirect("vendors:application", client_id=application.client_id)
        # The failed edit may have changed the instance in memory; show what is stored.
        application.refresh_from_db()
    else:
        form = ApplicationForm(initial=ApplicationForm.initial_for(application))
    return render(
        request,
        "vendors/application.html",
        {"application": application, "form": form, "scope_rows": _scope_summary(application)},
    )


@vendor_required
@require_POST
def application_secret_reset(request: HttpRequest, client_id: str) -> HttpResponse:
    application = _application_for_staff(request, client_id)
    secret = services.application_secret_reset(application=application, by=_staff_user(request))
    return _secret_handover(request, application, secret, registered=False)


def _recall_app(organisation: Organisation) -> Application | None:
    for app in organisation.apps.filter(authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS):
        if "recalls:publish" in app.scopes:
            return app
    return None


@vendor_required
@require_http_methods(["GET", "POST"])
def recall_create(request: HttpRequest) -> HttpResponse:
    """Publish a recall through a form (the same service as POST /api/v1/recalls)."""
    organisation = organisation_for_staff(user=_staff_user(request))
    if organisation is None:
        return redirect("vendors:portal")
    app = _recall_app(organisation)
    values = request.POST if request.method == "POST" else {}
    errors: dict[str, list[str]] = {}
    if not organisation.verified:
        # recall_publish refuses too; here the page says why instead of offering a form.
        return render(request, "vendors/recall_form.html", {"app": app, "unverified": True}, status=403)
    if request.method == "POST" and app is not None:
        data = {
            "title": values.get("title", ""),
            "message": values.get("message", ""),
            "severity": values.get("severity", ""),
            "remedy_url": values.get("remedy_url", ""),
            "gtins": [g.strip() for g in values.get("gtins", "").split() if g.strip()],
            "lots": [lot.strip() for lot in values.get("lots", "").splitlines() if lot.strip()],
            "purchased_from": values.get("purchased_from") or None,
            "purchased_to": values.get("purchased_to") or None,
        }
        try:
            recall = recall_publish_and_match(application=app, data=data)
        except ValidationError as error:
            errors = error.message_dict
        else:
            messages.success(request, f"Recall “{recall.title}” is published; matching runs now.")
            return redirect("vendors:portal")
    return render(
        request,
        "vendors/recall_form.html",
        {"app": app, "values": values, "errors": errors, "severities": Recall.Severity.choices},
        status=400 if errors else 200,
    )


# Intents: which intents the organisation sees, and where new ones are pushed.


def _intent_apps(organisation: Organisation) -> list[Application]:
    apps = organisation.apps.filter(authorization_grant_type=Application.GRANT_CLIENT_CREDENTIALS)
    apps = apps.select_related("intent_webhook").order_by("name")
    return [app for app in apps if intents.SCOPE in app.scopes]


@vendor_required
@require_http_methods(["GET", "POST"])
def intent_settings(request: HttpRequest) -> HttpResponse:
    """Choose the kinds and countries of intents the organisation sees (GET /api/v1/intents)."""
    organisation = organisation_for_staff(user=_staff_user(request))
    if organisation is None:
        return redirect("vendors:portal")
    kinds, countries = intents.intent_filters(organisation=organisation)
    form = IntentFiltersForm(
        request.POST if request.method == "POST" else None,
        initial={"kinds": kinds, "countries": " ".join(countries)},
    )
    if request.method == "POST" and form.is_valid():
        try:
            intents.intent_filters_set(
                organisation=organisation,
                kinds=form.cleaned_data["kinds"],
                countries=form.cleaned_data["countries"],
                by=_staff_user(request),
            )
        except ValidationError as error:
            for field, problems in error.message_dict.items():
                form.add_error(field if field in form.fields else None, problems)
        else:
            messages.success(request, "Your intent filters are saved.")
            return redirect("vendors:intents")
    return render(
        request,
        "vendors/intents.html",
        {
            "organisation": organisation,
            "form": form,
            "apps": [(app, WebhookForm(prefix=app.client_id)) for app in _intent_apps(organisation)],
        },
        status=400 if form.is_bound and form.errors else 200,
    )


@vendor_required
@require_POST
def intent_webhook(request: HttpRequest, client_id: str) -> HttpResponse:
    """Set (or, with `remove`, drop) an app's intent webhook; a new secret is shown on this answer only."""
    application = _application_for_staff(request, client_id)
    if "remove" in request.POST:
        intents.intent_webhook_remove(application=application, by=_staff_user(request))
        messages.success(request, f"{application.name} no longer receives intents by webhook.")
        return redirect("vendors:intents")
    form = WebhookForm(request.POST, prefix=client_id)
    secret = None
    if form.is_valid():
        try:
            secret = intents.intent_webhook_set(
                application=application, url=form.cleaned_data["url"], by=_staff_user(request)
            )
        except ValidationError as error:
            for problems in error.message_dict.values():
                form.add_error("url", problems)
    response = render(
        request,
        "vendors/webhook_secret.html",
        {"application": application, "form": form, "secret": secret},
        status=200 if secret else 400,
    )
    response["Cache-Control"] = "no-store"  # the secret is on this page only
    return response
