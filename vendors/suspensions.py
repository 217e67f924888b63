"""An operator stops a vendor: suspend an organisation, resume it, or end it.

Only an active staff account holding `vendors.suspend_organisation` may act. Each action, in one
transaction:

- sets the organisation's standing and the reason people and the vendor are shown;
- writes its ledger entry (`vendor.org_suspended`, `vendor.org_resumed`, `vendor.org_ended`), the
  operator as actor and the organisation's id as the record, with how many grants it touched;
- puts a notice in the inbox of every person whose grant it touches, and e-mails them once the
  action has committed (like a safety alert, whatever their e-mail choices: it is about who
  holds access to their data).

A suspension keeps the grants as they are. Every token of every app of the organisation is
refused from the next request on (the API, token refresh and introspection read the standing
with the token), and no new grant or contact can be made; resuming gives the same grants back.
Ending revokes every live grant with its receipt, deletes every token and code of the apps, and
cannot be undone. docs/abuse.md says what each side sees.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone
from django_tasks import task

from accounts.models import User
from audit.models import LedgerEntry
from audit.services import ledger_append
from consent.models import Grant
from consent.services import application_tokens_withdraw, grant_revoke_by_operator
from personal_data.models import Reminder, ReminderKind
from vendors.models import Application, Organisation

PERMISSION = "vendors.suspend_organisation"
REASON_MAX = Organisation._meta.get_field("standing_reason").max_length or 500
Standing = Organisation.Standing

_NOTICE = {
    Standing.SUSPENDED: ReminderKind.VENDOR_SUSPENDED,
    Standing.ACTIVE: ReminderKind.VENDOR_RESUMED,
    Standing.ENDED: ReminderKind.VENDOR_ENDED,
}
_ENTRY = {
    Standing.SUSPENDED: LedgerEntry.Kind.ORG_SUSPENDED,
    Standing.ACTIVE: LedgerEntry.Kind.ORG_RESUMED,
    Standing.ENDED: LedgerEntry.Kind.ORG_ENDED,
}
_EMAIL_SUBJECT = {
    ReminderKind.VENDOR_SUSPENDED: "A vendor you gave access to has been suspended",
    ReminderKind.VENDOR_RESUMED: "A suspended vendor may use your grant again",
    ReminderKind.VENDOR_ENDED: "A vendor you gave access to has been ended",
}


class StandingRefused(ValidationError):
    """The change cannot be made (an ended organisation, a missing reason)."""


def _operator_check(by: User) -> None:
    if not (by.is_active and by.is_staff and by.has_perm(PERMISSION)):
        raise PermissionDenied("Only an operator allowed to suspend organisations can do this.")


def _reason_clean(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise StandingRefused({"reason": ["Say why: the vendor and the people affected are shown it."]})
    if len(text) > REASON_MAX:
        raise StandingRefused({"reason": [f"At most {REASON_MAX} characters."]})
    return text


def _grants_touched(organisation: Organisation) -> list[Grant]:
    """The organisation's grants that are live now, locked: they are the ones people must hear about."""
    return list(
        Grant.objects.select_for_update(of=("self",))
        .filter(
            application__organisation=organisation,
            status=Grant.Status.ACTIVE,
            ends_at__gt=timezone.now(),
        )
        .order_by("pk")
    )


def _notify(grants: list[Grant], kind: str, period: str, reason: str) -> None:
    """One inbox notice per grant touched; the e-mails go once the action has committed."""
    Reminder.objects.bulk_create(
        [Reminder(owner_id=g.person_id, kind=kind, subject=str(g.pk), period=period) for g in grants],
        batch_size=1000,
        ignore_conflicts=True,
    )
    if grants:
        transaction.on_commit(lambda: standing_notices_email_task.enqueue(kind, period, reason))


def _change(
    *, organisation: Organisation, by: User, standing: str, reason: str
) -> tuple[Organisation, list[Grant]]:
    locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if locked.standing == Standing.ENDED:
        raise StandingRefused("This organisation was ended; that cannot be undone.")
    if locked.standing == standing and locked.standing_reason == reason:
        return locked, []
    now = timezone.now()
    locked.standing, locked.standing_reason, locked.standing_changed_at = standing, reason, now
    locked.save(update_fields=["standing", "standing_reason", "standing_changed_at"])
    grants = _grants_touched(locked)
    ledger_append(
        kind=_ENTRY[Standing(standing)],
        actor_type=LedgerEntry.ActorType.OPERATOR,
        actor_id=str(by.pk),
        record_ids=[locked.pk],
        record_count=len(grants),
        reason=f"{len(grants)} live grants",
    )
    _notify(grants, _NOTICE[Standing(standing)], period=f"standing-{now:%Y%m%dT%H%M%S%f}", reason=reason)
    return locked, grants


