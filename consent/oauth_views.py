"""The OAuth 2 endpoints under /o/: consent, token, revocation, introspection, metadata."""

from __future__ import annotations

import base64
import calendar
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from oauth2_provider.exceptions import OAuthToolkitError
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_backends import OAuthLibCore
from oauth2_provider.views import RevokeTokenView, TokenView
from oauth2_provider.views.base import BaseAuthorizationView
from oauth2_provider.views.mixins import OAuthLibMixin
from oauthlib.common import Request as OauthlibRequest
from oauthlib.oauth2.rfc6749 import errors

from accounts.models import User
from accounts.permissions import signed_in_user
from accounts.reauth import reauth_redirect, recently_confirmed
from consent.agreements import TermsOffer, terms_offer, terms_refusal_record
from consent.authorization import authorization_request_check
from consent.changes import consent_changes
from consent.forms import ConsentForm
from consent.oauth import checksum
from consent.scopes import SCOPES, SENSITIVE_SCOPES
from consent.selectors import application_find, application_pk_for, grant_live_for
from consent.services import grant_authorize
from consent.terms import AGREEMENTS
from consent.types import OAuthApplication
from core.clients import client_address
from core.ratelimits import Limit, limit_count, limit_wait
from personal_data.pseudonyms import pairwise_subject

AccessToken = get_access_token_model()


class QueryOnlyCore(OAuthLibCore):
    """DOT's oauthlib adapter, reading the authorization request from the query string alone.

    The consent page posts back to the authorization URL; oauthlib would otherwise read the
    POST body too, and a body field named like a request parameter (`code_challenge_method`,
    `redirect_uri`, `scope`) would override the query string the page was checked against.
    """

    def extract_body(self, request: HttpRequest) -> list[tuple[str, str]]:
        return []


