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
    """A person's data key, stored only wrapped by a master key. Deleting it shreds the store."""

    person = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="data_key"
    )
    master_key_id = models.CharField(max_length=32, db_index=True)
    wrapped_key = models.BinaryField()
    # Random per person; pseudonyms derive from it, so erasing it unlinks them for good.
    pseudonym_salt = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

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
            models.Index(fields=["owner", "purchased_on"], name="purchase_owner_date"),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="purchase_owner_created"),
            models.Index(fields=["gtin_index"], name="purchase_gtin_index"),
        ]


class ClosetItem(EncryptedRecord):
    acquired_on = models.DateField(null=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["owner", "acquired_on"], name="closet_owner_date"),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="closet_owner_created"),
        ]


class Appliance(EncryptedRecord):
    purchased_on = models.DateField(null=True)
    gtin_index = models.BinaryField(max_length=16, null=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["owner", "purchased_on"], name="appliance_owner_date"),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="appliance_owner_created"),
            models.Index(fields=["gtin_index"], name="appliance_gtin_index"),
        ]


class Prescription(EncryptedRecord):
    prescribed_on = models.DateField(null=True)

    class Meta:
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["owner", "prescribed_on"], name="prescription_owner_date"),
            # The vendor API pages newest-stored first.
            models.Index(fields=["owner", "-created_at", "-id"], name="prescription_owner_created"),
        ]


class Preferences(models.Model):
    """One encrypted preferences document per person."""

    owner = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    payload = models.BinaryField()
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "preferences"

    def __str__(self) -> str:
        return f"preferences of {self.owner_id}"


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
