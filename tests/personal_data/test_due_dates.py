"""Every record that falls due has its clear due date, whichever way it came into the store.

Records stored before due dates were kept get theirs at the person's next sign-in (the only
moment their key is there), once; records brought back after a reset or imported get theirs as
they are written.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import User
from personal_data import services, store
from personal_data.keys import keys_scope, recovery_code_issued
from personal_data.models import PersonKey, ReminderDue, ReminderKind
from personal_data.transfer import import_parse
from portal.reminders import reminders_send
from portal.services import person_signup
from tests.conftest import PASSWORD

TODAY = timezone.localdate()
NEW_PASSWORD = "a brand new passphrase"


def _fresh(person: User) -> User:
    return User.objects.get(pk=person.pk)


def _records(owner: User) -> dict[str, str]:
    """A prescription with refills left, an appliance under warranty and one without a date."""
    refill = services.record_create(
        owner=owner,
        category="prescriptions",
        data={
            "medication": "Sertraline 50 mg",
            "last_filled_on": (TODAY - dt.timedelta(days=20)).isoformat(),
            "days_supply": 30,
            "refills_remaining": 2,
        },
    )
    warranty = services.record_create(
        owner=owner,
        category="appliances",
        data={"kind": "washer", "warranty_until": (TODAY + dt.timedelta(days=30)).isoformat()},
    )
    undated = services.record_create(owner=owner, category="appliances", data={"kind": "fridge"})
    return {"refill": refill["id"], "warranty": warranty["id"], "undated": undated["id"]}


def _as_before_due_dates(owner: User) -> None:
    """Make the store look like one filled before due dates were kept (migration 0009)."""
    ReminderDue.objects.filter(owner=owner).delete()
    PersonKey.objects.filter(person=owner).update(due_dates_checked_at=None)


def _due(owner: User) -> dict[str, tuple[str, dt.date]]:
    return {str(d.record_id): (d.kind, d.due_on) for d in ReminderDue.objects.filter(owner=owner)}


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The ids of the records opened (store.row_open), in order."""
    calls: list[str] = []
    original: Callable[..., Any] = store.row_open

    def counting(category: Any, row: Any, keys: Any) -> Any:
        calls.append(str(row["id"] if isinstance(row, dict) else row.id))
        return original(category, row, keys)

    monkeypatch.setattr(store, "row_open", counting)
    return calls


def test_a_new_store_is_marked_checked(alice: User) -> None:
    assert PersonKey.objects.get(person=alice).due_dates_checked_at is not None


def test_records_from_before_due_dates_get_them_at_sign_in(alice: User) -> None:
    ids = _records(alice)
    _as_before_due_dates(alice)
    assert reminders_send().made[ReminderKind.WARRANTY] == 0  # nothing knows the date yet

    services.person_unlock(person=_fresh(alice), password=PASSWORD)

    assert _due(alice) == {
        ids["refill"]: (ReminderKind.REFILL, TODAY + dt.timedelta(days=10)),
        ids["warranty"]: (ReminderKind.WARRANTY, TODAY + dt.timedelta(days=30)),
    }
    assert PersonKey.objects.get(person=alice).due_dates_checked_at is not None
    assert reminders_send().made[ReminderKind.WARRANTY] == 1


def test_the_catch_up_opens_only_records_without_a_due_date(alice: User, opened: list[str]) -> None:
    ids = _records(alice)
    _as_before_due_dates(alice)
    ReminderDue.objects.create(
        owner=alice, kind=ReminderKind.REFILL, record_id=ids["refill"], due_on=TODAY + dt.timedelta(days=10)
    )
    services.person_unlock(person=_fresh(alice), password=PASSWORD)
    assert sorted(opened) == sorted([ids["warranty"], ids["undated"]])
    assert set(_due(alice)) == {ids["refill"], ids["warranty"]}


def test_a_checked_store_opens_nothing_at_sign_in(alice: User, opened: list[str]) -> None:
    _records(alice)
    services.person_unlock(person=_fresh(alice), password=PASSWORD)
    services.person_unlock(person=_fresh(alice), password=PASSWORD)
    assert opened == []


def test_records_brought_back_after_a_reset_get_their_due_dates(db: Any) -> None:
    with keys_scope():
        person = person_signup(email="rosa@example.com", password=PASSWORD, display_name="Rosa")
        old_code = recovery_code_issued(person)
        assert old_code is not None
        ids = _records(person)
    _as_before_due_dates(person)  # stored before due dates were kept, never edited since
    with keys_scope():
        services.person_store_restart(person=_fresh(person), password=NEW_PASSWORD)
        # Set aside, they are not in the store: nothing of theirs falls due.
        assert _due(person) == {}
        services.person_store_restore(person=_fresh(person), code=old_code)
    assert set(_due(person)) == {ids["refill"], ids["warranty"]}


def test_set_aside_records_stop_falling_due(db: Any) -> None:
    with keys_scope():
        person = person_signup(email="rosa@example.com", password=PASSWORD, display_name="Rosa")
        _records(person)
    assert _due(person)
    with keys_scope():
        services.person_store_restart(person=_fresh(person), password=NEW_PASSWORD)
    assert _due(person) == {}
    assert reminders_send().made[ReminderKind.WARRANTY] == 0


def test_imported_records_get_their_due_dates(alice: User) -> None:
    export = {
        "format": "vrm-export/1",
        "prescriptions": [
            {
                "medication": "Sertraline 50 mg",
                "last_filled_on": TODAY.isoformat(),
                "days_supply": 30,
                "refills_remaining": 1,
            }
        ],
        "appliances": [{"kind": "oven", "warranty_until": "2031-05-01"}],
    }
    plan = import_parse(raw=json.dumps(export).encode(), filename="export.json")
    pending = services.import_stage(owner=alice, plan=plan, filename="export.json")
    services.import_confirm(owner=alice, pending_id=pending.pk)
    assert sorted(_due(alice).values()) == [
        (ReminderKind.REFILL, TODAY + dt.timedelta(days=30)),
        (ReminderKind.WARRANTY, dt.date(2031, 5, 1)),
    ]
