"""Role checks for portal views: a decorator for functions, a mixin for classes.

Anonymous visitors are sent to the login page; a signed-in user of another role gets 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import User

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponseBase])


def has_role(user: User | AnonymousUser, roles: tuple[str, ...]) -> bool:
    return isinstance(user, User) and user.is_authenticated and user.is_active and user.role in roles


def signed_in_user(request: HttpRequest) -> User:
    """Return the account of a request that a role check has already let through."""
    user = request.user
    if not isinstance(user, User):
        # Only a view that forgot its role check gets here: fail closed.
        raise PermissionDenied("This page is not for your kind of account.")
    return user


def role_required(*roles: str) -> Callable[[ViewFunc], ViewFunc]:
    """Allow a view only to signed-in users holding one of roles."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, roles):
                raise PermissionDenied("This page is not for your kind of account.")
            return view(request, *args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorator


person_required = role_required(User.Role.PERSON)
vendor_required = role_required(User.Role.VENDOR_STAFF)
auditor_required = role_required(User.Role.AUDITOR)
# Pages about one's own account that every role has (two-step sign-in); operators sign in to the
# admin through the same login view, so their second step is set up here too.
account_holder_required = role_required(
    User.Role.PERSON, User.Role.VENDOR_STAFF, User.Role.AUDITOR, User.Role.OPERATOR
)


class RoleRequiredMixin(AccessMixin):
    """Class-based counterpart of role_required: set `required_roles`."""

    required_roles: tuple[str, ...] = ()

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not has_role(request.user, self.required_roles):
            raise PermissionDenied("This page is not for your kind of account.")
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]


class PersonRequiredMixin(RoleRequiredMixin):
    required_roles = (User.Role.PERSON,)


def local_path(request: HttpRequest, candidate: str | None, default: str) -> str:
    """Return `candidate` if it is a path on this site, else `default` (an open-redirect guard).

    Only an absolute path qualifies: a bare word would be taken for a view name by `redirect()`,
    and a scheme or another host would send the person away.
    """
    if (
        candidate
        and candidate.startswith("/")
        and url_has_allowed_host_and_scheme(candidate, allowed_hosts={request.get_host()})
    ):
        return candidate
    return default
