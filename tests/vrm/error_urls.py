"""The site's URLs plus views that fail on purpose, for the error-page tests."""

from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.urls import path

from vrm.urls import handler404, handler500
from vrm.urls import urlpatterns as site_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


def bad(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation("a test request that makes no sense")


def refused(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied


def broken(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a fault in the code")


urlpatterns = [
    path("test-errors/400/", bad),
    path("test-errors/403/", refused),
    path("test-errors/500/", broken),
    path("api/v1/test-errors/500/", broken),
    *site_urlpatterns,
]
