"""Vendor organisations, their staff, and their OAuth applications."""

from __future__ import annotations

import re
import unicodedata
import uuid
from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from oauth2_provider.models import AbstractApplication
from oauthlib.common import Request as OauthlibRequest

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost"})


def redirect_uri_problem(uri: str) -> str | None:
    """Say what is wrong with a redirect URI, or None: https, or http on loopback only."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 (raises ValueError on a malformed port)
    except ValueError:
        return "this is not a valid URL"
    if parts.fragment or "#" in uri:
        return "a redirect URI cannot have a fragment"
    if "@" in parts.netloc:
        return "a redirect URI cannot contain a user name or password"
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return "use https (http only for http://127.0.0.1 or http://localhost during development)"


NAME_KEY_MAX_LENGTH = 255

# Unicode's Default_Ignorable_Code_Point property (DerivedCoreProperties.txt, unchanged from
# Unicode 14 to 16): characters a renderer shows as nothing when it has no glyph for them, so
# "Acme Shop\u034f" looks like "Acme Shop". Python's unicodedata lacks the property, hence the
# ranges here; vendors/migrations/0009 holds a copy (a migration never imports app code).
#   00AD soft hyphen; 034F combining grapheme joiner; 061C Arabic letter mark;
#   115F..1160 Hangul choseong/jungseong fillers; 17B4..17B5 Khmer inherent vowels;
#   180B..180F Mongolian variation selectors and vowel separator; 200B..200F zero-width
#   space/(non-)joiner and direction marks; 202A..202E direction embeddings and overrides;
#   2060..206F word joiner, invisible operators, isolates (2065 reserved); 3164 Hangul filler;
#   FE00..FE0F variation selectors 1-16; FEFF zero-width no-break space; FFA0 half-width
#   Hangul filler; FFF0..FFF8 reserved; 1BCA0..1BCA3 shorthand format controls;
#   1D173..1D17A musical beam and phrase controls; E0000..E0FFF tags, variation selectors
#   17-256 and reserved.
DEFAULT_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f-\u1160\u17b4-\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    "\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# Shown as a blank by many fonts (the Hangul fillers, though ignorable, often as a wide one;
# the Braille blank is not even ignorable): counted as a space, so "Acme\u3164Shop" is
# "Acme Shop" and not "AcmeShop".
BLANKS = re.compile("[\u115f\u1160\u3164\uffa0\u2800]")


def organisation_name_key(name: str) -> str:
    """Return the form of an organisation's name that no two organisations may share.

    Unicode NFKC with case folding (full-width and ligature letters become plain ones, case is
    ignored), format characters (Cf) and every default-ignorable code point dropped (zero-width
    spaces, the combining grapheme joiner, variation selectors, Hangul fillers: nothing a
    reader sees), and any run of whitespace or blanks made one space: "ACME  Shop",
    "acme shop", "Ａｃｍｅ Shop" and "Acme Shop\u034f" are one name.
    """
    text = unicodedata.normalize("NFKC", name)
    text = unicodedata.normalize("NFKC", _drop_invisible(text).casefold())
    # Once more: case folding and NFKC might make an ignorable character of a visible one.
    text = _drop_invisible(text)
    # NFKC can lengthen a name several times over; names alike that far are one name anyway.
    return " ".join(text.split())[:NAME_KEY_MAX_LENGTH]


def _drop_invisible(text: str) -> str:
    text = BLANKS.sub(" ", text)
    return DEFAULT_IGNORABLE.sub("", "".join(c for c in text if unicodedata.category(c) != "Cf"))


class NameKeyField(models.CharField):  # type: ignore[type-arg]
    """The organisation's name key, derived from `name` on every save, as auto_now derives a time.

    Migrations see a plain CharField (deconstruct), so they never import this module.
    """

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = organisation_name_key(model_instance.name)  # type: ignore[attr-defined]
        setattr(model_instance, self.attname, value)
        return value

    def deconstruct(self) -> Any:
        name, _path, args, kwargs = super().deconstruct()
        return name, "django.db.models.CharField", args, kwargs


class Organisation(models.Model):
    """A vendor: the controller named on consent receipts. Operators verify it in the admin."""

    class Standing(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"
        ENDED = "ended", "Ended"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    # Unique: a second "Acme Shop" (or "ACME  shop", "Ａｃｍｅ Shop") cannot pass for the first.
    name_key = NameKeyField(max_length=NAME_KEY_MAX_LENGTH, editable=False)
    website = models.URLField(max_length=200)
    privacy_contact = models.EmailField()
    description = models.CharField(max_length=500, blank=True)
    verified = models.BooleanField(default=False)
    # MyTerms roster ids (consent/terms.py) the organisation accepts; public.
    accepted_terms = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set by an operator holding vendors.suspend_organisation (vendors/suspensions.py). A suspended
    # organisation's tokens fail and it gets no new grants; its grants wait to resume. An ended
    # one's grants are revoked. The reason is shown to the vendor and to the people affected.
    standing = models.CharField(max_length=10, choices=Standing.choices, default=Standing.ACTIVE)
    standing_reason = models.CharField(max_length=500, blank=True)
    standing_changed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["name"]
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["name_key"], name="organisation_name_unique"),
        ]
        permissions = [  # noqa: RUF012 (django-stubs types it as Meta's own)
            ("suspend_organisation", "Can suspend, resume or end a vendor organisation"),
        ]

    def __str__(self) -> str:
        return self.name

    def halted(self) -> bool:
        """Whether the operator has suspended or ended the organisation: its tokens do nothing."""
        return self.standing != self.Standing.ACTIVE

    def halt_notice(self) -> str:
        """What the vendor is told on each refused request: what the operator did, and why."""
        what = "ended" if self.standing == self.Standing.ENDED else "suspended"
        reason = f": {self.standing_reason}" if self.standing_reason else "."
        return f"The operator has {what} this organisation{reason}"


class Membership(models.Model):
    """A vendor-staff account belongs to one organisation."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vendor_membership"
    )
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="members")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.user_id} at {self.organisation_id}"


