"""The OAuth glue: django-oauth-toolkit's validator, made to answer to the person's grant.

Every token and code is bound to a consent grant. The validator refuses codes and refresh
tokens of grants that are no longer live, caps every token at the grant's end, treats a
second use of a code or a rotated refresh token as an attack that withdraws every token of
the grant, and writes token events to the ledger in the token endpoint's transaction.
"""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any, cast

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_grant_model,
    get_refresh_token_model,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749 import errors as oauth2_errors
from oauthlib.oauth2.rfc6749.tokens import get_token_from_header

from consent import services
from consent.models import AccessToken as AccessTokenModel
from consent.models import Grant, SpentCode
from consent.scopes import ORGANISATION_SCOPES, PERSON_SCOPES, VERIFIED_ONLY_SCOPES
from core.statements import Select, Source
from personal_data.models import PersonKey, Share

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
AuthorizationCode = get_grant_model()
# vendors.Organisation, above this package: reached through the application model, never imported.
Organisation = get_application_model()._meta.get_field("organisation").related_model

# An access token and what every API request needs with it: its app, grant, person and key row,
# in one literal statement (core.statements). Only the columns the API and DOT's token checks read
# are loaded (secrets, hashes and timestamps nobody reads stay in the database); tests pin the
# statements a request makes.
_TOKEN_READ = Select(
    Source(AccessToken, "t", ("id", "user_id", "application_id", "grant_id", "expires", "scope", "resource")),
    Source(
        get_application_model(),
        "a",
        ("id", "client_id", "organisation_id", "name", "client_type", "authorization_grant_type"),
    ),
    # The organisation's standing: a suspension stops its tokens on the very next request.
    Source(Organisation, "o", ("id", "verified", "standing", "standing_reason")),
    Source(Grant, "g", tuple(f.attname for f in Grant._meta.concrete_fields)),
    Source(get_user_model(), "u", ("id", "email", "display_name", "role", "is_active")),
    Source(PersonKey, "k", ("person_id", "master_key_id", "wrapped_key", "pseudonym_salt", "public_key")),
    # The grant's share: its wrapped key opens what the vendor may read.
    Source(Share, "s", tuple(f.attname for f in Share._meta.concrete_fields)),
    tail=(
        "FROM {t} LEFT JOIN {a} ON a.id = t.application_id "
        "LEFT JOIN {o} ON o.id = a.organisation_id "
        "LEFT JOIN {g} ON g.id = t.grant_id "
        "LEFT JOIN {u} ON u.id = g.person_id "
        "LEFT JOIN {k} ON k.person_id = g.person_id "
        "LEFT JOIN {s} ON s.id = g.share_id "
        "WHERE t.token_checksum = %s"
    ),
)


