"""Pages that open a person's store: sign-in, the recovery code shown once, unlocking with it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import views as auth_views
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from accounts import views as account_views
from accounts.forms import LoginForm
from accounts.models import User
from accounts.permissions import local_path, person_required, signed_in_user
from consent.services import grants_shares_fill
from personal_data.keys import WrongSecret, keys_held, recovery_code_issued
from personal_data.services import person_password_rewrap, person_recover, person_unlock
from portal.keysession import keys_into_session


def _recovery_page(request: HttpRequest, code: str, next_url: str, *, reason: str) -> HttpResponse:
    """Show a recovery code once: it is stored nowhere, and only it opens the store without the password."""
    response = render(
        request, "personal_data/recovery_code.html", {"code": code, "next": next_url, "reason": reason}
    )
    response["Cache-Control"] = "no-store"
    return response


def _keys_open(request: HttpRequest, person: User) -> None:
    keys = keys_held(person)
    if keys is not None:
        keys_into_session(request, keys)
        grants_shares_fill(person=person)


class PersonLoginView(auth_views.LoginView):
    """Django's login, which for a person also opens their store with the password just given."""

    authentication_form = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        user: User = form.get_user()
        response = super().form_valid(form)
        if user.role != User.Role.PERSON:
            return response
        try:
            code = person_unlock(person=user, password=form.cleaned_data["password"])
        except WrongSecret:  # the password was reset by e-mail: only the recovery code opens it
            return redirect("store-unlock")
        _keys_open(self.request, user)
        if code is not None:  # an account that just moved to person-held keys
            return _recovery_page(self.request, code, response["Location"], reason="moved")
        return response


def signup_signed_in(request: HttpRequest, person: User) -> HttpResponse | None:
    """After a person's sign-up: keep their opened keys and show the recovery code once."""
    _keys_open(request, person)
    code = recovery_code_issued(person)
    return _recovery_page(request, code, "/dashboard/", reason="new") if code else None


class UnlockForm(forms.Form):
    recovery_code = forms.CharField(
        label="Your recovery code",
        max_length=64,
        help_text="The code of six groups of five letters and digits you were given when you signed up.",
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}
        ),
    )
    password = forms.CharField(
        label="Your current password",
        strip=False,
        help_text="From now on it opens your store again.",
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


@person_required
@require_http_methods(["GET", "POST"])
def store_unlock(request: HttpRequest) -> HttpResponse:
    """Open a store whose password wrap does not match (a password reset by e-mail) with the
    recovery code; the store is then wrapped by the current password and a new code."""
    person = signed_in_user(request)
    form = UnlockForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        if not person.check_password(form.cleaned_data["password"]):
            form.add_error("password", "That is not your password.")
        else:
            try:
                code = person_recover(
                    person=person,
                    code=form.cleaned_data["recovery_code"],
                    new_password=form.cleaned_data["password"],
                )
            except WrongSecret:
                form.add_error("recovery_code", "This recovery code does not open your store.")
            else:
                _keys_open(request, person)
                next_url = local_path(request, request.GET.get("next"), "/dashboard/")
                return _recovery_page(request, code, next_url, reason="replaced")
    return render(
        request, "personal_data/store_unlock.html", {"form": form}, status=400 if form.errors else 200
    )


class PersonPasswordChangeView(account_views.PasswordChangeView):
    """The password change, which for a person also wraps their store's key under the new password.

    The store must be open (it is, in a signed-in session; otherwise the person is sent to unlock
    it first). The old wrap is replaced in the same transaction as the password, and other
    sessions, whose password hash no longer matches, are signed out with their keys.
    """

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.user
        with transaction.atomic():
            if user.role == User.Role.PERSON:
                person_password_rewrap(person=user, new_password=form.cleaned_data["new_password1"])
            return super().form_valid(form)
