"""The yardsticks for bench/api.py: plain DRF lists of 50 unencrypted rows, nothing else.

No authentication, no permission check, no throttle, no decryption, no ledger entry: what a
typical ModelSerializer endpoint costs on the same server. Mounted only by bench.urls.

- ClearPurchaseList serves the very purchases the API's page shows, stored in clear columns
  (bench.models): the like-for-like comparison, and the one the target is measured against.
- LedgerEntryList serves 50 ledger entries, the yardstick of the runs before that table
  existed. Most are access entries listing 50 record ids each, so its rows are six times the
  size of a purchase (111 kB against 19 kB a page) and flatter the API; it is reported beside.
"""

from __future__ import annotations

from typing import Any

from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny

from audit.models import LedgerEntry
from bench.models import ClearPurchase

ROWS = 50


class _PlainList(generics.ListAPIView):  # type: ignore[type-arg]
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    pagination_class = None


class ClearPurchaseSerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = ClearPurchase
        fields = "__all__"


class ClearPurchaseList(_PlainList):
    serializer_class = ClearPurchaseSerializer

    def get_queryset(self) -> Any:
        return ClearPurchase.objects.order_by("id")[:ROWS]


class LedgerEntrySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = LedgerEntry
        fields = "__all__"


class LedgerEntryList(_PlainList):
    serializer_class = LedgerEntrySerializer

    def get_queryset(self) -> Any:
        return LedgerEntry.objects.order_by("id")[:ROWS]
