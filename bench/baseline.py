"""The yardstick for bench/api.py: a plain DRF list of 50 unencrypted rows, nothing else.

No authentication, no permission check, no throttle, no decryption, no ledger entry: what a
typical ModelSerializer endpoint costs on the same server. It reads existing ledger entries
(a table in clear, with no migration of its own) and is mounted only by bench.urls.
"""

from __future__ import annotations

from typing import Any

from rest_framework import generics, serializers
from rest_framework.permissions import AllowAny

from audit.models import LedgerEntry

ROWS = 50


class LedgerEntrySerializer(serializers.ModelSerializer):  # type: ignore[type-arg]
    class Meta:
        model = LedgerEntry
        fields = "__all__"


class BaselineList(generics.ListAPIView):  # type: ignore[type-arg]
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    pagination_class = None
    serializer_class = LedgerEntrySerializer

    def get_queryset(self) -> Any:
        return LedgerEntry.objects.order_by("id")[:ROWS]
