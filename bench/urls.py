"""vrm's URLs plus the benchmark-only baselines (mounted by bench.settings alone)."""

from django.urls import path

from bench.baseline import ClearPurchaseList, LedgerEntryList
from vrm.urls import urlpatterns as vrm_urlpatterns

urlpatterns = [
    path("bench/baseline", ClearPurchaseList.as_view(), name="bench-baseline"),
    path("bench/baseline-ledger", LedgerEntryList.as_view(), name="bench-baseline-ledger"),
    *vrm_urlpatterns,
]
