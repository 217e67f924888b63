"""Sign-up and login forms."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.forms import AuthenticationForm, UserCreationForm

from accounts.models import User


class SignupForm(UserCreationForm):  # type: ignore[type-arg]
    class Meta:
        model = User
        fields = ("email", "display_name")
        labels = {"email": "E-mail address", "display_name": "Your name (optional)"}

    def clean_email(self) -> str:
        return str(self.cleaned_data["email"]).strip().lower()

    def validate_unique(self) -> None:
        # Whether the address has an account must not show on the form (accounts/signup.py):
        # the answer is an e-mail to the address, and the account is made only from its link.
        pass


class LoginForm(AuthenticationForm):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "E-mail address"
        self.fields["username"].widget.attrs.update(autocomplete="email", autofocus=True)
