"""Turning two-step sign-in on and off: each change in the person's ledger and by e-mail.

The devices are accounts' (accounts/twofactor.py); the entries sit here, above the ledger and the
pseudonyms. A person sees them on their activity page. Vendor staff and auditors are not data
subjects of the store and have no ledger pseudonym: they are told by e-mail only.
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from accounts.twofactor import backup_codes_issue, totp_confirm, two_factor_remove
from audit.models import LedgerEntry
from audit.services import ledger_append
from personal_data.pseudonyms import ledger_pseudonym

Kind = LedgerEntry.Kind


def _record(user: User, kind: str) -> None:
    if not user.is_person:
        return
    try:
        subject = ledger_pseudonym(person_id=user.pk)
    except LookupError:  # a person whose store was never opened: nothing to link the entry to
        return
    ledger_append(kind=kind, actor_type=LedgerEntry.ActorType.PERSON, actor_id=subject, subject=subject)


def _tell(user: User, subject: str, body: str) -> None:
    # Last in the transaction, as the operator's notices: no change goes untold.
    page = settings.VRM_ISSUER + reverse("two-factor")
    EmailMessage(
        f"[vrm] {subject}",
        f"{body}\n\nIf this was not you, change your password at once and check {page}\n",
        to=[user.email],
    ).send()


@transaction.atomic
def two_factor_enable(*, user: User, device: TOTPDevice, code: str) -> list[str] | None:
    """Put the authenticator in use if `code` is its current one; return new backup codes.

    Return None, changing nothing, when the code is not right.
    """
    if not totp_confirm(device=device, code=code):
        return None
    codes = backup_codes_issue(user=user)
    _record(user, Kind.PERSON_TWO_FACTOR_ON)
    _tell(
        user, "Two-step sign-in is on", "Signing in to vrm now asks for a code from your authenticator app."
    )
    return codes


@transaction.atomic
def two_factor_disable(*, user: User) -> None:
    """Remove the authenticator and the backup codes: the password alone signs in again."""
    if not two_factor_remove(user=user):
        return
    _record(user, Kind.PERSON_TWO_FACTOR_OFF)
    _tell(user, "Two-step sign-in is off", "Signing in to vrm no longer asks for a code, only your password.")


@transaction.atomic
def backup_codes_renew(*, user: User) -> list[str]:
    """Replace the backup codes (the old ones stop working); return the new ones."""
    codes = backup_codes_issue(user=user)
    _record(user, Kind.PERSON_BACKUP_CODES_NEW)
    _tell(
        user, "New backup codes", "New backup codes were made for your account; the old ones no longer work."
    )
    return codes
