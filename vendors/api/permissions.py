"""Who may call the API: a live person grant, or a verified organisation's own token, with its scopes."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from consent.models import AccessToken
from core.problems import InsufficientScope, OrganisationSuspended, OrganisationUnverified
from vendors.models import Application
from vendors.selectors import organisation_is_verified


def bearer_token(request: Request) -> AccessToken:
    """The access token a request was authenticated with (views run after the permission check)."""
    token = request.auth
    if not isinstance(token, AccessToken):
        raise exceptions.NotAuthenticated()
    return token


def bearer_client(request: Request) -> Application:
    """The OAuth application whose token authenticated the request."""
    application = bearer_token(request).application
    if application is None:  # DOT allows it; no token vrm issues lacks its app
        raise exceptions.NotAuthenticated()
    return application


def standing_check(token: AccessToken) -> None:
    """Refuse every token of an organisation the operator suspended or ended, whatever it may do.

    Read with the token in one statement (consent.oauth), so a suspension stops the very next
    request. Checked first by both permissions below, so no API view can serve such a token.
    """
    application = token.application
    organisation = application.organisation if application is not None else None
    if organisation is not None and organisation.halted():
        raise OrganisationSuspended(organisation.halt_notice())


class PersonGrantPermission(BasePermission):
    """Allow a request only under a live person grant whose effective scopes cover the view's.

    A view that declares no `required_scopes` fails closed (an empty list means: any person grant).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        required = view.scopes_for(request.method) if hasattr(view, "scopes_for") else None
        if required is None:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no required_scopes")
        token = request.auth
        if not isinstance(token, AccessToken):
            return False
        standing_check(token)
        if token.grant is None or not token.grant.is_live():
            raise exceptions.AuthenticationFailed("The access token is invalid.")
        if not token.allow_scopes(required):
            raise InsufficientScope(required)
        return True


class OrganisationTokenPermission(BasePermission):
    """Allow an organisation's own token (client credentials, no person) holding the view's scopes,
    and only while the operator has the organisation verified.

    Every organisation scope (recalls:publish, later intents:read) reaches people or what they
    want, so an organisation nobody has checked cannot use it: a 403 that says so, not a scope error.
    The token endpoint refuses such tokens too (consent.oauth); this check also covers a token
    issued before the operator withdrew the verification.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        required = list(getattr(view, "required_scopes", None) or [])
        if not required:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no required_scopes")
        token = request.auth
        if not isinstance(token, AccessToken):
            return False
        standing_check(token)
        if token.grant is not None or not token.allow_scopes(required):
            raise InsufficientScope(required)
        if not organisation_is_verified(organisation_id=bearer_client(request).organisation_id):
            raise OrganisationUnverified()
        return True
