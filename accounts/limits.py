"""Limits on guessing passwords: logins (with django-axes) and password re-confirmation.

- One account from one address: 5 wrong passwords pause that pair for 15 minutes (axes,
  `AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]`). Nobody can lock a person out
  from the person's own address, and a shared address is not locked for every account.
- One address over all accounts: past `VRM_LOGIN_ADDRESS_RATE` failures it is slowed, i.e.
  refused with 429 and Retry-After until its window ends, before any password is checked.
- Re-confirming the password of a signed-in account (re-authentication, account deletion):
  5 wrong passwords per account per 15 minutes, wherever they come from.
- The code of a two-step sign-in counts as a login attempt of its account: a wrong one is a
  failed login for axes and the address slow-down alike, so password and code guesses share
  one count. A code asked again on the account page counts per account, like a password.

All of them key on `core.clients.client_address` and live in the shared cache.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accounts.models import User, email_key
from accounts.twofactor import code_verify
from core.clients import client_address
from core.ratelimits import Limit, limit_count, limit_wait

# Set on a request the slow-down refused, for `lockout_response` (axes hands it the request).
SLOWED_ATTRIBUTE = "vrm_slowed_for"


def _cooloff_seconds() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds())


def login_username(request: HttpRequest, credentials: dict[str, Any] | None) -> str | None:
    """The account a login attempt names, as axes counts it: the key the login looks it up by.

    `Alice@…` and `alice@…` reach one account and must share one count; `email_key` is the
    exact lookup key of logins (accounts/models.py), so no spelling reaches an account under
    another count.
    """
    username = (credentials or {}).get(settings.AXES_USERNAME_FORM_FIELD)
    if username is None:
        username = request.POST.get(settings.AXES_USERNAME_FORM_FIELD) if request is not None else None
    return email_key(username) if isinstance(username, str) else None


def _address_limit(request: HttpRequest) -> Limit:
    return Limit(group="login-failures", key=client_address(request), rate=settings.VRM_LOGIN_ADDRESS_RATE)


class AddressSlowdownBackend:
    """Refuse every login from an address that has failed too often lately, before any hash.

    Like axes's backend it only refuses and never signs anyone in, so it has no `get_user`
    (which would make it the backend of `login()` calls that name none). It flags the request
    as axes does for a lockout, so axes neither counts the refused attempt against the account
    nor lets it through, and its middleware answers with `lockout_response`.
    """

    def authenticate(self, request: HttpRequest | None, **credentials: Any) -> None:
        if request is None:
            return None
        wait = limit_wait(request, _address_limit(request))
        if wait:
            setattr(request, SLOWED_ATTRIBUTE, wait)
            setattr(request, "axes_locked_out", True)  # noqa: B010 (an attribute axes reads)
            raise PermissionDenied("Too many failed logins from this address.")
        return None


def login_allowed(request: HttpRequest, *, username: str) -> bool:
    """Whether a login naming this account may check a password now (no slow-down, no pause)."""
    if limit_wait(request, _address_limit(request)):
        return False
    return bool(AxesProxyHandler.is_allowed(request, {settings.AXES_USERNAME_FORM_FIELD: username}))


def login_refusal(request: HttpRequest, *, username: str) -> HttpResponse | None:
    """The 429 a login step naming this account gets now (address slowed, pair paused), or None."""
    wait = limit_wait(request, _address_limit(request))
    if wait:
        return too_many_attempts(request, wait=wait, reason="address")
    if not AxesProxyHandler.is_allowed(request, {settings.AXES_USERNAME_FORM_FIELD: username}):
        return too_many_attempts(request, wait=_cooloff_seconds(), reason="account")
    return None


@receiver(user_login_failed)
def _count_address_failure(sender: object, request: Any = None, **kwargs: Any) -> None:
    # An attempt the slow-down refused checked no password: it does not extend the wait.
    if isinstance(request, HttpRequest) and not getattr(request, SLOWED_ATTRIBUTE, 0):
        limit_count(request, _address_limit(request))


def _pause(wait: int) -> str:
    if wait < 60:
        return f"{wait} second{'s' if wait != 1 else ''}"
    minutes = -(-wait // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def too_many_attempts(request: HttpRequest, *, wait: int, reason: str) -> HttpResponse:
    """A 429 page saying why and for how long (Retry-After in seconds)."""
    response = render(
        request,
        "accounts/locked_out.html",
        {"reason": reason, "pause": _pause(wait)},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """Axes's answer to a refused login: the address slow-down or the account-and-address pause."""
    slowed = getattr(request, SLOWED_ATTRIBUTE, 0)
    if slowed:
        return too_many_attempts(request, wait=slowed, reason="address")
    return too_many_attempts(request, wait=_cooloff_seconds(), reason="account")


class TooManyAttempts(Exception):
    def __init__(self, wait: int) -> None:
        super().__init__(f"retry in {wait} s")
        self.wait = wait


def password_reconfirm(request: HttpRequest, *, user: User, password: str) -> bool:
    """Check a signed-in account's password again, counting wrong ones per account.

    Raises TooManyAttempts, before checking anything, once `AXES_FAILURE_LIMIT` wrong passwords
    were given within the cool-off time: whoever holds the session cannot guess on.
    """
    limit = _reconfirm_limit(user, "password-reconfirm")
    wait = limit_wait(request, limit)
    if wait:
        raise TooManyAttempts(wait)
    if user.check_password(password):
        return True
    limit_count(request, limit)
    return False


def _reconfirm_limit(user: User, group: str) -> Limit:
    minutes = max(1, _cooloff_seconds() // 60)
    return Limit(group=group, key=str(user.pk), rate=f"{settings.AXES_FAILURE_LIMIT}/{minutes}m")


def sign_in_code_failed(request: HttpRequest, *, user: User) -> None:
    """Count a wrong second-step code as a failed login of the account (axes and the address)."""
    user_login_failed.send(
        sender=__name__, credentials={settings.AXES_USERNAME_FORM_FIELD: user.email}, request=request
    )


def code_reconfirm(request: HttpRequest, *, user: User, code: str) -> bool:
    """Check a signed-in account's two-step code again, counting wrong ones per account.

    Raises TooManyAttempts, before checking anything, as password_reconfirm does.
    """
    limit = _reconfirm_limit(user, "code-reconfirm")
    wait = limit_wait(request, limit)
    if wait:
        raise TooManyAttempts(wait)
    check = code_verify(user=user, code=code)
    if check.wait:
        raise TooManyAttempts(check.wait)
    if check.ok:
        return True
    limit_count(request, limit)
    return False
