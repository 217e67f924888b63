"""Grants (a person's consent to one vendor app), their receipts, and the OAuth tokens.

The OAuth token models are django-oauth-toolkit's, swapped so every token and authorization
code points at the grant it was issued under. A token is only as good as its grant: a revoked,
expired or ended grant makes every token of it fail on the next request (`is_expired`), and
narrowing the grant narrows every token at once (`allow_scopes`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from oauth2_provider.models import AbstractAccessToken, AbstractGrant, AbstractIDToken, AbstractRefreshToken


class Grant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        REVOKED = "revoked"
        EXPIRED = "expired"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grants")
    application = models.ForeignKey(
        settings.OAUTH2_PROVIDER_APPLICATION_MODEL, on_delete=models.CASCADE, related_name="grants"
    )
    scopes = models.JSONField(default=list)
    # The purpose of each scope as the vendor declared it when the person agreed.
    purposes = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    starts_at = models.DateTimeField(default=timezone.now)
    ends_at = models.DateTimeField()
    history_months = models.PositiveSmallIntegerField(null=True, blank=True)
    include_gifts = models.BooleanField(default=False)
    # A one-off grant (recall answers) may be limited to named records.
    record_ids = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_by = models.CharField(max_length=20, blank=True)
    end_reason = models.CharField(max_length=120, blank=True)
    amended_at = models.DateTimeField(null=True, blank=True)
    # How many messages (messages:send) the vendor may post a week: null is the default
    # allowance (vendors.messages.WEEKLY_ALLOWANCE), 0 mutes it; the person may only lower it.
    messages_allowance = models.PositiveSmallIntegerField(null=True, blank=True)
    # What the vendor may read, copied under a key of the grant's own (personal_data.shares);
    # destroyed with the key when the grant ends, so nothing of it can be opened afterwards.
    share = models.OneToOneField(
        "personal_data.Share", on_delete=models.SET_NULL, null=True, blank=True, related_name="grant"
    )
    # The MyTerms agreement the grant's latest consent was made under (None: no terms).
    agreement = models.ForeignKey(
        "consent.TermsAgreement", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["person", "application"],
                condition=Q(status="active"),
                name="one_active_grant_per_person_and_app",
            ),
        ]

    def __str__(self) -> str:
        return f"grant {self.pk} ({self.status})"

    def is_live(self, at: dt.datetime | None = None) -> bool:
        """Return whether the grant is active and has not reached its end."""
        now = at or timezone.now()
        return self.status == self.Status.ACTIVE and self.starts_at <= now < self.ends_at

    def allows(self, scopes: Iterable[str]) -> bool:
        return set(scopes) <= set(self.scopes)


class Receipt(models.Model):
    """A signed consent receipt for one state change of a grant (JWS, EdDSA)."""

    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="receipts")
    number = models.PositiveIntegerField()
    event = models.CharField(max_length=10)
    issued_at = models.DateTimeField(default=timezone.now)
    document = models.JSONField()
    jws = models.TextField()

    class Meta:
        ordering: ClassVar[list[str]] = ["grant", "number"]
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["grant", "number"], name="receipt_number_per_grant"),
        ]

    def __str__(self) -> str:
        return f"receipt {self.number} of {self.grant_id}"


class AuthorizationCode(AbstractGrant):
    """DOT's authorization code, bound to the consent grant the person just gave."""

    consent_grant = models.ForeignKey(Grant, on_delete=models.CASCADE, null=True, related_name="+")

    class Meta(AbstractGrant.Meta):
        swappable = "OAUTH2_PROVIDER_GRANT_MODEL"

    def redirect_uri_allowed(self, uri: str) -> bool:
        return uri == self.redirect_uri


class SpentCode(models.Model):
    """An authorization code already exchanged: a second use is a replay."""

    code_checksum = models.CharField(max_length=64, unique=True)
    consent_grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="+")
    spent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"spent code of {self.consent_grant_id}"


class AccessToken(AbstractAccessToken):
    grant = models.ForeignKey(
        Grant, on_delete=models.CASCADE, null=True, blank=True, related_name="access_tokens"
    )

    class Meta(AbstractAccessToken.Meta):
        swappable = "OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL"

    def is_expired(self) -> bool:
        if super().is_expired():
            return True
        # A person token dies with its grant, whatever its own expiry says.
        if self.grant is not None and not self.grant.is_live():
            return True
        # ...and with its person's account: a deactivated account's tokens fail on the next
        # request and in introspection, and work again only if the account is reactivated.
        # The API's token read loads the person in the same statement (consent.oauth).
        return self.user_id is not None and not getattr(self.user, "is_active", False)

    def allow_scopes(self, scopes: Collection[str]) -> bool:
        if not super().allow_scopes(scopes):
            return False
        # Effective scope = token scopes ∩ the grant's current scopes.
        return self.grant is None or not scopes or self.grant.allows(scopes)

    def effective_scopes(self) -> list[str]:
        own = self.scope.split()
        return own if self.grant is None else [s for s in own if s in self.grant.scopes]


class RefreshToken(AbstractRefreshToken):
    grant = models.ForeignKey(
        Grant, on_delete=models.CASCADE, null=True, blank=True, related_name="refresh_tokens"
    )

    class Meta(AbstractRefreshToken.Meta):
        swappable = "OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL"


class IDToken(AbstractIDToken):
    """Unused (no OpenID Connect); swapped so the token models have no cycle with DOT's app."""

    class Meta(AbstractIDToken.Meta):
        swappable = "OAUTH2_PROVIDER_ID_TOKEN_MODEL"


class TermsChoice(models.Model):
    """The MyTerms agreements a person proffers, and whether a grant may go ahead without one.

    Not sealed: it names only roster ids and organisation ids, no personal content, and the
    consent page must read it even while the person's store is locked (docs/consent.md).
    """

    person = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="terms_choice"
    )
    proffered = models.JSONField(default=list)  # roster ids, most preferred first
    per_vendor = models.JSONField(default=dict)  # organisation id -> roster id
    allow_without_terms = models.BooleanField(default=True)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"terms of {self.person_id}"


class TermsAgreement(models.Model):
    """A signed MyTerms agreement record (IEEE 7012): one of the person's terms, accepted by a
    vendor, for one grant. The person and the vendor retrieve the same signed record."""

    class Made(models.TextChoices):
        ACCEPTED = "accepted"  # the vendor accepts an agreement the person proffered
        ALTERNATIVE = "alternative"  # the person took the one alternative the vendor offered

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    grant = models.ForeignKey(Grant, on_delete=models.CASCADE, related_name="agreements")
    agreement_id = models.CharField(max_length=40)
    agreement_version = models.CharField(max_length=16)
    made = models.CharField(max_length=12, choices=Made.choices)
    made_at = models.DateTimeField(default=timezone.now)
    document = models.JSONField()
    jws = models.TextField()
    # When the vendor's client acknowledged the record through the API (None: not yet).
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-made_at"]

    def __str__(self) -> str:
        return f"agreement {self.agreement_id} {self.agreement_version} under grant {self.grant_id}"