class Application(AbstractApplication):
    """An OAuth client of an organisation, with the scopes it may ask for and why."""

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="apps")
    # The scopes this app may request; the consent page shows each with its purpose.
    scopes = models.JSONField(default=list)
    scope_purposes = models.JSONField(default=dict, blank=True)
    # Scopes the app cannot work without: the only ones pre-ticked (never a sensitive one).
    required_scopes = models.JSONField(default=list, blank=True)

    class Meta(AbstractApplication.Meta):
        swappable = "OAUTH2_PROVIDER_APPLICATION_MODEL"

    def get_allowed_schemes(self) -> list[str]:
        # http passes DOT's scheme check only so loopback URIs can; clean() refuses the rest.
        return ["https", "http"]

    def clean(self) -> None:
        super().clean()
        problems = [uri for uri in self.redirect_uris.split() if redirect_uri_problem(uri)]
        if problems:
            raise ValidationError(
                {"redirect_uris": [f"{uri}: {redirect_uri_problem(uri)}" for uri in problems]}
            )

    def redirect_uri_allowed(self, uri: str) -> bool:
        """Allow only an exact, character-for-character match with a registered URI."""
        return uri in self.redirect_uris.split()

    def is_usable(self, request: OauthlibRequest) -> bool:
        return True

    def purpose_of(self, scope: str) -> str:
        return str(self.scope_purposes.get(scope, ""))


class IdempotencyKey(models.Model):
    """A vendor write already done under an Idempotency-Key: a retry gets the first response again.

    A keyed hash of the request body, the record id, and the first response sealed under the
    person's data key (bound to this table and the record id): a replay answers what the vendor
    was told then, never the record as it is now (hidden since, or with the person's notes).
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    request_hash = models.CharField(max_length=64)
    record_id = models.UUIDField()
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    # Empty for keys stored before responses were kept: those cannot be replayed (a 409).
    response = models.BinaryField(default=b"")

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["application", "key"], name="idempotency_key_per_app"),
        ]

    def __str__(self) -> str:
        return f"idempotency key of {self.application_id}"


class Recall(models.Model):
    """A product recall published by an organisation. Public content, no personal data."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        MATCHING = "matching"
        DONE = "done"

    class Severity(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        DANGER = "danger"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="recalls")
    application = models.ForeignKey(Application, on_delete=models.SET_NULL, null=True, related_name="+")
    title = models.CharField(max_length=200)
    message = models.TextField(max_length=5000)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    gtins = models.JSONField()
    lots = models.JSONField(default=list, blank=True)
    purchased_from = models.DateField(null=True, blank=True)
    purchased_to = models.DateField(null=True, blank=True)
    remedy_url = models.URLField(max_length=500)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    matched_people = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def remedy_host(self) -> str:
        """Where the remedy link leads, as people should read it: an international name in its
        ASCII (xn--) form, so a look-alike of a known shop's domain does not pass for it."""
        try:
            host = urlsplit(self.remedy_url).hostname or ""
        except ValueError:
            return ""
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:  # a label IDNA 2003 refuses: show it as it is
            return host


