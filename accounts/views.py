"""The role-aware landing page, re-authentication, and the sign-up pages both sign-ups share.

Login, logout and reset are Django's own views; password change is Django's too, with its old
password counted like every re-confirmation (PasswordChangeView). A person's sign-up opens their store, so it
lives in the portal (portal.views.signup) and vendor staff's in vendors; both answer through
`signup_sent` and `signup_confirm` here (accounts/signup.py says why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from accounts.forms import LimitedPasswordChangeForm
from accounts.limits import TooManyAttempts, password_reconfirm, too_many_attempts
from accounts.models import User
from accounts.permissions import local_path, signed_in_user
from accounts.reauth import password_confirmed
from accounts.signup import PendingSignup, SignupLinkInvalid, signup_password_matches, signup_pending_read

_HOME_BY_ROLE: dict[str, str] = {
    User.Role.PERSON: "dashboard",
    User.Role.VENDOR_STAFF: "vendors:portal",
    User.Role.AUDITOR: "audit:portal",
}


def home(request: HttpRequest) -> HttpResponse:
    """Send each role to its own start page; visitors see the welcome page."""
    user = request.user
    if not user.is_authenticated:
        return render(request, "accounts/welcome.html")
    if user.is_staff:
        return redirect("admin:index")
    return redirect(_HOME_BY_ROLE.get(user.role, "dashboard"))


class ReauthForm(forms.Form):
    password = forms.CharField(
        label="Your password", widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


@login_required
@require_http_methods(["GET", "POST"])
def reauth(request: HttpRequest) -> HttpResponse:
    """Ask for the password again before a sensitive act (export, deletion, sensitive grant)."""
    next_url = local_path(request, request.GET.get("next") or request.POST.get("next"), "/")
    form = ReauthForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            confirmed = password_reconfirm(
                request, user=signed_in_user(request), password=form.cleaned_data["password"]
            )
        except TooManyAttempts as refused:
            return too_many_attempts(request, wait=refused.wait, reason="reconfirm")
        if confirmed:
            password_confirmed(request)
            return redirect(next_url)
        form.add_error("password", "That is not your password.")
    return render(
        request,
        "registration/reauth.html",
        {"form": form, "next": next_url},
        status=400 if form.errors else 200,
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's password change (same URL, templates and session update), its old password
    counted with every other re-confirmation of the account's password (accounts/limits.py)."""

    form_class = LimitedPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().post(request, *args, **kwargs)
        except TooManyAttempts as refused:
            return too_many_attempts(request, wait=refused.wait, reason="reconfirm")


def admin_password_change(request: HttpRequest) -> HttpResponseBase:
    """The admin's own "change password" page (an operator's password), counted the same way.

    What `AdminSite.password_change` does, with the limited view in place of Django's.
    """
    request.current_app = admin.site.name
    return PasswordChangeView.as_view(
        success_url=reverse("admin:password_change_done", current_app=admin.site.name),
        extra_context=admin.site.each_context(request),
    )(request)


def signup_sent(request: HttpRequest, *, again_url_name: str) -> HttpResponse:
    """The one answer to a valid sign-up form, whether or not the address has an account."""
    return render(request, "registration/signup_sent.html", {"again_url": reverse(again_url_name)})


class SignupConfirmForm(forms.Form):
    password = forms.CharField(
        label="The password you chose when you signed up",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def signup_confirm(
    request: HttpRequest,
    *,
    token: str,
    role: str,
    create: Callable[[PendingSignup, str], User],
    button: str,
    again_url_name: str,
    done_url_name: str,
    signed_in: Callable[[HttpRequest, User], HttpResponse | None] | None = None,
) -> HttpResponse:
    """Open a sign-up link: GET asks (mail scanners fetch links); POST, with the password chosen
    at sign-up, creates the account and signs in (accounts/signup.py says why it asks).

    `signed_in(request, user)` runs right after the sign-in and may answer instead of the
    redirect to `done_url_name` (a person's store shows its recovery code first)."""
    try:
        pending = signup_pending_read(token=token, role=role)
    except SignupLinkInvalid:
        return render(
            request,
            "registration/signup_link_invalid.html",
            {"again_url": reverse(again_url_name)},
            status=400,
        )
    form = SignupConfirmForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        password = form.cleaned_data["password"]
        if signup_password_matches(pending, password):
            try:
                user = create(pending, password)
            except ValidationError:  # the link was used already: the account exists
                messages.info(request, "This address already has an account. Please log in.")
                return redirect("login")
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            answer = signed_in(request, user) if signed_in is not None else None
            return answer if answer is not None else redirect(done_url_name)
        form.add_error(
            "password",
            "That is not the password chosen when signing up. If you did not sign up, close this page.",
        )
    return render(
        request,
        "registration/signup_confirm.html",
        {"email": pending.email, "button": button, "form": form},
        status=400 if form.errors else 200,
    )
