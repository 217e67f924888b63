"""The OAuth 2 endpoints under /o/: consent, token, revocation, introspection, metadata."""

from __future__ import annotations

import base64
import calendar
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
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
from consent.authorization import authorization_request_check
from consent.forms import ConsentForm
from consent.oauth import checksum
from consent.scopes import SCOPES, SENSITIVE_SCOPES
from consent.selectors import application_find
from consent.services import grant_authorize
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
        context = {
            "form": form,
            "application": application,
            "organisation": application.organisation,
            "requested": [(SCOPES[s], application.purpose_of(s)) for s in scopes],
            "sensitive": any(SCOPES[s].sensitive for s in scopes),
        }
        return render(request, "consent/authorize.html", context, status=status)


def _client_id(request: HttpRequest) -> str:
    """The client a token request says it comes from (HTTP Basic or form body), unverified."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header.lower().startswith("basic "):
        try:
            return base64.b64decode(header[6:]).decode().split(":", 1)[0]
        except (ValueError, UnicodeDecodeError):
            return "malformed"
    return request.POST.get("client_id", "")


def _slow_down(wait: int) -> HttpResponse:
    response = JsonResponse(
        {"error": "slow_down", "error_description": "Too many token requests; retry later."}, status=429
    )
    response["Retry-After"] = str(wait)
    return response


class RateLimitedTokenView(TokenView):
    """The token endpoint: one transaction per request, and two counts per client.

    A client id is public, so requests that fail client authentication are counted apart,
    per client id and address, and never spend the client's own allowance: a stranger with
    the id and a wrong secret slows only themselves (and whoever shares their address), and
    is refused before a secret hash is computed. Authenticated requests spend the client's
    allowance (VRM_TOKEN_RATE_PER_MINUTE), wherever they come from.
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        client_id = _client_id(request)
        failures = Limit(
            group="oauth-token-failures",
            key=f"{client_id}|{client_address(request)}",
            rate=f"{settings.VRM_TOKEN_FAILURES_PER_MINUTE}/m",
        )
        allowance = Limit(group="oauth-token", key=client_id, rate=f"{settings.VRM_TOKEN_RATE_PER_MINUTE}/m")
        wait = limit_wait(request, failures) or limit_wait(request, allowance)
        if wait:
            return _slow_down(wait)
        with transaction.atomic():
            response = super().post(request, *args, **kwargs)
        # oauthlib answers 401 invalid_client exactly when client authentication failed.
        limit_count(request, failures if response.status_code == 401 else allowance)
        return response


class AtomicRevokeTokenView(RevokeTokenView):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        with transaction.atomic():
            return super().post(request, *args, **kwargs)


@method_decorator(csrf_exempt, name="dispatch")
class IntrospectView(OAuthLibMixin, View):
    """RFC 7662 introspection, for the authenticated client that owns the token (POST only)."""

    http_method_names = ["post"]

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
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
        # A client learns nothing about tokens that are not its own.
        if token is None or token.application_id != client.pk or not token.is_valid():
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
