"""Sign-up and login forms."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from accounts.limits import password_reconfirm
from accounts.models import User, email_key


class SignupForm(UserCreationForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = ("email", "display_name")
        labels = {"email": "E-mail address", "display_name": "Your name (optional)"}

    def clean_email(self) -> str:
        return email_key(str(self.cleaned_data["email"]))

    def validate_unique(self) -> None:
        # Whether the address has an account must not show on the form (accounts/signup.py):
        # the answer is an e-mail to the address, and the account is made only from its link.
        pass


class LoginForm(AuthenticationForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "E-mail address"
        self.fields["username"].widget.attrs.update(autocomplete="email", autofocus=True)


class LimitedPasswordChangeForm(PasswordChangeForm):
    """Django's password change, its old password checked through the re-confirmation limit.

    Raises accounts.limits.TooManyAttempts from validation once the account has given too many
    wrong passwords; the view turns it into a 429.
    """

    def __init__(self, user: User, *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        old_password = str(self.cleaned_data["old_password"])
        if not password_reconfirm(self.request, user=self.user, password=old_password):
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password
