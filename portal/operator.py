"""What an operator may do to someone's account, each with its ledger entry and an e-mail.

The operator never sets a password, never changes an e-mail address and never deletes a person:
they deactivate an account, reactivate it, or send its owner a link to set a password
themselves. Each action writes an `operator.*` ledger entry (the operator's account id as actor,
the person's ledger pseudonym as subject) and tells the account's owner by e-mail, in one
transaction: if the e-mail cannot be sent, nothing happened. docs/security.md, "The operator".
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts.models import User
from accounts.twofactor import two_factor_remove
from audit.models import LedgerEntry
from audit.services import ledger_append
from personal_data.pseudonyms import person_subject

Kind = LedgerEntry.Kind


def _operator_check(operator: User) -> None:
    if not (operator.is_active and operator.is_staff):
        raise PermissionDenied("Only an active operator account can act on accounts.")


def _record(*, kind: str, account: User, operator: User) -> None:
    """Append the operator's action: a person by their pseudonym, other accounts by their id."""
    subject = ""
    if account.is_person:
        try:
            subject = person_subject(account)
        except LookupError:  # a person whose store was never opened: nothing links the entry
            subject = ""
    ledger_append(
        kind=kind,
        actor_type=LedgerEntry.ActorType.OPERATOR,
        actor_id=str(operator.pk),
        subject=subject,
        # Staff, auditor and operator accounts are not data subjects of the store: their id says
        # which account it was. A person's id never enters the ledger.
        record_ids=[] if account.is_person else [str(account.pk)],
        record_count=1,
        reason=f"{account.role} account",
    )


def _tell(account: User, subject: str, body: str) -> None:
    # Last in the transaction: a failure to send rolls the action and its entry back.
    EmailMessage(f"[vrm] {subject}", body, to=[account.email]).send()


@transaction.atomic
def account_deactivate(*, account: User, operator: User) -> User:
    """Deactivate an account: no sign-in, no session, and every token of it fails at once."""
    _operator_check(operator)
    if account.pk == operator.pk:
        raise ValidationError("An operator cannot deactivate their own account.")
    if not account.is_active:
        return account
    account.is_active = False
    account.save(update_fields=["is_active"])
    _record(kind=Kind.OPERATOR_DEACTIVATED, account=account, operator=operator)
    _tell(
        account,
        "Your account was deactivated",
        "The operator of vrm has deactivated your account. You cannot sign in while it is "
        "deactivated, and no vendor can use the access your grants gave it. Your records are "
        "kept as they are, still encrypted.\n\n"
        "If you did not expect this, reply to this e-mail.\n",
    )
    return account


@transaction.atomic
def account_reactivate(*, account: User, operator: User) -> User:
    """Reactivate an account: its owner can sign in again, and its live grants work again."""
    _operator_check(operator)
    if account.is_active:
        return account
    account.is_active = True
    account.save(update_fields=["is_active"])
    _record(kind=Kind.OPERATOR_REACTIVATED, account=account, operator=operator)
    _tell(
        account,
        "Your account was reactivated",
        "The operator of vrm has reactivated your account: you can sign in again, and the grants "
        "you gave vendors that have not ended work again. Review them on your grants page: "
        f"{settings.VRM_ISSUER}/grants/\n\n"
        "If you did not expect this, reply to this e-mail.\n",
    )
    return account


@transaction.atomic
def account_password_reset_send(*, account: User, operator: User) -> None:
    """E-mail the account's owner a one-time link to set a new password; the operator sees none.

    The current password keeps working until the owner uses the link (Django's reset tokens
    die when the password changes, and after PASSWORD_RESET_TIMEOUT).
    """
    _operator_check(operator)
    if not account.is_active:
        raise ValidationError("Reactivate the account before sending a password link.")
    link = settings.VRM_ISSUER + reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(account.pk)),
            "token": default_token_generator.make_token(account),
        },
    )
    _record(kind=Kind.OPERATOR_PASSWORD_RESET, account=account, operator=operator)
    _tell(
        account,
        "Set a new password",
        "The operator of vrm has sent you a link to set a new password for your account:\n\n"
        f"{link}\n\n"
        "The link works once. Nobody else sees it, and the operator never learns your password. "
        "If you did not ask for this, ignore this e-mail: your password stays as it is.\n",
    )


@transaction.atomic
def account_two_factor_remove(*, account: User, operator: User) -> None:
    """Turn off the account's two-step sign-in (a lost authenticator and no backup code left).

    Only after the operator has checked, outside vrm, that the request comes from the account's
    owner (docs/security.md, "Two-step sign-in"): the password then signs in alone again.
    """
    _operator_check(operator)
    if not two_factor_remove(user=account):
        raise ValidationError("This account has no two-step sign-in.")
    _record(kind=Kind.OPERATOR_TWO_FACTOR_REMOVED, account=account, operator=operator)
    _tell(
        account,
        "Two-step sign-in was turned off",
        "The operator of vrm has turned off two-step sign-in for your account, as you asked: your "
        "password alone signs you in now. Turn it on again, with your new authenticator, under "
        f"{settings.VRM_ISSUER}{reverse('two-factor')}\n\n"
        "If you did not ask for this, reply to this e-mail at once and change your password.\n",
    )
