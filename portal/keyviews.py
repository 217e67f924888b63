"""Pages that open a person's store: sign-in, the recovery code shown once, unlocking with it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import SetPasswordForm
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from accounts import views as account_views
from accounts.forms import LoginForm
from accounts.limits import (
    TooManyAttempts,
    lockout_response,
    login_allowed,
    login_refusal,
    password_reconfirm,
    sign_in_code_failed,
    too_many_attempts,
)
from accounts.models import User
from accounts.permissions import local_path, person_required, signed_in_user
from accounts.twofactor import (
    backup_codes_left,
    code_verify,
    pending_clear,
    pending_read,
    pending_start,
    two_factor_enabled,
)
from consent.services import grants_shares_fill
from personal_data.keys import (
    WrongSecret,
    keys_held,
    keys_hold,
    password_derive_ahead,
    recovery_code_issued,
)
from personal_data.selectors import (
    person_key_for_sign_in,
    retired_stores_for_person,
    store_needs_recovery_code,
)
from personal_data.services import (
    RETIRED_KEEP_DAYS,
    person_password_rewrap,
    person_recover,
    person_store_restore,
    person_unlock,
)
from portal.keysession import keys_from_pending, keys_into_pending, keys_into_session, keys_pending_drop
from portal.services import person_store_start_empty


def _recovery_page(
    request: HttpRequest, code: str, next_url: str, *, reason: str, retired: Any = None
) -> HttpResponse:
    """Show a recovery code once: it is stored nowhere, and only it opens the store without the password."""
    response = render(
        request,
        "personal_data/recovery_code.html",
        {"code": code, "next": next_url, "reason": reason, "retired": retired},
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

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        # The store's key is derived from the password while Django checks it (the same
        # Argon2id cost twice, on two cores): a person's sign-in takes the time of one.
        # Not for a login the limits will refuse: that must cost the server no Argon2id at all.
        username, password = request.POST.get("username", ""), request.POST.get("password", "")
        ahead = (
            person_key_for_sign_in(username=username) if login_allowed(request, username=username) else None
        )
        with password_derive_ahead(ahead, password):
            return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        user: User = form.get_user()
        keys_pending_drop(self.request)
        if two_factor_enabled(user):
            return self._second_step(user, form.cleaned_data["password"])
        response = super().form_valid(form)
        if user.role != User.Role.PERSON:
            return response
        try:
            code = person_unlock(person=user, password=form.cleaned_data["password"])
        except WrongSecret:  # the password was reset by e-mail: only the recovery code opens it
            self.request.session[STALE] = True
            return redirect("store-unlock")
        _keys_open(self.request, user)
        if code is not None:  # an account that just moved to person-held keys
            return _recovery_page(self.request, code, response["Location"], reason="moved")
        return response

    def _second_step(self, user: User, password: str) -> HttpResponse:
        """The password was right, and the account wants a code too: nobody is signed in yet.

        A person's store is opened now, the one time the password is at hand, and its keys wait
        sealed (portal/keysession.py) for the code; a reset password that no longer opens it is
        noted, so the second step leads to the recovery code as a sign-in would.
        """
        pending_start(self.request, user=user, backend=user.backend, next_url=self.get_success_url())
        if user.role == User.Role.PERSON:
            try:
                code = person_unlock(person=user, password=password)
            except WrongSecret:
                self.request.session[STALE] = True
            else:
                keys = keys_held(user)
                if keys is not None:
                    keys_into_pending(self.request, person=user, keys=keys, recovery_code=code)
        return redirect("login-code")


class SignInCodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6-digit code your authenticator app shows now, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autocapitalize": "off",
                "spellcheck": "false",
                "autofocus": True,
            }
        ),
    )


def _code_page(request: HttpRequest, form: forms.Form, status: int = 200) -> HttpResponse:
    response = render(request, "registration/login_code.html", {"form": form}, status=status)
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def sign_in_code(request: HttpRequest) -> HttpResponse:
    """The second step of a sign-in: the authenticator's code (or a backup code) after the password.

    Reached only from a right password in this session in the last five minutes; anything else
    goes back to the login page. A wrong code is a failed login (accounts/limits.py) and changes
    nothing else; the right one signs in, with the store the password opened.
    """
    pending = pending_read(request)
    if pending is None:
        pending_clear(request)
        keys_pending_drop(request)
        messages.info(request, "Please log in again: the sign-in was not finished within five minutes.")
        return redirect("login")
    user = pending.user
    form = SignInCodeForm(request.POST if request.method == "POST" else None)
    if not form.is_bound or not form.is_valid():
        return _code_page(request, form, status=400 if form.is_bound else 200)
    refused = login_refusal(request, username=user.email)
    if refused is not None:
        return refused
    check = code_verify(user=user, code=form.cleaned_data["code"])
    if not check.ok:
        if check.wait:
            form.add_error(
                "code", f"Too many wrong codes in a row: wait {check.wait} seconds, then try again."
            )
        else:
            sign_in_code_failed(request, user=user)
            if getattr(request, "axes_locked_out", False):  # that was the last guess allowed
                return lockout_response(request)
            form.add_error("code", "That code is not right, or was used already. Try the code shown now.")
        return _code_page(request, form, status=400)
    opened = keys_from_pending(request, person=user) if user.role == User.Role.PERSON else None
    pending_clear(request)
    login(request, user, backend=pending.backend)
    if check.backup:
        left = backup_codes_left(user)
        messages.warning(
            request,
            f"You used a backup code; {left} {pluralize(left, 'is,are')} left. "
            "Make new ones under Two-step sign-in if you are running low.",
        )
    next_url = local_path(request, pending.next_url, reverse("home"))
    if user.role != User.Role.PERSON or request.session.get(STALE):
        return redirect("store-unlock" if request.session.get(STALE) else next_url)
    if opened is None:  # the key cookie is gone (another browser?): the password opens it again
        return redirect("store-unlock")
    keys, recovery = opened
    keys_hold(user, keys)
    _keys_open(request, user)
    if recovery is not None:
        return _recovery_page(request, recovery, next_url, reason="moved")
    return redirect(next_url)


def signup_signed_in(request: HttpRequest, person: User) -> HttpResponse | None:
    """After a person's sign-up: keep their opened keys and show the recovery code once."""
    _keys_open(request, person)
    code = recovery_code_issued(person)
    return _recovery_page(request, code, "/dashboard/", reason="new") if code else None