def checksum(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _active(user: Any) -> bool:
    """Whether a token's account may still use it: a deactivated person's tokens are dead."""
    return user is None or bool(user.is_active)


class GrantValidator(OAuth2Validator):
    def _load_access_token(self, token: str) -> Any:
        """Load the token with its app, grant, person and the person's key row: one statement.

        Every API request needs all of them. The statement is built once per process
        (core.statements): compiling the equivalent select_related query on each request cost
        about a millisecond, a fifth of a whole API request.
        """
        found = _TOKEN_READ.instances([checksum(token)])
        if found is None:
            return None
        # A matched row always has its token; the LEFT JOINs may find no app, grant or person.
        # Relations are linked through the instances' caches, which leaves every id as loaded.
        access_token = cast(AccessTokenModel, found["t"])
        application, grant, person = found["a"], cast(Grant | None, found["g"]), found["u"]
        access_token._state.fields_cache["application"] = application
        if application is not None:
            application._state.fields_cache["organisation"] = found["o"]
        if grant is not None:
            person_key = found["k"]
            if person is not None and person_key is not None:
                person._state.fields_cache["data_key"] = person_key
            grant._state.fields_cache.update(person=person, application=application, share=found["s"])
            access_token._state.fields_cache["grant"] = grant
            if access_token.user_id == grant.person_id:
                access_token._state.fields_cache["user"] = person
        return access_token

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        """Authenticate the client; in the token endpoint's transaction, also hold its row.

        A secret reset (vendors.services.application_secret_reset) locks the same row before it
        deletes the app's tokens and codes. A request that checked the old secret then either
        commits its token first, and the reset deletes it, or finds once the reset commits that
        the secret it checked is no longer the app's, and fails as invalid_client.
        """
        if not super().authenticate_client(request, *args, **kwargs):
            return False
        if not transaction.get_connection().in_atomic_block:
            return True  # introspection, which writes nothing, runs outside a transaction
        client = request.client
        held = (
            type(client)
            .objects.select_for_update()
            .filter(pk=client.pk, client_secret=client.client_secret)
            .values_list("pk", flat=True)
            .first()
        )
        return held is not None

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        """Refuse every token request (a code, a refresh, client credentials) of a halted organisation.

        Read fresh on each request: a suspension refuses the very next refresh.
        """
        organisation = client.organisation
        if organisation.halted():
            raise oauth2_errors.UnauthorizedClientError(
                description=organisation.halt_notice(), request=request
            )
        return bool(super().validate_grant_type(client_id, grant_type, client, request, *args, **kwargs))

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        """Allow only scopes registered for the app, of the kind its grant type may carry.

        A scope for verified organisations only is refused, with a reason, to an organisation
        the operator has not verified (the API checks again on every request).
        """
        if not scopes or not set(scopes) <= set(client.scopes):
            return False
        allowed = ORGANISATION_SCOPES if request.grant_type == "client_credentials" else PERSON_SCOPES
        if not set(scopes) <= set(allowed):
            return False
        if VERIFIED_ONLY_SCOPES.intersection(scopes) and not client.organisation.verified:
            raise oauth2_errors.UnauthorizedClientError(
                description="Only organisations verified by the operator can use this scope; "
                "this organisation is not verified yet.",
                request=request,
            )
        return True

    # Authorization codes.

    def _create_authorization_code(self, request: Any, code: dict[str, str], expires: Any = None) -> Any:
        authorization_code = super()._create_authorization_code(request, code, expires)
        authorization_code.consent_grant_id = request.consent_grant_id
        authorization_code.save(update_fields=["consent_grant"])
        return authorization_code

    def validate_code(
        self, client_id: str, code: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        found = (
            AuthorizationCode.objects.select_for_update(of=("self",))
            .select_related("consent_grant")
            .filter(code=code, application=client)
            .first()
        )
        if found is None:
            spent = (
                SpentCode.objects.filter(code_checksum=checksum(code)).select_related("consent_grant").first()
            )
            if spent is not None:
                services.grant_tokens_withdraw(
                    grant=spent.consent_grant,
                    event="token.code_replayed",
                    reason="authorization code used twice",
                )
            return False
        grant = found.consent_grant
        if grant is None or not grant.is_live() or found.is_expired() or not _active(found.user):
            return False
        request.scopes = found.scope.split()
        request.user = found.user
        request.consent_grant = grant
        return True

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: Any, *args: Any, **kwargs: Any
    ) -> None:
        SpentCode.objects.create(code_checksum=checksum(code), consent_grant=request.consent_grant)
        super().invalidate_authorization_code(client_id, code, request, *args, **kwargs)

    def confirm_redirect_uri(
        self, client_id: str, code: str, redirect_uri: str, client: Any, *args: Any, **kwargs: Any
    ) -> bool:
        # Exact string match with the URI of the authorization request (RFC 9700 §4.1.3).
        found = AuthorizationCode.objects.filter(code=code, application=client).first()
        return found is not None and found.redirect_uri == redirect_uri

    # Refresh tokens.

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        rows = RefreshToken.objects.select_for_update(of=("self",)).select_related("grant")
        row = (
            rows.filter(token_checksum=checksum(refresh_token))
            .order_by(F("revoked").desc(nulls_first=True))
            .first()
        )
        if row is not None and row.revoked is not None and row.grant is not None:
            # A rotated-away or revoked refresh token came back: someone holds a copy.
            services.grant_tokens_withdraw(
                grant=row.grant, event="token.reuse_detected", reason="refresh token used twice"
            )
            return False
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):
            return False
        grant = request.refresh_token_instance.grant
        if grant is None or not grant.is_live() or not _active(request.user):
            return False
        request.consent_grant = grant
        return True

    # Issuing tokens.

    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> None:
        grant: Grant | None = getattr(request, "consent_grant", None)
        if grant is not None:
            remaining = int((grant.ends_at - timezone.now()).total_seconds())
            token["expires_in"] = max(1, min(int(token.get("expires_in", remaining)), remaining))
        super().save_bearer_token(token, request, *args, **kwargs)
        services.token_event_record(
            event="token.refreshed" if request.grant_type == "refresh_token" else "token.issued",
            client=request.client,
            grant=grant,
            scopes=token["scope"].split(),
        )

    def _create_access_token(
        self, expires: Any, request: Any, token: dict[str, Any], source_refresh_token: Any = None
    ) -> Any:
        grant: Grant | None = getattr(request, "consent_grant", None)
        if grant is not None:
            expires = min(expires, grant.ends_at)
        access_token = super()._create_access_token(expires, request, token, source_refresh_token)
        if grant is not None:
            access_token.grant = grant
            access_token.save(update_fields=["grant"])
        return access_token

    def _create_refresh_token(
        self, request: Any, refresh_token_code: str, access_token: Any, previous_refresh_token: Any
    ) -> Any:
        refresh_token = super()._create_refresh_token(
            request, refresh_token_code, access_token, previous_refresh_token
        )
        refresh_token.grant = getattr(request, "consent_grant", None)
        refresh_token.save(update_fields=["grant"])
        return refresh_token

    def revoke_token(
        self, token: str, token_type_hint: str | None, request: Any, *args: Any, **kwargs: Any
    ) -> None:
        with transaction.atomic():
            digest = checksum(token)
            access = AccessToken.objects.filter(token_checksum=digest).select_related("grant").first()
            refresh = (
                RefreshToken.objects.filter(token_checksum=digest, revoked__isnull=True)
                .select_related("grant")
                .first()
            )
            super().revoke_token(token, token_type_hint, request, *args, **kwargs)
            for revoked in (access, refresh):
                if revoked is not None:
                    services.token_event_record(
                        event="token.revoked", client=revoked.application, grant=revoked.grant, scopes=[]
                    )


class BearerAuthentication(OAuth2Authentication):
    """DOT's DRF authentication for a bearer token, without building an oauthlib request.

    It runs what DOT's resource endpoint runs: the token from the Authorization header alone
    (RFC 6750 §2.1; never from the query string, RFC 9700 §4.3.2), then the validator's
    validate_bearer_token (the token, its expiry, its grant, its app). Extracting the URI,
    headers and body into oauthlib's request cost a third as much as the token lookup itself,
    on every API request.
    """

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        if request is None or "access_token" in request.query_params:
            return None
        token = get_token_from_header(
            SimpleNamespace(headers={"Authorization": request.META.get("HTTP_AUTHORIZATION", "")})
        )
        if not token:
            return None
        checked = SimpleNamespace(uri=request.build_absolute_uri())
        if GrantValidator().validate_bearer_token(token, [], checked):
            return checked.user, checked.access_token
        request.oauth2_error = getattr(checked, "oauth2_error", {})
        return None