class Alert(models.Model):
    """A recall that matched a person's own records: one per person per recall."""

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    recall = models.ForeignKey(Recall, on_delete=models.CASCADE, related_name="alerts")
    # Ids of the matched records, per category ({"purchases": [...], "appliances": [...]}): no content.
    matched = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)
    contact_grant = models.ForeignKey(
        "consent.Grant", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["person", "recall"], name="one_alert_per_person_per_recall"),
        ]

    def __str__(self) -> str:
        return f"alert {self.pk}"


class Message(models.Model):
    """A vendor's message in a person's inbox (messages:send): personal data, sealed to the person.

    Its words (title, body, link) are sealed to the person's public key as the vendor posts them,
    so the server cannot read them without the person; the clear columns hold only what the
    allowance, the inbox and the auditors' counts need.
    """

    class Kind(models.TextChoices):
        OFFER = "offer", "Offer"
        NOTICE = "notice", "Notice"
        THANKS = "thanks", "Thank you"

    class Answer(models.TextChoices):
        INTERESTED = "interested", "Interested"
        NOT_INTERESTED = "not_interested", "Not interested"

    class ReportReason(models.TextChoices):
        SPAM = "spam", "Spam or too many messages"
        MISLEADING = "misleading", "Misleading or a scam"
        OFFENSIVE = "offensive", "Offensive or abusive"
        NOT_ASKED = "not_asked", "Not what I agreed to receive"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    grant = models.ForeignKey("consent.Grant", on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="+")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    # {"title", "body", "link"} sealed to the person's public key (personal_data.store).
    payload = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    response = models.CharField(max_length=16, choices=Answer.choices, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    reported_at = models.DateTimeField(null=True, blank=True)
    report_reason = models.CharField(max_length=16, choices=ReportReason.choices, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [
            # The weekly allowance counts a grant's messages of the last 7 days.
            models.Index(fields=["grant", "created_at"], name="message_grant_window"),
            models.Index(fields=["person", "-created_at"], name="message_inbox"),
        ]

    def __str__(self) -> str:
        return f"message {self.pk}"

    def is_expired(self, at: Any = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (at or timezone.now())


# Intentcasting (issue #17): a person says what they want; subscribed, verified organisations offer.


class Intent(models.Model):
    """What a person wants, for a while. Vendors see it under its random `id`, never the owner.

    `ledger_ref` names the intent in the person's ledger entries instead of `id`, so the ids
    vendors hold and the entries auditors read have nothing in common (docs/vendors.md).
    """

    class Kind(models.TextChoices):
        PURCHASE = "purchase"
        CLOTHING = "clothing"
        APPLIANCE = "appliance"
        SERVICE = "service"

    class Status(models.TextChoices):
        OPEN = "open"
        WITHDRAWN = "withdrawn"
        EXPIRED = "expired"
        CLOSED = "closed"  # an offer was accepted

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ledger_ref = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="intents")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    title = models.CharField(max_length=120)
    details = models.JSONField(default=dict, blank=True)
    price_min = models.DecimalField(max_digits=12, decimal_places=2)
    price_max = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    country = models.CharField(max_length=2)
    postcode_prefix = models.CharField(max_length=3, blank=True)
    ends_at = models.DateTimeField()
    terms = models.CharField(max_length=40, blank=True)  # a roster id, or "" for none
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    # The API's keyset order and `since`: a change shows the intent to pollers again.
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # GET /api/v1/intents: open intents newest first, read by keyset position.
            models.Index(
                fields=["-updated_at", "-id"],
                condition=models.Q(status="open"),
                name="intent_open_newest",
            ),
            # The same for narrow filters (a rare kind in a small country), which the newest-first
            # scan would have to read most of the table to fill a page.
            models.Index(
                fields=["kind", "country", "-updated_at", "-id"],
                condition=models.Q(status="open"),
                name="intent_open_match",
            ),
            models.Index(fields=["status", "ends_at"], name="intent_status_ends"),
        ]

    def __str__(self) -> str:
        return f"intent {self.pk}"


class Offer(models.Model):
    """An organisation's answer to an intent: one per organisation, amended in place."""

    class Status(models.TextChoices):
        OPEN = "open"
        ACCEPTED = "accepted"
        DECLINED = "declined"
        EXPIRED = "expired"
        WITHDRAWN = "withdrawn"  # the person withdrew the intent

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="offers")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="offers")
    application = models.ForeignKey(Application, on_delete=models.SET_NULL, null=True, related_name="+")
    price = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    description = models.TextField(max_length=2000)
    link = models.URLField(max_length=500)
    valid_until = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    amended_at = models.DateTimeField(null=True, blank=True)
    # When the person last looked at it (the inbox's unread mark); an amendment makes it new again.
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["created_at"]
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["intent", "organisation"], name="one_offer_per_organisation"),
        ]

    def __str__(self) -> str:
        return f"offer {self.pk}"


