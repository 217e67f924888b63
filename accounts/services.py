"""Account writes that need nothing but the account (people's stores are opened by the portal)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import User, email_key
from accounts.signup import PendingSignup

# Auditors and operators are made by the operator, never by signing up.
SIGNUP_ROLES = (User.Role.PERSON, User.Role.VENDOR_STAFF)


@transaction.atomic
def account_upsert(*, email: str, password: str, role: str, display_name: str = "") -> tuple[User, bool]:
    """Create or reset an account with this e-mail (demo seeding, staff and auditor accounts).

    A person's account must come with a store: make people with `portal.services.person_upsert`,
    which calls this and opens the store (the store sits above accounts).
    """
    user = User.objects.with_email(email).first()
    created = user is None
    if user is None:
        user = User(email=email_key(email))
    user.display_name = display_name
    user.role = role
    user.is_active = True
    user.set_password(password)
    user.save()
    return user, created


@transaction.atomic
def account_signup(*, pending: PendingSignup) -> User:
    """Create the account a confirmed sign-up link describes; refuse an address that has one.

    Never touches an existing account: a link used twice, or raced by another sign-up, is refused.
    """
    if pending.role not in SIGNUP_ROLES:
        raise ValidationError({"role": ["Nobody signs up for this kind of account."]})
    if User.objects.with_email(pending.email).exists():
        raise ValidationError({"email": ["This address already has an account."]})
    user = User(email=pending.email, display_name=pending.display_name, role=pending.role)
    user.password = pending.password_hash  # hashed when the form was sent
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # the same link opened twice at once
        raise ValidationError({"email": ["This address already has an account."]}) from None
    return user