class _CodeRefused(Exception):
    """oauthlib answered the code request with an error redirect instead of raising."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri


def _with_issuer(uri: str) -> str:
    """Add `iss` to an authorization response (RFC 9207), replacing any already in the URI."""
    parts = urlsplit(uri)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "iss"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("iss", settings.VRM_ISSUER)])))


@method_decorator(never_cache, name="dispatch")
class AuthorizeView(BaseAuthorizationView):
    """The consent page. It never skips the person's decision, whatever the app asks.

    The whole request is checked before the page is shown, and again on the POST, which a
    person (or their browser) could have changed. Consent, its receipt, its ledger entries and
    the code are made in one transaction: if no code is issued, nothing is left.
    """

    @classmethod
    def get_oauthlib_backend_class(cls) -> type[OAuthLibCore]:
        return QueryOnlyCore

    def error_response(
        self, error: OAuthToolkitError, application: OAuthApplication | None = None, **kwargs: Any
    ) -> HttpResponse:
        redirect, details = OAuthLibMixin.error_response(self, error, **kwargs)
        if redirect:
            if application is None:  # the error came before the app was loaded: load it for its schemes
                application = application_find(self.request.GET.get("client_id", ""))
            return self.redirect(_with_issuer(details["url"]), application)
        oauth_error = details["error"]
        return render(
            self.request,
            "consent/authorize_error.html",
            {"error": oauth_error.error, "description": oauth_error.description},
            status=oauth_error.status_code,
        )

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        halted = _halted_organisation(request)
        if halted is not None:
            # No grant for a suspended or ended vendor, and no redirect back to it: the person is told.
            return render(request, "consent/authorize_halted.html", {"organisation": halted}, status=403)
        if not request.user.is_authenticated:
            # A request that will be refused is refused now, not after asking the person to sign in.
            try:
                self._validated(request)
            except OAuthToolkitError as error:
                return self.error_response(error)
            return redirect_to_login(request.get_full_path())
        if request.user.role != User.Role.PERSON:
            raise PermissionDenied("Only a person can grant access to their data.")
        return super().dispatch(request, *args, **kwargs)

    def _validated(self, request: HttpRequest) -> tuple[list[str], dict[str, Any], OAuthApplication]:
        application = authorization_request_check(
            query=request.GET, query_string=request.META.get("QUERY_STRING", "")
        )
        scopes, credentials = self.validate_authorization_request(request)
        return scopes, credentials, application

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            scopes, credentials, application = self._validated(request)
        except OAuthToolkitError as error:
            return self.error_response(error)
        form = ConsentForm(requested=scopes, application=application)
        return self._page(request, form, scopes, application)

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            scopes, credentials, application = self._validated(request)
        except OAuthToolkitError as error:
            return self.error_response(error)
        forwarded: dict[str, Any] = {
            k: credentials[k]
            for k in (
                "client_id",
                "redirect_uri",
                "response_type",
                "state",
                "code_challenge",
                "code_challenge_method",
            )
            if k in credentials
        }
        if "allow" not in request.POST:
            offer = _terms_offer_for(request, application)
            if offer.blocks:
                # No grant was possible: the vendor accepts none of the person's required terms.
                terms_refusal_record(
                    person=signed_in_user(request), organisation_id=application.organisation.pk, offer=offer
                )
            denied = errors.AccessDeniedError(
                description="The person did not allow the request.", state=forwarded.get("state")
            )
            return self.error_response(
                OAuthToolkitError(error=denied, redirect_uri=forwarded["redirect_uri"]), application
            )
        form = ConsentForm(request.POST, requested=scopes, application=application)
        if SENSITIVE_SCOPES & set(request.POST.getlist("scopes")) and not recently_confirmed(request):
            # Granting health data needs the password given in the last 10 minutes.
            return reauth_redirect(request)
        if not form.is_valid():
            return self._page(request, form, scopes, application, status=400)
        try:
            with transaction.atomic():
                grant = grant_authorize(
                    person=signed_in_user(request),
                    application=application,
                    scopes=form.cleaned_data["scopes"],
                    duration_days=form.cleaned_data["duration_days"],
                    history_months=form.cleaned_data["history_months"],
                    include_gifts=form.cleaned_data["include_gifts"],
                    terms_answer=request.POST.get("terms_alternative"),
                    terms_shown=request.POST.get("terms_shown"),
                )
                forwarded["consent_grant_id"] = grant.pk
                # Raises whenever no code comes out, so the grant, its receipt and ledger entries
                # roll back with it.
                uri = self._issue_code(request, grant.scopes, forwarded)
        except ValidationError as error:
            form.add_errors(error)
            return self._page(request, form, scopes, application, status=400)
        except OAuthToolkitError as error:
            return self.error_response(error, application)
        except _CodeRefused as refused:
            return self.redirect(_with_issuer(refused.uri), application)
        return self.redirect(uri, application)

    def _issue_code(self, request: HttpRequest, scopes: list[str], credentials: dict[str, Any]) -> str:
        """Return the redirect carrying a new code, or raise: OAuthToolkitError or _CodeRefused."""
        uri, _headers, _body, _status = self.create_authorization_response(
            request=request, scopes=" ".join(scopes), credentials=credentials, allow=True
        )
        # oauthlib validates the request once more and answers a failure with an error redirect.
        if "code" not in parse_qs(urlsplit(uri).query):
            raise _CodeRefused(uri)
        return str(uri)

    def _page(
        self,
        request: HttpRequest,
        form: ConsentForm,
        scopes: list[str],
        application: OAuthApplication,
        status: int = 200,
    ) -> HttpResponse:
        offer = _terms_offer_for(request, application)
        context = {
            "form": form,
            "application": application,
            "organisation": application.organisation,
            "accepted_terms": [
                AGREEMENTS[a] for a in application.organisation.accepted_terms if a in AGREEMENTS
            ],
            "terms": offer,
            "terms_answer": request.POST.get("terms_alternative") if request.method == "POST" else None,
            "requested": [(SCOPES[s], application.purpose_of(s)) for s in scopes],
            "sensitive": any(SCOPES[s].sensitive for s in scopes),
        }
        # Allowing replaces a live grant: say what is shared now and what would change.
        current = grant_live_for(person=signed_in_user(request), application=application)
        if current is not None:
            now = timezone.now()
            changes = consent_changes(
                grant=current,
                application=application,
                requested=scopes,
                asks_gifts=form.asks_purchases,
                now=now,
            )
            chosen = form.chosen()
            context["current"] = {
                "grant": current,
                "scopes": [SCOPES[s] for s in current.scopes],
                "days_left": max(0, (current.ends_at - now).days),
            }
            shown = [(change, change.applies(chosen)) for change in changes]
            context["changes"], context["changes_shown"] = shown, any(applies for _change, applies in shown)
        return render(request, "consent/authorize.html", context, status=status)


def _halted_organisation(request: HttpRequest) -> Any:
    """The organisation of the requesting app, when the operator has suspended or ended it."""
    client_ids = request.GET.getlist("client_id")
    application = application_find(client_ids[0]) if len(client_ids) == 1 and client_ids[0] else None
    if application is None or not application.organisation.halted():
        return None
    return application.organisation


def _terms_offer_for(request: HttpRequest, application: OAuthApplication) -> TermsOffer:
    organisation = application.organisation
    return terms_offer(
        person=signed_in_user(request),
        organisation_id=organisation.pk,
        accepted_terms=organisation.accepted_terms,
    )


def _basic_client_id(oauth_request: OauthlibRequest) -> str | None:
    """The client id of the HTTP Basic credentials, read exactly as DOT reads them.

    Mirrors `OAuth2Validator._authenticate_basic_auth`: the scheme must be "Basic" (case and
    all), and the user part is form-decoded (`unquote_plus`, RFC 6749 §2.3.1), so `%41bc` is
    the client `Abc`. Whatever DOT cannot read as Basic credentials, it ignores: so do we.
    """
    scheme, _, encoded = str(oauth_request.headers.get("HTTP_AUTHORIZATION") or "").partition(" ")
    if scheme != "Basic" or not encoded:
        return None
    try:  # oauthlib's Request has no `encoding`, so DOT ends up with UTF-8
        encoding = oauth_request.encoding or settings.DEFAULT_CHARSET or "utf-8"
    except AttributeError:
        encoding = "utf-8"
    try:
        user, separator, _secret = base64.b64decode(encoded).decode(encoding).partition(":")
    except (TypeError, ValueError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return unquote_plus(user) if separator else None


class _TwoClients(Exception):
    """One request carries credentials of two different clients."""


class _NoSuchClient(Exception):
    """A client id no client can have, which DOT's lookup would crash on (a NUL on PostgreSQL)."""


