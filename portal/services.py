"""Workflows of a person's account that cross apps: sign-up and account deletion."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from accounts.models import User
from accounts.services import account_signup, account_upsert
from accounts.signup import PendingSignup
from consent.selectors import grants_live_for_person
from consent.services import grant_revoke
from personal_data.services import person_erase, person_store_open


@transaction.atomic
def person_signup(*, email: str, password: str, display_name: str = "") -> User:
    """Create a person's account and open their encrypted store (a fresh data key)."""
    user = User.objects.create_user(
        email=email, password=password, display_name=display_name, role=User.Role.PERSON
    )
    person_store_open(person=user)
    return user


@transaction.atomic
def person_signup_confirm(*, pending: PendingSignup) -> User:
    """Create the person a confirmed sign-up link describes and open their store."""
    if pending.role != User.Role.PERSON:
        raise ValidationError({"role": ["This link is not for a personal store."]})
    user = account_signup(pending=pending)
    person_store_open(person=user)
    return user


@transaction.atomic
def person_upsert(*, email: str, password: str, display_name: str = "") -> tuple[User, bool]:
    """Create or reset a person's account with this e-mail, with an open store (demo seeding)."""
    user, created = account_upsert(
        email=email, password=password, role=User.Role.PERSON, display_name=display_name
    )
    person_store_open(person=user)
    return user, created


@transaction.atomic
def account_delete(*, person: User) -> None:
    """Delete a person's account: revoke every grant, crypto-shred the store, remove the login.

    The ledger keeps its entries under the person's pseudonym, which nothing links to anyone
    once the store's salt is destroyed.
    """
    for grant in grants_live_for_person(person=person):
        grant_revoke(grant=grant, by=person, reason="account deleted")
    person_erase(person=person)
    person.delete()