STALE = "_vrm_store_password_stale"


def _recovery_code_field(
    help_text: str = "The code of six groups of five letters and digits you were given when you signed up.",
    **kwargs: Any,
) -> forms.CharField:
    return forms.CharField(
        label="Your recovery code",
        max_length=64,
        help_text=help_text,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"}
        ),
        **kwargs,
    )


def _password_field(help_text: str) -> forms.CharField:
    return forms.CharField(
        label="Your current password",
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class OpenForm(forms.Form):
    password = _password_field("The password you sign in with.")


class UnlockForm(forms.Form):
    recovery_code = _recovery_code_field()
    password = _password_field("From now on it opens your store again.")


class StartEmptyForm(forms.Form):
    password = _password_field("It will open your new store.")
    understood = forms.BooleanField(
        label="I understand that my records from before stay locked, and are destroyed after 30 days "
        "unless I bring them back with my recovery code.",
        error_messages={"required": "Tick this box to start an empty store."},
    )


class RestoreForm(forms.Form):
    recovery_code = _recovery_code_field(
        "The code you had before your password was reset: six groups of five letters and digits, "
        "not the code of your new store."
    )


def _password_checked(request: HttpRequest, form: forms.Form, person: User) -> HttpResponse | bool:
    """Check the form's password, counting wrong ones (accounts/limits.py); add the error."""
    try:
        confirmed = password_reconfirm(request, user=person, password=form.cleaned_data["password"])
    except TooManyAttempts as refused:
        return too_many_attempts(request, wait=refused.wait, reason="reconfirm")
    if not confirmed:
        form.add_error("password", "That is not your password.")
    return confirmed


def _next(request: HttpRequest) -> str:
    return local_path(request, request.GET.get("next"), "/dashboard/")


def _unlock_page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    form = context["form"]
    response = render(request, template, context, status=400 if form.errors else 200)
    response["Cache-Control"] = "no-store"
    return response


@person_required
@require_http_methods(["GET", "POST"])
def store_unlock(request: HttpRequest) -> HttpResponse:
    """Open the signed-in person's store when this session holds no keys.

    After a browser restart (the key cookie lives only as long as the browser) the password opens
    it again. After a reset by e-mail (the password no longer opens it; sign-in noted that) only
    the recovery code does; the store is then wrapped by the current password and a new code.
    """
    person = signed_in_user(request)
    post = request.POST if request.method == "POST" else None
    if not request.session.get(STALE):
        form: forms.Form = OpenForm(post)
        if post is not None and form.is_valid():
            checked = _password_checked(request, form, person)
            if isinstance(checked, HttpResponse):
                return checked
            if checked:
                try:
                    code = person_unlock(person=person, password=form.cleaned_data["password"])
                except WrongSecret:  # a reset: fall through to the recovery code
                    request.session[STALE] = True
                    return redirect(request.get_full_path())
                _keys_open(request, person)
                if code is not None:
                    return _recovery_page(request, code, _next(request), reason="moved")
                return redirect(_next(request))
        return _unlock_page(request, "personal_data/store_open.html", {"form": form})
    form = UnlockForm(post)
    if post is not None and form.is_valid():
        checked = _password_checked(request, form, person)
        if isinstance(checked, HttpResponse):
            return checked
        if checked:
            try:
                code = person_recover(
                    person=person,
                    code=form.cleaned_data["recovery_code"],
                    new_password=form.cleaned_data["password"],
                )
            except WrongSecret:
                form.add_error("recovery_code", "This recovery code does not open your store.")
            else:
                request.session.pop(STALE, None)
                _keys_open(request, person)
                return _recovery_page(request, code, _next(request), reason="replaced")
    return _unlock_page(request, "personal_data/store_unlock.html", {"form": form})


def _keep_until() -> dt.datetime:
    return timezone.now() + dt.timedelta(days=RETIRED_KEEP_DAYS)


@person_required
@require_http_methods(["GET", "POST"])
def store_start_empty(request: HttpRequest) -> HttpResponse:
    """Without the recovery code: set the old store aside (kept locked 30 days) and start empty."""
    person = signed_in_user(request)
    if not request.session.get(STALE):
        return redirect("store-unlock")
    form = StartEmptyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        checked = _password_checked(request, form, person)
        if isinstance(checked, HttpResponse):
            return checked
        if checked:
            restart = person_store_start_empty(person=person, password=form.cleaned_data["password"])
            request.session.pop(STALE, None)
            _keys_open(request, person)
            if restart.code is None:  # the password opened it after all: nothing was set aside
                return redirect("/dashboard/")
            reason = "moved" if restart.retired is None else "restarted"
            return _recovery_page(
                request, restart.code, "/dashboard/", reason=reason, retired=restart.retired
            )
    return _unlock_page(
        request, "personal_data/store_start_empty.html", {"form": form, "keep_until": _keep_until()}
    )


@person_required
@require_http_methods(["GET", "POST"])
def store_restore(request: HttpRequest) -> HttpResponse:
    """Bring back the records set aside after a reset, with the old recovery code, while kept."""
    person = signed_in_user(request)
    kept = retired_stores_for_person(person=person)
    form = RestoreForm(request.POST if request.method == "POST" and kept else None)
    if form.is_bound and form.is_valid():
        try:
            restored = person_store_restore(person=person, code=form.cleaned_data["recovery_code"])
        except WrongSecret:
            form.add_error(
                "recovery_code",
                "This code opens none of your records from before. It is the code you had before "
                "the reset, not the one you were given with your new store.",
            )
        else:
            grants_shares_fill(person=person)
            messages.success(
                request,
                f"{restored.records} record{pluralize(restored.records)} from before "
                f"{pluralize(restored.records, 'is,are')} back in your store"
                + (", with your earlier preferences." if restored.preferences else "."),
            )
            return redirect("dashboard")
    return _unlock_page(request, "personal_data/store_restore.html", {"form": form, "kept": kept})


class ResetWithCodeForm(SetPasswordForm):  # type: ignore[type-arg]
    """Django's new-password form, with the recovery code a person's store needs to stay open."""

    def __init__(self, user: User | None, *args: Any, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        # Django builds the form for an expired link too, without a user; the page says so.
        if user is not None and user.role == User.Role.PERSON and store_needs_recovery_code(person=user):
            self.fields["recovery_code"] = _recovery_code_field(
                required=False,
                help_text="The code of six groups of five letters and digits you were given when you "
                "signed up. Without it your records stay locked.",
            )
            self.order_fields(["recovery_code", "new_password1", "new_password2"])


class PersonPasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's reset from the e-mailed link, which for a person also asks for the recovery code.

    A new password alone cannot open the store (the old one wrapped its key); with the code the
    store is wrapped by the new password and a new code in the same transaction as the password
    is set, and a wrong code sets nothing. Without it the password is set and the store stays
    locked: at sign-in the person is asked for the code again, or may start an empty store.
    """

    form_class = ResetWithCodeForm

    def form_valid(self, form: Any) -> HttpResponse:
        code = form.cleaned_data.get("recovery_code")
        if not code:
            return super().form_valid(form)
        with transaction.atomic():
            try:
                new_code = person_recover(
                    person=form.user, code=code, new_password=form.cleaned_data["new_password1"]
                )
            except WrongSecret:
                form.add_error(
                    "recovery_code",
                    "This recovery code does not open your store; your password is not changed. "
                    "Check the code, or leave it empty to set the password anyway.",
                )
                return self.form_invalid(form)
            super().form_valid(form)
        return _recovery_page(self.request, new_code, reverse("login"), reason="reset")


class PersonPasswordChangeView(account_views.PasswordChangeView):
    """The password change, which for a person also wraps their store's key under the new password.

    The store must be open (it is, in a signed-in session; otherwise the person is sent to unlock
    it first). The old wrap is replaced in the same transaction as the password, and other
    sessions, whose password hash no longer matches, are signed out with their keys.
    """

    # Django's own template is the admin's (its header, breadcrumbs and inline styles, which the
    # Content-Security-Policy blocks); the operator's page at /admin/password_change/ keeps it.
    template_name = "registration/account_password_change.html"

    def form_valid(self, form: Any) -> HttpResponse:
        user = form.user
        with transaction.atomic():
            if user.role == User.Role.PERSON:
                person_password_rewrap(person=user, new_password=form.cleaned_data["new_password1"])
            return super().form_valid(form)