def _claimed_client(view: OAuthLibMixin, request: HttpRequest) -> str:
    """The key of the client whose secret this request may make DOT check.

    DOT tries the Basic credentials first and, if they fail, the client id and secret oauthlib
    parsed from the body and query: one request can name two clients. Each id is resolved to
    the application DOT would load, so every spelling DOT accepts for a client is counted as
    that client, whatever the encoding. Ids that resolve to nothing cost no secret hash and
    share one key. Raises _TwoClients if the request names two different applications, and
    _NoSuchClient for an id that cannot exist.
    """
    uri, method, body, headers = view.get_oauthlib_core()._extract_params(request)
    oauth_request = OauthlibRequest(uri, method, body, headers)
    named = {_basic_client_id(oauth_request), oauth_request.client_id}
    if any("\x00" in str(c) for c in named if c):
        raise _NoSuchClient
    resolved = {application_pk_for(client_id=str(c)) for c in named if c} - {None}
    if len(resolved) > 1:
        raise _TwoClients
    return f"app:{resolved.pop()}" if resolved else "unknown"


def _oauth_error(status: int, error: str, description: str, wait: int = 0) -> HttpResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    if wait:
        response["Retry-After"] = str(wait)
    return response


def _failures(request: HttpRequest, client: str) -> Limit:
    """Failed client authentication, per client and address, shared by every endpoint that
    checks a client secret (token, revocation, introspection)."""
    return Limit(
        group="oauth-token-failures",
        key=f"{client}|{client_address(request)}",
        rate=f"{settings.VRM_TOKEN_FAILURES_PER_MINUTE}/m",
    )


class ClientAuthenticationLimited(OAuthLibMixin):
    """Refuse a client's failing address before any secret hash, and count its failures.

    A client id is public, so requests that fail client authentication are counted apart,
    per client and address: a stranger with the id and a wrong secret slows only themselves
    (and whoever shares their address), and is refused before a secret hash is computed.
    """

    def limited(
        self, request: HttpRequest, handle: Callable[[], HttpResponse], *, allowance: bool
    ) -> HttpResponse:
        try:
            client = _claimed_client(self, request)
        except _TwoClients:
            # RFC 6749 §2.3: one authentication method, for one client, per request.
            return _oauth_error(400, "invalid_request", "Credentials of more than one client.")
        except _NoSuchClient:
            return _oauth_error(401, "invalid_client", "Client authentication failed.")
        failures = _failures(request, client)
        spent = Limit(group="oauth-token", key=client, rate=f"{settings.VRM_TOKEN_RATE_PER_MINUTE}/m")
        wait = limit_wait(request, failures) or (limit_wait(request, spent) if allowance else 0)
        if wait:
            return _oauth_error(429, "slow_down", "Too many requests; retry later.", wait)
        response = handle()
        # oauthlib (and our introspection) answer 401 exactly when client authentication failed.
        if response.status_code == 401:
            limit_count(request, failures)
        elif allowance:
            limit_count(request, spent)
        return response