@transaction.atomic
def organisation_suspend(*, organisation: Organisation, reason: str, by: User) -> Organisation:
    """Suspend the organisation: its tokens stop at once, its grants wait, its people are told.

    Suspending a suspended organisation again with another reason updates the reason (and tells
    the people again); with the same reason it does nothing.
    """
    _operator_check(by)
    locked, _ = _change(
        organisation=organisation, by=by, standing=Standing.SUSPENDED, reason=_reason_clean(reason)
    )
    return locked


@transaction.atomic
def organisation_resume(*, organisation: Organisation, by: User) -> Organisation:
    """Lift a suspension: the organisation's tokens and grants work again; its people are told."""
    _operator_check(by)
    locked = Organisation.objects.select_for_update().get(pk=organisation.pk)
    if locked.standing != Standing.SUSPENDED:
        if locked.standing == Standing.ENDED:
            raise StandingRefused("This organisation was ended; that cannot be undone.")
        return locked
    locked, _ = _change(organisation=locked, by=by, standing=Standing.ACTIVE, reason="")
    return locked


@transaction.atomic
def organisation_end(*, organisation: Organisation, reason: str, by: User) -> Organisation:
    """End the organisation for good: revoke every live grant with its receipt, withdraw every token.

    Its people are told; the organisation and its history stay, for the ledger and the receipts.
    """
    _operator_check(by)
    text = _reason_clean(reason)
    # The apps' rows first, as a secret reset does: a token request that authenticated before
    # waits here, then finds the organisation ended.
    apps = list(Application.objects.select_for_update().filter(organisation=organisation).order_by("pk"))
    locked, grants = _change(organisation=organisation, by=by, standing=Standing.ENDED, reason=text)
    for grant in grants:
        grant_revoke_by_operator(grant=grant, operator=by, reason="the operator ended the vendor")
    for app in apps:
        application_tokens_withdraw(application=app)
    return locked


def standing_notice_view(*, reminder: Reminder, grant: Grant | None) -> dict[str, Any]:
    """What a person's notice about a vendor's standing says: the vendor, what happened, why now."""
    organisation = grant.application.organisation if grant is not None else None
    name = organisation.name if organisation is not None else "A vendor"
    kind = ReminderKind(reminder.kind)
    titles = {
        ReminderKind.VENDOR_SUSPENDED: f"{name} has been suspended",
        ReminderKind.VENDOR_RESUMED: f"{name} may use your grant again",
        ReminderKind.VENDOR_ENDED: f"{name} has been ended and your grant revoked",
    }
    return {
        "title": titles[kind],
        "organisation": organisation,
        "standing_now": organisation.standing if organisation is not None else "",
        "reason_now": organisation.standing_reason if organisation is not None else "",
    }


def _email_body(kind: str, name: str, reason: str) -> str:
    why = f"\nThe operator's reason: {reason}\n" if reason else ""
    if kind == ReminderKind.VENDOR_SUSPENDED:
        what = (
            f"The operator of vrm has suspended {name}, which you gave access to some of your data.\n"
            "Until the suspension is lifted it cannot read or write anything of yours, and nobody can\n"
            "give it new access. Your grant stays as you made it: revoke it if you want it gone.\n"
        )
    elif kind == ReminderKind.VENDOR_RESUMED:
        what = (
            f"The operator of vrm has lifted the suspension of {name}. The access you gave it works\n"
            "again, until the end you chose. Revoke it if you no longer want it.\n"
        )
    else:
        what = (
            f"The operator of vrm has ended {name}. Your grant to it is revoked; it can no longer\n"
            "read or write anything of yours. Your receipt of the revocation is on your grants page.\n"
        )
    return f"{what}{why}\nSee it in your inbox: {settings.VRM_ISSUER}/inbox/\n"


@task()
def standing_notices_email_task(kind: str, period: str, reason: str) -> int:
    return standing_notices_email(kind=kind, period=period, reason=reason)


def standing_notices_email(*, kind: str, period: str, reason: str) -> int:
    """E-mail each notice of one standing change not yet e-mailed; each is claimed first, so once."""
    pending = Reminder.objects.filter(kind=kind, period=period, emailed_at__isnull=True).select_related(
        "owner"
    )
    sent = 0
    with get_connection() as connection:
        for notice in pending.iterator(chunk_size=500):
            if not Reminder.objects.filter(pk=notice.pk, emailed_at__isnull=True).update(
                emailed_at=timezone.now()
            ):
                continue
            grant = (
                Grant.objects.select_related("application__organisation")
                .filter(pk=notice.subject)  # a grant id: these notices are made above
                .first()
            )
            if grant is None:
                continue
            organisation = grant.application.organisation
            EmailMessage(
                _EMAIL_SUBJECT[ReminderKind(kind)],
                _email_body(kind, organisation.name, reason),
                to=[notice.owner.email],
                connection=connection,
            ).send()
            sent += 1
    return sent
