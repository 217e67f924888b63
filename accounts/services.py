"""Account writes that need nothing but the account (people's stores are opened by the portal)."""

from __future__ import annotations

from django.db import transaction

from accounts.models import User


@transaction.atomic
def account_upsert(*, email: str, password: str, role: str, display_name: str = "") -> tuple[User, bool]:
    """Create or reset an account with this e-mail (demo seeding, staff and auditor accounts).

    A person's account must come with a store: make people with `portal.services.person_upsert`,
    which calls this and opens the store (the store sits above accounts).
    """
    user = User.objects.filter(email__iexact=email).first()
    created = user is None
    if user is None:
        user = User(email=email.lower())
    user.display_name = display_name
    user.role = role
    user.is_active = True
    user.set_password(password)
    user.save()
    return user, created
