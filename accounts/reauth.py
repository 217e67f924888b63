"""Re-authentication: some acts need the password again within the last 10 minutes."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

SESSION_KEY = "vrm_password_confirmed_at"
WINDOW_SECONDS = 10 * 60


def password_confirmed(request: HttpRequest) -> None:
    request.session[SESSION_KEY] = timezone.now().timestamp()


def recently_confirmed(request: HttpRequest) -> bool:
    at = request.session.get(SESSION_KEY)
    return at is not None and timezone.now().timestamp() - float(at) < WINDOW_SECONDS


def reauth_redirect(request: HttpRequest, next_url: str | None = None) -> HttpResponse:
    return redirect(f"{reverse('reauth')}?{urlencode({'next': next_url or request.get_full_path()})}")


def recent_password_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Ask for the password again unless it was given in the last 10 minutes."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not recently_confirmed(request):
            return reauth_redirect(request)
        return view(request, *args, **kwargs)

    return wrapped


@receiver(user_logged_in)
def _mark_login(sender: type[AbstractBaseUser], request: HttpRequest | None, **kwargs: Any) -> None:
    # Logging in is giving the password: it counts as a fresh confirmation.
    if request is not None and hasattr(request, "session"):
        password_confirmed(request)
