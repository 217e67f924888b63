"""vrm's URLs plus the benchmark-only baseline endpoint (mounted by bench.settings alone)."""

from django.urls import path

from bench.baseline import BaselineList
from vrm.urls import urlpatterns as vrm_urlpatterns

urlpatterns = [
    path("bench/baseline", BaselineList.as_view(), name="bench-baseline"),
    *vrm_urlpatterns,
]