class IntentFilter(models.Model):
    """One (kind, country) an organisation subscribes to; country "" stands for every country.

    Rows rather than lists on Organisation: matching a new intent is one index lookup on
    (kind, country), on SQLite as on PostgreSQL.
    """

    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="intent_filters")
    kind = models.CharField(max_length=10, choices=Intent.Kind.choices)
    country = models.CharField(max_length=2, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["kind", "country"], name="intent_filter_match"),
        ]
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["organisation", "kind", "country"], name="intent_filter_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.kind} {self.country or '*'}"


class IntentWebhook(models.Model):
    """Where an application wants new matching intents pushed, and the secret that signs them.

    The secret must be readable to sign (HMAC), unlike a client secret, which is hashed; it is
    shown to the vendor once and never again.
    """

    application = models.OneToOneField(Application, on_delete=models.CASCADE, related_name="intent_webhook")
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook of {self.application_id}"


class WebhookDelivery(models.Model):
    """One intent pushed to one webhook: attempts with exponential backoff, then done or failed."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    webhook = models.ForeignKey(IntentWebhook, on_delete=models.CASCADE, related_name="deliveries")
    intent = models.ForeignKey(Intent, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk}"


# Abuse (issue #20): people report a vendor, auditors review vendors and open cases.


class Report(models.Model):
    """A person's report about a vendor: personal data, sealed to the person.

    Auditors see that it exists, its reason and the organisation, never the person. Its words are
    sealed to the person's public key; a copy in clear is kept only when the person chose to share
    the report with the reviewers, and then the reviewers read those words and nothing else.
    """

    class Reason(models.TextChoices):
        OVERREACH = "overreach", "Reads more than it needs"
        SPAM = "spam", "Spam"
        MISLEADING = "misleading", "Not what it said"
        OTHER = "other", "Something else"

    class Source(models.TextChoices):
        GRANT = "grant", "A grant"
        ACCESS = "access", "An access to my data"
        MESSAGE = "message", "A message"
        ALERT = "alert", "A recall alert"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="reports")
    source = models.CharField(max_length=10, choices=Source.choices)
    # The grant, ledger entry, message or alert the report was made from; shown to the person only.
    source_ref = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=12, choices=Reason.choices)
    # {"text"} sealed to the person's public key (personal_data.store); empty when no words.
    payload = models.BinaryField(blank=True, default=b"")
    shared = models.BooleanField(default=False)
    shared_text = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["organisation", "-created_at"], name="report_by_organisation"),
            models.Index(fields=["person", "-created_at"], name="report_by_person"),
        ]

    def __str__(self) -> str:
        return f"report {self.pk}"


class Case(models.Model):
    """An auditor's review of one organisation, opened with a written finding."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.CASCADE, related_name="cases")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(default=timezone.now)
    # The auditor's own words about the vendor's conduct: never about a person.
    finding = models.TextField(max_length=5000)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.OPEN)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.TextField(max_length=5000, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-opened_at"]

    def __str__(self) -> str:
        return f"case {self.pk} on {self.organisation_id}"