class RateLimitedTokenView(ClientAuthenticationLimited, TokenView):
    """The token endpoint: one transaction per request, and two counts per client.

    Failed client authentication is counted as for every endpoint that checks a secret
    (ClientAuthenticationLimited); authenticated requests spend the client's allowance
    (VRM_TOKEN_RATE_PER_MINUTE), wherever they come from.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        def handle() -> HttpResponse:
            with transaction.atomic():
                return super(RateLimitedTokenView, self).post(request, *args, **kwargs)

        return self.limited(request, handle, allowance=True)


class AtomicRevokeTokenView(ClientAuthenticationLimited, RevokeTokenView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        def handle() -> HttpResponse:
            with transaction.atomic():
                return super(AtomicRevokeTokenView, self).post(request, *args, **kwargs)

        return self.limited(request, handle, allowance=False)


@method_decorator(csrf_exempt, name="dispatch")
class IntrospectView(ClientAuthenticationLimited, View):
    """RFC 7662 introspection, for the authenticated client that owns the token (POST only)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return self.limited(request, lambda: self._introspect(request), allowance=False)

    def _introspect(self, request: HttpRequest) -> HttpResponse:
        core = self.get_oauthlib_core()
        uri, method, body, headers = core._extract_params(request)
        oauth_request = OauthlibRequest(uri, method, body, headers)
        if not core.server.request_validator.authenticate_client(oauth_request):
            response = JsonResponse({"error": "invalid_client"}, status=401)
            response["WWW-Authenticate"] = 'Basic realm="vrm"'
            return response
        client = oauth_request.client
        value = request.POST.get("token")
        if not value:
            return JsonResponse(
                {"error": "invalid_request", "error_description": "token is missing"}, status=400
            )
        token = (
            AccessToken.objects.select_related("application__organisation", "grant")
            .filter(token_checksum=checksum(value))
            .first()
        )
        # A client learns nothing about tokens that are not its own; a halted organisation's
        # tokens are inactive (vendors/suspensions.py).
        if (
            token is None
            or token.application_id != client.pk
            or not token.is_valid()
            or token.application.organisation.halted()
        ):
            return JsonResponse({"active": False})
        data: dict[str, Any] = {
            "active": True,
            "scope": " ".join(token.effective_scopes()),
            "client_id": token.application.client_id,
            "exp": int(calendar.timegm(token.expires.utctimetuple())),
            "token_type": "Bearer",
        }
        if token.grant is not None:
            data["sub"] = pairwise_subject(
                person_id=token.grant.person_id, organisation_id=token.application.organisation_id
            )
            data["grant_id"] = str(token.grant_id)
        return JsonResponse(data)


def _endpoint(name: str) -> str:
    return settings.VRM_ISSUER + reverse(name)


def server_metadata(request: HttpRequest) -> HttpResponse:
    """RFC 8414 authorization server metadata, advertising only what the server accepts."""
    client_auth = ["client_secret_basic", "client_secret_post"]
    return JsonResponse(
        {
            "issuer": settings.VRM_ISSUER,
            "authorization_endpoint": _endpoint("oauth-authorize"),
            "token_endpoint": _endpoint("oauth-token"),
            "revocation_endpoint": _endpoint("oauth-revoke"),
            "introspection_endpoint": _endpoint("oauth-introspect"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "token_endpoint_auth_methods_supported": client_auth,
            "revocation_endpoint_auth_methods_supported": client_auth,
            "introspection_endpoint_auth_methods_supported": client_auth,
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": list(SCOPES),
            "authorization_response_iss_parameter_supported": True,
            "service_documentation": settings.VRM_ISSUER + "/api/docs/",
        }
    )
