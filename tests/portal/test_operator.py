"""What an operator may do to an account: through a service, in the ledger, and the owner is told."""

from __future__ import annotations

import re
from smtplib import SMTPException
from typing import Any

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.test import Client

from accounts.models import User
from audit.models import LedgerEntry
from personal_data.pseudonyms import ledger_pseudonym
from portal.activity import activity_for_person, entry_sentence
from portal.operator import account_deactivate, account_password_reset_send, account_reactivate
from tests.conftest import PASSWORD

CHANGELIST = "/admin/accounts/user/"


def _admin(operator: User) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def _only_entry(kind: str) -> LedgerEntry:
    entries = list(LedgerEntry.objects.filter(kind=kind))
    assert len(entries) == 1, entries
    return entries[0]


def test_deactivation_is_recorded_told_and_signs_the_person_out(alice: User, operator: User) -> None:
    session = Client()
    session.force_login(alice)
    assert session.get("/dashboard/").status_code == 200

    account_deactivate(account=alice, operator=operator)

    alice.refresh_from_db()
    assert not alice.is_active
    entry = _only_entry(LedgerEntry.Kind.OPERATOR_DEACTIVATED)
    assert (entry.actor_type, entry.actor_id) == ("operator", str(operator.pk))
    assert entry.subject == ledger_pseudonym(person=alice) and entry.record_ids == []
    assert str(alice.pk) not in str(entry.__dict__) and alice.email not in str(entry.__dict__)
    assert [m.to for m in mail.outbox] == [[alice.email]]
    assert "deactivated" in mail.outbox[0].subject
    # Her session dies with the account, and she reads what happened in her activity.
    assert session.get("/dashboard/").status_code == 302
    account_reactivate(account=alice, operator=operator)
    assert _only_entry(LedgerEntry.Kind.OPERATOR_REACTIVATED).subject == entry.subject
    assert len(mail.outbox) == 2 and "reactivated" in mail.outbox[1].subject
    sentences = [entry_sentence(e) for e in activity_for_person(person=alice)]
    assert sentences[:2] == ["The operator reactivated your account", "The operator deactivated your account"]


def test_nothing_happens_unless_the_person_can_be_told(
    alice: User, operator: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(self: EmailMessage, fail_silently: bool = False) -> int:
        raise SMTPException("mail server down")

    monkeypatch.setattr(EmailMessage, "send", refuse)
    with pytest.raises(SMTPException):
        account_deactivate(account=alice, operator=operator)
    alice.refresh_from_db()
    assert alice.is_active and not LedgerEntry.objects.exists()


def test_password_link_goes_to_the_person_who_alone_sets_the_password(alice: User, operator: User) -> None:
    old_hash = User.objects.get(pk=alice.pk).password
    account_password_reset_send(account=alice, operator=operator)
    assert User.objects.get(pk=alice.pk).password == old_hash  # the operator set nothing
    entry = _only_entry(LedgerEntry.Kind.OPERATOR_PASSWORD_RESET)
    assert entry.actor_id == str(operator.pk) and entry.subject == ledger_pseudonym(person=alice)
    (message,) = mail.outbox
    assert message.to == [alice.email]
    link = re.search(r"https?://[^/\s]+(/accounts/reset/\S+/)", message.body)
    assert link is not None
    person = Client()
    form = person.get(link.group(1), follow=True)
    assert form.status_code == 200 and form.context["validlink"]
    new_password = "a brand new passphrase 42"
    done = person.post(
        form.redirect_chain[-1][0], {"new_password1": new_password, "new_password2": new_password}
    )
    assert done.status_code == 302
    assert User.objects.get(pk=alice.pk).check_password(new_password)


def test_staff_accounts_are_named_by_id_and_people_never(vendor_staff: User, operator: User) -> None:
    account_deactivate(account=vendor_staff, operator=operator)
    entry = _only_entry(LedgerEntry.Kind.OPERATOR_DEACTIVATED)
    assert entry.subject == "" and entry.record_ids == [str(vendor_staff.pk)]
    assert entry.reason == "vendor_staff account"


def test_an_operator_cannot_lock_themselves_out_nor_act_unless_an_operator(
    operator: User, alice: User, bob: User
) -> None:
    with pytest.raises(ValidationError):
        account_deactivate(account=operator, operator=operator)
    with pytest.raises(Exception, match="operator"):
        account_deactivate(account=bob, operator=alice)
    assert not LedgerEntry.objects.exists() and not mail.outbox


# The admin: actions call the services; nothing else about an account can be changed there.


def test_admin_actions_go_through_the_services(alice: User, bob: User, operator: User) -> None:
    client = _admin(operator)
    response = client.post(CHANGELIST, {"action": "deactivate", "_selected_action": [alice.pk]})
    assert response.status_code == 302
    assert not User.objects.get(pk=alice.pk).is_active
    assert _only_entry(LedgerEntry.Kind.OPERATOR_DEACTIVATED).actor_id == str(operator.pk)
    client.post(CHANGELIST, {"action": "send_password_reset", "_selected_action": [bob.pk]})
    assert _only_entry(LedgerEntry.Kind.OPERATOR_PASSWORD_RESET).subject == ledger_pseudonym(person=bob)
    client.post(CHANGELIST, {"action": "reactivate", "_selected_action": [alice.pk]})
    assert User.objects.get(pk=alice.pk).is_active
    assert [m.to for m in mail.outbox] == [[alice.email], [bob.email], [alice.email]]
    # The link went to bob alone: the admin never shows it.
    link = re.search(r"/accounts/reset/\S+/", mail.outbox[1].body)
    assert link is not None
    for page in (CHANGELIST, f"{CHANGELIST}{bob.pk}/change/"):
        assert link.group(0) not in client.get(page).content.decode()


def test_admin_cannot_set_a_password_edit_an_email_add_or_delete_an_account(
    alice: User, operator: User
) -> None:
    client = _admin(operator)
    before = User.objects.filter(pk=alice.pk).values().get()
    page = client.get(f"{CHANGELIST}{alice.pk}/change/").content.decode()
    assert f"{alice.pk}/password/" not in page and 'name="password' not in page
    assert client.get(f"{CHANGELIST}{alice.pk}/password/").status_code in (302, 404)
    assert client.post(
        f"{CHANGELIST}{alice.pk}/password/", {"password1": "x" * 20, "password2": "x" * 20}
    ).status_code in (302, 404)
    change = {"email": "mallory@example.com", "is_active": "", "is_superuser": "on", "role": "auditor"}
    assert client.post(f"{CHANGELIST}{alice.pk}/change/", change).status_code == 403
    assert client.post(f"{CHANGELIST}{alice.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"{CHANGELIST}add/", {"email": "new@example.com", "role": "person"}).status_code == 403
    client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [alice.pk], "post": "yes"})
    assert User.objects.filter(pk=alice.pk).values().get() == before
    assert not User.objects.filter(email="new@example.com").exists()
    assert User.objects.get(pk=alice.pk).check_password(PASSWORD)
    assert not LedgerEntry.objects.exists()


def test_admin_may_change_only_an_operator_accounts_admin_flags(operator: User, alice: Any) -> None:
    colleague = User.objects.create_superuser(email="ops2@example.com", password=PASSWORD)
    client = _admin(operator)
    response = client.post(
        f"{CHANGELIST}{colleague.pk}/change/", {"is_staff": "on", "email": "evil@example.com"}
    )
    assert response.status_code == 302
    colleague.refresh_from_db()
    assert colleague.is_staff and not colleague.is_superuser and colleague.email == "ops2@example.com"
