"""The inbox and the store's own reminders: made once, at the right time, as the person chose."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test import Client
from django.utils import timezone

from consent.services import grant_authorize
from personal_data.models import Reminder, ReminderDue, ReminderKind
from personal_data.selectors import preferences_get
from personal_data.services import (
    person_erase,
    preferences_update,
    record_create,
    record_delete,
    record_update,
)
from portal.inbox import inbox_unread_count
from portal.reminders import Candidate, _make_once, reminders_send
from tests.conftest import matched_alert
from vendors.models import Alert

TODAY = timezone.localdate()


def _prescription(owner: Any, *, days_ago: int, supply: int, refills: int = 2) -> dict[str, Any]:
    return record_create(
        owner=owner,
        category="prescriptions",
        data={
            "medication": "Sertraline 50 mg",
            "last_filled_on": (TODAY - dt.timedelta(days=days_ago)).isoformat(),
            "days_supply": supply,
            "refills_remaining": refills,
        },
    )


def _appliance(owner: Any, *, warranty_in: int) -> dict[str, Any]:
    return record_create(
        owner=owner,
        category="appliances",
        data={
            "kind": "washer",
            "brand": "Bosch",
            "model_number": "WAX32",
            "warranty_until": (TODAY + dt.timedelta(days=warranty_in)).isoformat(),
        },
    )


def _contact(owner: Any, **contact: Any) -> None:
    prefs = preferences_get(owner=owner)
    preferences_update(owner=owner, data={**prefs, "contact": {**prefs.get("contact", {}), **contact}})


def _made(owner: Any, kind: str) -> int:
    return Reminder.objects.filter(owner=owner, kind=kind).count()


# Due and not due, at each kind's boundary.


def test_a_refill_is_reminded_three_days_ahead_not_four(alice: Any) -> None:
    due = _prescription(alice, days_ago=27, supply=30)  # runs out in 3 days
    _prescription(alice, days_ago=26, supply=30)  # in 4 days
    run = reminders_send()
    assert run.made[ReminderKind.REFILL] == 1
    assert Reminder.objects.get(owner=alice, kind=ReminderKind.REFILL).subject == due["id"]


def test_no_refill_reminder_without_refills_left(alice: Any) -> None:
    _prescription(alice, days_ago=29, supply=30, refills=0)
    assert reminders_send().made[ReminderKind.REFILL] == 0


def test_a_warranty_is_reminded_sixty_days_ahead_not_sixty_one(alice: Any) -> None:
    due = _appliance(alice, warranty_in=60)
    _appliance(alice, warranty_in=61)
    assert reminders_send().made[ReminderKind.WARRANTY] == 1
    assert Reminder.objects.get(owner=alice, kind=ReminderKind.WARRANTY).subject == due["id"]


def test_due_dates_follow_edits_and_deletions(alice: Any) -> None:
    record = _appliance(alice, warranty_in=61)
    record_update(
        owner=alice,
        category="appliances",
        record_id=record["id"],
        data={"warranty_until": (TODAY + dt.timedelta(days=10)).isoformat()},
    )
    assert ReminderDue.objects.get(record_id=record["id"]).due_on == TODAY + dt.timedelta(days=10)
    record_delete(owner=alice, category="appliances", record_id=record["id"])
    assert not ReminderDue.objects.filter(record_id=record["id"]).exists()


@pytest.fixture
def grant(alice: Any, shop_app: Any) -> Any:
    return grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=30)


def test_a_grant_ending_is_reminded_within_seven_days(alice: Any, grant: Any) -> None:
    minute = dt.timedelta(minutes=1)
    assert reminders_send(now=grant.ends_at - dt.timedelta(days=7) - minute).made["grant_ending"] == 0
    assert reminders_send(now=grant.ends_at - dt.timedelta(days=7) + minute).made["grant_ending"] == 1
    # An ended grant is not reminded about.
    Reminder.objects.all().delete()
    assert reminders_send(now=grant.ends_at + minute).made["grant_ending"] == 0


def test_a_grant_summary_every_ninety_days(alice: Any, shop_app: Any) -> None:
    grant = grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=365)
    day90 = grant.created_at + dt.timedelta(days=90)
    assert reminders_send(now=day90 - dt.timedelta(minutes=1)).made["grant_summary"] == 0
    assert reminders_send(now=day90 + dt.timedelta(minutes=1)).made["grant_summary"] == 1
    assert reminders_send(now=day90 + dt.timedelta(days=30)).made["grant_summary"] == 0
    assert reminders_send(now=day90 + dt.timedelta(days=90)).made["grant_summary"] == 1
    assert list(Reminder.objects.filter(kind="grant_summary").values_list("period", flat=True)) == [
        "90d-1",
        "90d-2",
    ]


def test_the_summary_says_what_was_read_and_how_to_revoke(alice: Any, shop_app: Any) -> None:
    grant = grant_authorize(person=alice, application=shop_app, scopes=["purchases:read"], duration_days=365)
    reminders_send(now=grant.created_at + dt.timedelta(days=91))
    client = Client()
    client.force_login(alice)
    reminder = Reminder.objects.get(kind="grant_summary")
    page = client.get(f"/inbox/reminders/{reminder.pk}/").content.decode()
    assert "read your data <strong>0 times</strong>" in page
    assert "Revoke" in page and f"/grants/{grant.pk}/" in page


# Once, and only once.


def test_a_rerun_sends_nothing_new(alice: Any, grant: Any) -> None:
    _prescription(alice, days_ago=1, supply=31)  # due the day before the grant ends
    _contact(alice, reminders_email=True)
    now = grant.ends_at - dt.timedelta(days=1)
    first = reminders_send(now=now)
    assert sum(first.made.values()) == 2 and first.emailed == 2
    call_command("send_reminders", verbosity=0)
    second = reminders_send(now=now)
    assert sum(second.made.values()) == 0 and second.emailed == 0
    assert Reminder.objects.count() == 2
    assert len(mail.outbox) == 2


def test_the_database_refuses_a_second_reminder_for_the_same_period(alice: Any) -> None:
    # Two runs that both saw "not made yet": the constraint, not the check, decides.
    candidate = Candidate(alice.pk, "refill", "r1", "2026-01-01", None)
    assert _make_once(candidate) is not None
    assert _make_once(candidate) is None
    with pytest.raises(IntegrityError):
        Reminder.objects.create(owner=alice, kind="refill", subject="r1", period="2026-01-01")


@pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite serialises writers; PostgreSQL runs them at once"
)
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_make_and_mail_each_reminder_once(alice: Any) -> None:
    for days in range(27, 31):
        _prescription(alice, days_ago=days, supply=30)
    _contact(alice, reminders_email=True)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            reminders_send()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert Reminder.objects.filter(kind="refill").count() == 4
    assert len(mail.outbox) == 4


# The person's choices.


def test_turning_a_kind_off_stops_it(alice: Any) -> None:
    _prescription(alice, days_ago=28, supply=30)
    _appliance(alice, warranty_in=5)
    _contact(alice, reminders=["warranty"])
    run = reminders_send()
    assert run.made[ReminderKind.REFILL] == 0 and run.made[ReminderKind.WARRANTY] == 1
    assert run.skipped_off == 1


def test_the_preferences_page_turns_kinds_off(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    client.post("/data/preferences/", {"contact_email": "on", "reminders": ["refill"]})
    contact = preferences_get(owner=alice)["contact"]
    assert contact["reminders"] == ["refill"] and contact["reminders_email"] is False


def test_reminders_are_emailed_only_to_who_opted_in(alice: Any, bob: Any) -> None:
    _prescription(alice, days_ago=28, supply=30)
    _prescription(bob, days_ago=28, supply=30)
    _contact(bob, reminders_email=True)
    reminders_send()
    assert [m.to for m in mail.outbox] == [[bob.email]]
    # The mail says a refill is due, never which medication.
    assert "Sertraline" not in mail.outbox[0].body + mail.outbox[0].subject
    assert "refill" in mail.outbox[0].subject.lower()


def test_safety_only_means_no_reminder_mail(alice: Any) -> None:
    _prescription(alice, days_ago=28, supply=30)
    _contact(alice, reminders_email=True, safety_alerts_only=True)
    assert reminders_send().emailed == 0


def test_no_medication_name_in_clear(alice: Any) -> None:
    _prescription(alice, days_ago=28, supply=30)
    reminders_send()
    rows = [*Reminder.objects.values(), *ReminderDue.objects.values()]
    assert rows and "Sertraline" not in repr(rows)


# The inbox pages.


@pytest.fixture
def alert(alice: Any) -> Alert:
    return matched_alert(alice)


def test_the_inbox_lists_alerts_and_reminders(alice: Any, alert: Alert) -> None:
    _prescription(alice, days_ago=28, supply=30)
    reminders_send()
    client = Client()
    client.force_login(alice)
    page = client.get("/inbox/").content.decode()
    assert "Peanut butter recall" in page and "Refill due" in page
    # The list says the kind; the medication shows only on the reminder's own page.
    assert "Sertraline" not in page
    only_alerts = client.get("/inbox/?kind=alert").content.decode()
    assert "Peanut butter recall" in only_alerts and "Refill due" not in only_alerts


def test_the_unread_count_in_the_navigation(alice: Any, alert: Alert) -> None:
    _prescription(alice, days_ago=28, supply=30)
    reminders_send()
    client = Client()
    client.force_login(alice)
    assert inbox_unread_count(person=alice) == 2
    assert '>Inbox <span class="count-badge">2<' in client.get("/dashboard/").content.decode()
    reminder = Reminder.objects.get(owner=alice)
    page = client.get(f"/inbox/reminders/{reminder.pk}/").content.decode()
    assert "Sertraline 50 mg" in page
    assert inbox_unread_count(person=alice) == 1
    assert "Refill due" not in client.get("/inbox/?unread=1").content.decode()
    client.post("/inbox/read-all/")
    assert inbox_unread_count(person=alice) == 0
    assert "count-badge" not in client.get("/dashboard/").content.decode()


def test_the_first_visit_explains_the_inbox(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    assert "Nothing here yet" in client.get("/inbox/").content.decode()


def test_another_persons_inbox_items_are_not_found(alice: Any, bob: Any, alert: Alert) -> None:
    _prescription(alice, days_ago=28, supply=30)
    reminders_send()
    reminder = Reminder.objects.get(owner=alice)
    client = Client()
    client.force_login(bob)
    assert client.get(f"/inbox/reminders/{reminder.pk}/").status_code == 404
    assert client.get(f"/inbox/alerts/{alert.pk}/").status_code == 404
    assert Reminder.objects.get(pk=reminder.pk).read_at is None
    assert "Peanut" not in client.get("/inbox/").content.decode()


def test_erasure_removes_due_dates_and_reminders(alice: Any) -> None:
    _prescription(alice, days_ago=28, supply=30)
    reminders_send()
    person_erase(person=alice)
    assert not ReminderDue.objects.filter(owner=alice).exists()
    assert not Reminder.objects.filter(owner=alice).exists()
