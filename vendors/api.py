"""The vendor REST API (/api/v1/): consent-checked reads of what a person granted."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consent.receipts import history_from, rfc3339
from personal_data.pseudonyms import pairwise_subject


class InsufficientScope(exceptions.PermissionDenied):
    default_detail = "The grant does not cover this request."
    default_code = "insufficient_scope"


class PersonGrantPermission(BasePermission):
    """Allow a request only under a live person grant whose effective scopes cover the view's.

    A view that declares no `required_scopes` fails closed (an empty list means: any person grant).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        required = getattr(view, "required_scopes", None)
        if required is None:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no required_scopes")
        token = request.auth
        if token is None:
            return False
        if token.grant is None or not token.grant.is_live():
            raise exceptions.AuthenticationFailed("The access token is invalid.")
        if not token.allow_scopes(required):
            raise InsufficientScope()
        return True


class PersonApiView(APIView):
    authentication_classes = [OAuth2Authentication]
    permission_classes = [PersonGrantPermission]
    required_scopes: list[str] | None = None

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        token = getattr(request, "auth", None)
        if token is not None and getattr(token, "grant", None) is not None:
            response["Grant-Expires"] = rfc3339(token.grant.ends_at)
        return response


class GrantOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    scopes = serializers.ListField(child=serializers.CharField())
    purpose = serializers.DictField(
        child=serializers.CharField(), help_text="The declared purpose of each scope"
    )
    expires_at = serializers.DateTimeField()
    history_from = serializers.DateField(allow_null=True)


class MeOut(serializers.Serializer):  # type: ignore[type-arg]
    sub = serializers.CharField(help_text="The pairwise id this organisation knows the person by")
    grant = GrantOut()
    name = serializers.CharField(required=False, help_text="Only with profile:read")


class MeView(PersonApiView):
    """Who the token speaks for (a pairwise id) and what its grant allows."""

    required_scopes: list[str] = []

    @extend_schema(responses=MeOut)
    def get(self, request: Request) -> Response:
        token = request.auth
        grant = token.grant
        organisation_id = token.application.organisation_id
        body: dict[str, Any] = {
            "sub": pairwise_subject(person_id=grant.person_id, organisation_id=organisation_id),
            "grant": {
                "id": str(grant.pk),
                "scopes": token.effective_scopes(),
                "purpose": grant.purposes,
                "expires_at": rfc3339(grant.ends_at),
                "history_from": history_from(grant),
            },
        }
        if "profile:read" in token.effective_scopes():
            body["name"] = grant.person.display_name
        return Response(body)
