"""The account's two-step sign-in page: set up an authenticator, renew backup codes, turn it off.

For every role that signs in at /accounts/login/. Setting up asks for a recent password (the
page shows a new secret); renewing the codes and turning it off ask for the password and a
current code on the form itself, each counted (accounts/limits.py).
"""

from __future__ import annotations

from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.http import require_http_methods
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.limits import TooManyAttempts, code_reconfirm, password_reconfirm, too_many_attempts
from accounts.permissions import account_holder_required, signed_in_user
from accounts.reauth import recent_password_required
from accounts.twofactor import (
    backup_codes_left,
    code_wait,
    totp_device,
    totp_secret_text,
    totp_setup,
)
from portal.twofactor import backup_codes_renew, two_factor_disable, two_factor_enable

QR_LABEL = "QR code to scan with your authenticator app"


def _code_field(label: str = "Code from your authenticator app", help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=32,
        help_text=help_text,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
        ),
    )


class ConfirmSetupForm(forms.Form):
    code = _code_field(help_text="The 6 digits the app shows for vrm now.")


class PasswordAndCodeForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = _code_field(help_text="The 6 digits your authenticator app shows now, or a backup code.")


def _page(request: HttpRequest, template: str, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, template, context, status=status)
    response["Cache-Control"] = "no-store"  # secrets and one-time codes
    return response


def _qr_svg(device: TOTPDevice) -> SafeString:
    svg = segno.make(device.config_url, error="m").svg_inline(
        scale=4, dark="#000", light="#fff", svgclass="qr", lineclass=None
    )
    # segno's own markup, with nothing a visitor typed in it but the account's e-mail, which it
    # encodes as modules of the code, not as text.
    return mark_safe(svg.replace("<svg ", f'<svg role="img" aria-label="{QR_LABEL}" ', 1))  # noqa: S308


@account_holder_required
@require_http_methods(["GET"])
def two_factor(request: HttpRequest) -> HttpResponse:
    """Whether two-step sign-in is on, and the ways to turn it on or off."""
    user = signed_in_user(request)
    device = totp_device(user)
    return _page(
        request,
        "accounts/two_factor.html",
        {"device": device, "codes_left": backup_codes_left(user) if device else 0},
    )


@account_holder_required
@recent_password_required
@require_http_methods(["GET", "POST"])
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    """Show a new authenticator secret (QR code and text); a right code puts it in use."""
    user = signed_in_user(request)
    if totp_device(user) is not None:
        return redirect("two-factor")
    # The secret being set up stays the same across reloads and wrong codes, so an app that
    # already scanned it keeps working; "start again" makes a new one.
    device = totp_device(user, confirmed=False)
    if device is None or request.POST.get("restart"):
        device = totp_setup(user=user)
        if request.POST.get("restart"):
            return redirect("two-factor-setup")
    form = ConfirmSetupForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        if wait := code_wait(device):  # django-otp pauses checking after a wrong code
            form.add_error(
                "code",
                f"Wait {wait} second{pluralize(wait)} after a wrong code, then type the code shown now.",
            )
        elif (
            codes := two_factor_enable(user=user, device=device, code=form.cleaned_data["code"])
        ) is not None:
            return _page(request, "accounts/two_factor_codes.html", {"codes": codes, "new": True})
        else:
            form.add_error(
                "code", "That code is not right. Check that the app shows vrm, and type the code shown now."
            )
    context = {"form": form, "qr": _qr_svg(device), "secret": totp_secret_text(device)}
    return _page(request, "accounts/two_factor_setup.html", context, status=400 if form.errors else 200)


def _checked(request: HttpRequest, form: PasswordAndCodeForm) -> HttpResponse | bool:
    """The form's password and code, each counted; errors added to the form."""
    user = signed_in_user(request)
    try:
        password_ok = password_reconfirm(request, user=user, password=form.cleaned_data["password"])
        if not password_ok:
            form.add_error("password", "That is not your password.")
            return False
    except TooManyAttempts as refused:
        return too_many_attempts(request, wait=refused.wait, reason="reconfirm")
    try:
        code_ok = code_reconfirm(request, user=user, code=form.cleaned_data["code"])
    except TooManyAttempts as refused:
        return too_many_attempts(request, wait=refused.wait, reason="code")
    if not code_ok:
        form.add_error("code", "That code is not right, or was used already.")
    return code_ok


def _password_and_code(request: HttpRequest, template: str, act: Any) -> HttpResponse:
    user = signed_in_user(request)
    if totp_device(user) is None:
        return redirect("two-factor")
    form = PasswordAndCodeForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        checked = _checked(request, form)
        if isinstance(checked, HttpResponse):
            return checked
        if checked:
            return act(user)  # type: ignore[no-any-return]
    return _page(request, template, {"form": form}, status=400 if form.errors else 200)


@account_holder_required
@require_http_methods(["GET", "POST"])
def two_factor_disable_view(request: HttpRequest) -> HttpResponse:
    """Turn two-step sign-in off, with the password and a current code."""

    def act(user: Any) -> HttpResponse:
        two_factor_disable(user=user)
        messages.success(request, "Two-step sign-in is off: your password alone signs you in.")
        return redirect("two-factor")

    return _password_and_code(request, "accounts/two_factor_disable.html", act)


@account_holder_required
@require_http_methods(["GET", "POST"])
def two_factor_backup_codes(request: HttpRequest) -> HttpResponse:
    """Make new backup codes (the old ones stop working), with the password and a current code."""

    def act(user: Any) -> HttpResponse:
        codes = backup_codes_renew(user=user)
        return _page(request, "accounts/two_factor_codes.html", {"codes": codes, "new": False})

    return _password_and_code(request, "accounts/two_factor_renew.html", act)
