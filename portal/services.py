"""Workflows of a person's account that cross apps: sign-up, a fresh store, account deletion."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import check_password
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import User
from accounts.services import account_signup, account_upsert
from accounts.signup import PendingSignup
from consent.selectors import grants_live_for_person
from consent.services import grant_revoke
from personal_data.keys import recovery_code_issue
from personal_data.services import (
    StoreRestart,
    person_erase,
    person_recover,
    person_store_open,
    person_store_restart,
    person_unlock,
)
from vendors.messages import messages_erase
from vendors.reports import reports_erase


@transaction.atomic
def person_signup(*, email: str, password: str, display_name: str = "") -> User:
    """Create a person's account and their store, its keys wrapped by the password and a recovery
    code; the keys stay open on the returned user, and `recovery_code_issued` gives the code."""
    user = User.objects.create_user(
        email=email, password=password, display_name=display_name, role=User.Role.PERSON
    )
    recovery_code_issue(user, person_store_open(person=user, password=password))
    return user


@transaction.atomic
def person_signup_confirm(*, pending: PendingSignup, password: str) -> User:
    """Create the person a confirmed sign-up link describes and open their store.

    The link carries only the password's hash; the person types the password again on the
    confirmation page, since only the password itself can wrap their data key.
    """
    if pending.role != User.Role.PERSON:
        raise ValidationError({"role": ["This link is not for a personal store."]})
    if not check_password(password, pending.password_hash):
        raise ValidationError({"password": ["That is not the password you chose when you signed up."]})
    user = account_signup(pending=pending)
    recovery_code_issue(user, person_store_open(person=user, password=password))
    return user


@transaction.atomic
def person_upsert(
    *, email: str, password: str, display_name: str = "", recovery_code: str | None = None
) -> tuple[User, bool]:
    """Create or reset a person's account with this e-mail, with an open store (demo seeding).

    Resetting the password of an existing person needs their recovery code (the data key is
    theirs); without it their store keeps its old wrap and `StoreLocked` is raised.
    """
    user, created = account_upsert(
        email=email, password=password, role=User.Role.PERSON, display_name=display_name
    )
    code = person_store_open(person=user, password=password)
    if code is None and recovery_code is not None:
        code = person_recover(person=user, code=recovery_code, new_password=password)
    elif code is None:
        person_unlock(person=user, password=password)
    recovery_code_issue(user, code)
    return user, created


@transaction.atomic
def account_delete(*, person: User) -> None:
    """Delete a person's account: revoke every grant, crypto-shred the store, remove the login.

    The ledger keeps its entries under the person's pseudonym, which nothing links to anyone
    once the store's salt is destroyed.
    """
    for grant in grants_live_for_person(person=person):
        grant_revoke(grant=grant, by=person, reason="account deleted")
    # Vendor messages are sealed to the key person_erase destroys; delete their rows too.
    messages_erase(person=person)
    # So are the words of their reports about vendors (the ledger keeps only organisation and reason).
    reports_erase(person=person)
    person_erase(person=person)
    person.delete()


@transaction.atomic
def person_store_start_empty(*, person: User, password: str) -> StoreRestart:
    """Give a person whose password no longer opens their store (a reset) an empty one, and tell
    them by e-mail what was set aside and until when.

    The e-mail goes whatever the contact choices: it is about the account's safety (if someone
    else reset the password, the owner learns it while the records can still be brought back).
    If it cannot be sent, nothing happened.
    """
    restart = person_store_restart(person=person, password=password)
    if restart.retired is not None:
        body = render_to_string(
            "personal_data/store_restarted_email.txt",
            {
                "retired": restart.retired,
                "restore_url": settings.VRM_ISSUER + reverse("store-restore"),
            },
        )
        EmailMessage("[vrm] You started an empty store", body, to=[person.email]).send()
    return restart
