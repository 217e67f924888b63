"""Sign-up that answers alike whether or not the e-mail address has an account.

The sign-up form's answer never depends on the address: it always says "check your e-mail".
What differs is the e-mail, which only the address's owner reads:

- a new address gets a link that creates the account (and signs in) when its owner opens it;
- an address with an account gets "someone tried to sign up with your address; if it was you,
  log in or reset your password", and the account is left untouched.

Opening the link is not enough: the confirmation page asks for the password chosen at sign-up
and checks it against the one the link carries. Otherwise anyone could sign up a victim's
address with a password of their own, wait for the victim to confirm, and sign in to the
account the victim now uses (account pre-hijacking).

Sign-up mail is limited: per client address (a 429 page, `VRM_SIGNUP_ADDRESS_RATE`) and per
recipient (`VRM_SIGNUP_RECIPIENT_RATE`; past it the answer is the same but no mail goes out),
so the form cannot be used to flood someone's mailbox.

Nothing is stored until the link is used (no half-made accounts to squat an address): the
link carries the sign-up itself, signed by Django's signing machinery (with its timestamp)
and with the password hash sealed under a key derived from SECRET_KEY, so the hash is never
readable in a mail log or a browser history. Both paths hash the password, query the
database once and send one e-mail, so they take about as long.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core import signing
from django.core.mail import EmailMessage
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import User, email_key
from core.clients import client_address
from core.crypto import CryptoError, derive_key, keyed_hash, seal, unseal
from core.ratelimits import Limit, limit_count, limit_wait

LINK_MAX_AGE = timedelta(hours=24)
_SALT = "vrm.accounts.signup"


@dataclass(frozen=True)
class PendingSignup:
    """A sign-up as its confirmation link carries it."""

    email: str
    display_name: str
    password_hash: str
    role: str


class SignupLinkInvalid(Exception):
    """The link was altered, has expired, or belongs to another kind of sign-up."""


def _key() -> bytes:
    return derive_key(settings.SECRET_KEY.encode(), "signup/password-hash")


def _aad(email: str, role: str) -> bytes:
    return f"vrm/signup/v1|{role}|{email}".encode()


def _token(pending: PendingSignup) -> str:
    sealed = seal(_key(), pending.password_hash.encode(), _aad(pending.email, pending.role))
    payload = {
        "e": pending.email,
        "n": pending.display_name,
        "r": pending.role,
        "p": base64.urlsafe_b64encode(sealed).decode(),
    }
    return signing.dumps(payload, salt=_SALT, compress=True)


def signup_pending_read(*, token: str, role: str) -> PendingSignup:
    """Open a confirmation link's token for a sign-up of `role`; raise SignupLinkInvalid if it is
    not one this server made in the last 24 hours."""
    try:
        payload = signing.loads(token, salt=_SALT, max_age=LINK_MAX_AGE)
        email, display_name, token_role = str(payload["e"]), str(payload["n"]), str(payload["r"])
        if token_role != role:
            raise SignupLinkInvalid
        sealed = base64.urlsafe_b64decode(str(payload["p"]).encode())
        password_hash = unseal(_key(), sealed, _aad(email, role)).decode()
    except (signing.BadSignature, CryptoError, KeyError, TypeError, ValueError):
        raise SignupLinkInvalid from None
    return PendingSignup(email=email, display_name=display_name, password_hash=password_hash, role=role)


def signup_wait(request: HttpRequest) -> int:
    """Seconds this client address must wait before its next sign-up (0: go ahead)."""
    return limit_wait(request, _address_limit(request))


def _address_limit(request: HttpRequest) -> Limit:
    return Limit(group="signup-address", key=client_address(request), rate=settings.VRM_SIGNUP_ADDRESS_RATE)


def _recipient_limit(email: str) -> Limit:
    # Keyed by a hash: the cache never holds the address itself.
    digest = keyed_hash(_key(), email.encode()).hex()[:32]
    return Limit(group="signup-recipient", key=digest, rate=settings.VRM_SIGNUP_RECIPIENT_RATE)


def signup_password_matches(pending: PendingSignup, password: str) -> bool:
    """Whether the password typed on the confirmation page is the one chosen at sign-up."""
    return check_password(password, pending.password_hash)


def signup_request(
    request: HttpRequest, *, email: str, password: str, display_name: str, role: str, confirm_url_name: str
) -> None:
    """Answer a sign-up by e-mail only: a confirmation link for a new address, a warning to the
    owner of an address that already has an account. Nothing is written.

    The caller checks `signup_wait` first. Past the recipient's limit nothing is sent, and the
    answer stays the same (it must not tell whether the address has an account).
    """
    email = email_key(email)
    limit_count(request, _address_limit(request))
    recipient = _recipient_limit(email)
    if limit_wait(request, recipient):
        make_password(password)  # the same work as a sent sign-up, so timing tells nothing
        return
    limit_count(request, recipient)
    # Hash on both paths: an address with an account must not answer faster.
    password_hash = make_password(password)
    exists = User.objects.with_email(email).exists()
    if exists:
        subject = "Someone tried to sign up with your e-mail address"
        body = render_to_string(
            "accounts/signup_exists_email.txt",
            {
                "login_url": settings.VRM_ISSUER + reverse("login"),
                "reset_url": settings.VRM_ISSUER + reverse("password_reset"),
            },
        )
    else:
        pending = PendingSignup(
            email=email, display_name=display_name, password_hash=password_hash, role=role
        )
        subject = "Confirm your e-mail address"
        body = render_to_string(
            "accounts/signup_confirm_email.txt",
            {
                # The issuer, never the request's Host header, which the sender chooses.
                "confirm_url": settings.VRM_ISSUER + reverse(confirm_url_name, args=[_token(pending)]),
                "hours": int(LINK_MAX_AGE.total_seconds() // 3600),
            },
        )
    EmailMessage(subject, body, to=[email]).send()
