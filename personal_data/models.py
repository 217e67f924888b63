"""The person's encrypted store.

Each record row holds its content as one AES-256-GCM ciphertext (`payload`, a JSON document
sealed under the owner's data key). Only what must be queried stays in clear: owner, id,
the date used for range filters, the `shared`/`is_gift` flags, `source`, keyed blind indexes
and row times. docs/security.md lists the leakage this accepts.
"""

from __future__ import annotations

import uuid
from typing import ClassVar, Self

from django.conf import settings
from django.db import models
from django.utils import timezone


class PersonKey(models.Model):
    """A person's keys, each stored only wrapped. Deleting the row shreds the store.

    The data key is wrapped by a key derived from the person's password (Argon2id, parameters in
    `password_kdf`) and by their recovery code; nothing the operator holds opens it. Accounts made
    before person-held keys still have it wrapped by a master key (`master_key_id`,
    `wrapped_key`) until their next sign-in moves it (docs/security.md, "People hold the key").
    The X25519 key pair lets the server seal writes to the person while they are away: the
    public half in clear, the private half sealed under the data key.
    """

    person = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="data_key"
    )
    # Legacy wrap by a master key: empty once the person holds their key.
    master_key_id = models.CharField(max_length=32, db_index=True, blank=True)
    wrapped_key = models.BinaryField(null=True)
    password_kdf = models.CharField(max_length=128, blank=True)
    password_wrap = models.BinaryField(null=True)
    recovery_wrap = models.BinaryField(null=True)
    public_key = models.BinaryField(max_length=32, null=True)
    private_wrap = models.BinaryField(null=True)
    # Random per person; pseudonyms derive from it, so erasing it unlinks them for good.
    pseudonym_salt = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    rewrapped_at = models.DateTimeField(null=True, blank=True)
    # When every record of the store was last known to have its clear due date (ReminderDue).
    # Null for stores made before due dates were kept: the next sign-in fills them in once.
    due_dates_checked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"data key of {self.person_id} under {self.master_key_id}"


class EncryptedRecord(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    payload = models.BinaryField()
    shared = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    # Declared for the type checker only: code that picks a category's model at run time
    # reaches every concrete record model's default manager through the abstract base.
    objects: ClassVar[models.Manager[Self]]

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self._meta.model_name} {self.id}"


class Purchase(EncryptedRecord):
    class Source(models.TextChoices):
        MANUAL = "manual"
        IMPORT = "import"
        VENDOR = "vendor"

    purchased_on = models.DateField()
    is_gift = models.BooleanField(default=False)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    gtin_index = models.BinaryField(max_length=16, null=True)
    lot_index = models.BinaryField(max_length=16, null=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # The person's lists: newest first by date, a keyset page is one range scan.
            models.Index(fields=["owner", "-purchased_on", "-created_at", "-id"], name="purchase_owner_list"),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="purchase_owner_created"),
            models.Index(fields=["gtin_index"], name="purchase_gtin_index"),
        ]


class ClosetItem(EncryptedRecord):
    acquired_on = models.DateField(null=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # The person's lists: newest first by date, a keyset page is one range scan.
            models.Index(fields=["owner", "-acquired_on", "-created_at", "-id"], name="closet_owner_list"),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="closet_owner_created"),
        ]


class Appliance(EncryptedRecord):
    purchased_on = models.DateField(null=True)
    gtin_index = models.BinaryField(max_length=16, null=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # The person's lists: newest first by date, a keyset page is one range scan.
            models.Index(
                fields=["owner", "-purchased_on", "-created_at", "-id"], name="appliance_owner_list"
            ),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="appliance_owner_created"),
            models.Index(fields=["gtin_index"], name="appliance_gtin_index"),
        ]


class Prescription(EncryptedRecord):
    prescribed_on = models.DateField(null=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            # The person's lists: newest first by date, a keyset page is one range scan.
            models.Index(
                fields=["owner", "-prescribed_on", "-created_at", "-id"], name="prescription_owner_list"
            ),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="prescription_owner_created"),
        ]


class Preferences(models.Model):
    """One encrypted preferences document per person."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    payload = models.BinaryField()
    # The contact choices ({"email", "safety_alerts_only"}) in clear as well: recall alerts and
    # reminders are sent while the person is away, when the sealed document cannot be opened.
    contact = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"preferences of {self.owner_id}"


class AwaitingRewrap(models.Model):
    """A record written while its owner was away, sealed to their public key until they sign in."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    category = models.CharField(max_length=16)
    record_id = models.UUIDField()

    def __str__(self) -> str:
        return f"{self.category} {self.record_id} awaiting its owner"


