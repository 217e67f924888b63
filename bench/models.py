"""The benchmark's yardstick table: purchases kept in clear, as a store without encryption would."""

from __future__ import annotations

import uuid

from django.db import models


class ClearPurchase(models.Model):
    """One purchase in plain columns, the fields of a purchase document (INTERFACES.md §6)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    merchant = models.CharField(max_length=200)
    product_name = models.CharField(max_length=300)
    brand = models.CharField(max_length=200, blank=True)
    gtin = models.CharField(max_length=14, blank=True)
    sku = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=100, blank=True)
    quantity = models.PositiveIntegerField(default=1)
    unit_price = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    currency = models.CharField(max_length=3, blank=True)
    lot = models.CharField(max_length=100, blank=True)
    purchased_on = models.DateField()
    order_ref = models.CharField(max_length=100, blank=True)
    is_gift = models.BooleanField(default=False)
    shared = models.BooleanField(default=True)
    source = models.CharField(max_length=10)
    source_vendor = models.CharField(max_length=200, blank=True)
    notes = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"clear purchase {self.id}"