class Share(models.Model):
    """Copies of some of a person's records sealed under a key of their own, for one reader.

    The store knows nothing of consent: a share is described by plain filters (categories,
    gifts, the earliest date, named records), and consent keeps one per live grant. The share
    key is wrapped by a master key so vendor reads work while the person is away; deleting the
    share destroys the key and every copy at once.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    master_key_id = models.CharField(max_length=32, db_index=True)
    wrapped_key = models.BinaryField()
    categories = models.JSONField(default=list)
    include_gifts = models.BooleanField(default=False)
    since = models.DateField(null=True)
    record_ids = models.JSONField(null=True)
    # False while a share made without the person's key waits for their next sign-in.
    filled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"share {self.pk} of {self.owner_id}"


class SharedCopy(models.Model):
    """One record (or the preferences document) as a share's reader may see it.

    The payload is the record's whole document, sealed under the share key and bound to the
    share, category and record. The clear columns repeat the record's own (its date, when it
    was stored, its blind GTIN index, the gift flag) so reads filter and page without opening.
    """

    share = models.ForeignKey(Share, on_delete=models.CASCADE, related_name="copies")
    category = models.CharField(max_length=16)
    record_id = models.UUIDField()
    payload = models.BinaryField()
    date = models.DateField(null=True)
    created_at = models.DateTimeField()
    gtin_index = models.BinaryField(max_length=16, null=True)
    is_gift = models.BooleanField(default=False)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["share", "category", "record_id"], name="one_copy_per_record"),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["share", "category", "-created_at", "-record_id"], name="copy_page"),
        ]

    def __str__(self) -> str:
        return f"copy of {self.category} {self.record_id} in {self.share_id}"


class PendingImport(models.Model):
    """A validated import waiting for the person's confirmation, sealed like any record."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    payload = models.BinaryField()
    counts = models.JSONField(default=dict)
    filename = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"pending import {self.pk}"


class RetiredStore(models.Model):
    """A store its owner could not open after a password reset and set aside for a new one.

    Its records stay sealed as they were, under the old data key, which only the old recovery
    code opens (`recovery_wrap`, `private_wrap` are the old key row's). Until `destroy_after`
    the person may bring them back with that code; then `destroy_retired_stores` deletes the
    wraps and every record, and nothing can open them again.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    recovery_wrap = models.BinaryField(null=True)
    private_wrap = models.BinaryField(null=True)
    record_count = models.PositiveIntegerField(default=0)
    retired_at = models.DateTimeField(default=timezone.now)
    destroy_after = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"store of {self.owner_id} set aside until {self.destroy_after:%Y-%m-%d}"


class RetiredRecord(models.Model):
    """One record (or the preferences document) of a retired store, sealed as it was.

    `columns` keeps the clear columns that are not derived from the content (shared, the flags,
    source, row times), so that a restored record is the same record.
    """

    store = models.ForeignKey(RetiredStore, on_delete=models.CASCADE, related_name="records")
    category = models.CharField(max_length=16)
    record_id = models.UUIDField()
    payload = models.BinaryField()
    columns = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"retired {self.category} {self.record_id}"


class ReminderKind(models.TextChoices):
    REFILL = "refill", "Refill due"
    WARRANTY = "warranty", "Warranty ending"
    GRANT_ENDING = "grant_ending", "Grant ending"
    GRANT_SUMMARY = "grant_summary", "Grant summary"
    # What an operator did to a vendor the person granted access to (vendors/suspensions.py).
    VENDOR_SUSPENDED = "vendor_suspended", "Vendor suspended"
    VENDOR_RESUMED = "vendor_resumed", "Vendor resumed"
    VENDOR_ENDED = "vendor_ended", "Vendor ended"


class ReminderDue(models.Model):
    """When one of a person's records falls due (a refill, a warranty's end), in clear.

    The record itself is sealed under a key only the person holds, so the date is worked out
    whenever the record is written with their key and kept here for the reminder run that
    happens while they are away. It says a date and a record id, never what the record is.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    record_id = models.UUIDField()
    due_on = models.DateField()

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["owner", "kind", "record_id"], name="one_due_date_per_record"),
        ]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["kind", "due_on"], name="due_by_date")]

    def __str__(self) -> str:
        return f"{self.kind} of {self.record_id} due {self.due_on}"


class Reminder(models.Model):
    """A reminder in a person's inbox. It names its subject (a record or grant id) and period,
    never content: the page opens the person's own record or grant to say what it is about.

    (owner, kind, subject, period) is unique, so a reminder run that repeats or overlaps another
    cannot make the same reminder twice.
    """

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=ReminderKind.choices)
    subject = models.CharField(max_length=64)
    period = models.CharField(max_length=32)
    due_on = models.DateField(null=True)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(
                fields=["owner", "kind", "subject", "period"], name="one_reminder_per_period"
            ),
        ]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["owner", "-created_at"], name="reminder_inbox"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} reminder {self.pk} of {self.owner_id}"
