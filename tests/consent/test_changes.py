"""The consent page over a live grant says what is shared now and what "Allow" would change."""

from __future__ import annotations

import datetime as dt
import html
import re
from typing import Any

from django.utils import dateformat, timezone

from consent.changes import consent_changes
from consent.models import Grant
from consent.services import grant_authorize
from tests.consent.conftest import Flow
from vendors.models import Application

SIX = [
    "appliances:read",
    "closet:read",
    "preferences:read",
    "profile:read",
    "purchases:check",
    "purchases:read",
]


def _existing(alice: Any, app: Application) -> Grant:
    return grant_authorize(
        person=alice, application=app, scopes=SIX, duration_days=90, history_months=12, include_gifts=True
    )


def _day(moment: dt.datetime) -> str:
    return dateformat.format(moment, "j M Y")


def _changes(page: str) -> tuple[list[str], list[str]]:
    """The page's change items as text: (shown, hidden)."""
    shown: list[str] = []
    hidden: list[str] = []
    for attrs, body in re.findall(r'<li class="(?:less|more)"([^>]*)>(.*?)</li>', page, re.S):
        text = html.unescape(" ".join(re.sub(r"<[^>]+>", " ", body).split()))
        (hidden if " hidden" in attrs else shown).append(text)
    return shown, hidden


def test_changes_name_added_and_removed_scopes_and_a_shorter_end(alice: Any, shop_app: Application) -> None:
    grant = _existing(alice, shop_app)
    now, ends = timezone.now(), _day(grant.ends_at)
    changes = consent_changes(
        grant=grant,
        application=shop_app,
        requested=["profile:read", "purchases:read", "prescriptions:read"],
        asks_gifts=True,
        now=now,
    )
    # Three profiles, ticked the way a person might: keep name and purchases, add prescriptions.
    chosen = {
        "scopes": ["profile:read", "purchases:read", "prescriptions:read"],
        "duration_days": ["7"],
        "history_months": ["3"],
        "include_gifts": [],
    }
    applying = [f"{c.verb} {c.rest}" for c in changes if c.applies(chosen)]
    assert applying == [
        "Stops seeing Your appliances (not asked for this time)",
        "Stops seeing Your closet (not asked for this time)",
        "Stops seeing Your preferences (not asked for this time)",
        "Stops seeing Yes/no questions about your purchases (not asked for this time)",
        "Starts seeing Your prescriptions",
        f"Ends sooner: on {_day(now + dt.timedelta(days=7))} instead of {ends} (83 days earlier)",
        "Looks back less far: only the last 3 months instead of only the last 12 months",
        "Leaves out gifts: purchases you marked as gifts are no longer shown",
    ]
    sensitive = [c for c in changes if c.applies(chosen) and c.sensitive]
    assert [c.rest for c in sensitive] == ["Your prescriptions"]
    # Unticking a scope shared now says it stops; a longer time says so too.
    chosen.update(scopes=["profile:read"], duration_days=["365"], history_months=[""], include_gifts=["on"])
    applying = [f"{c.verb} {c.rest}" for c in changes if c.applies(chosen)]
    assert "Stops seeing Your purchases" in applying and "Starts seeing Your prescriptions" not in applying
    assert (
        f"Lasts longer: until {_day(now + dt.timedelta(days=365))} instead of {ends} (275 days more)"
        in applying
    )
    assert "Looks further back: all your history instead of only the last 12 months" in applying
    assert not any("gifts" in line for line in applying)


def test_a_new_reason_for_a_scope_shared_now_is_named(alice: Any, shop_app: Application) -> None:
    grant = _existing(alice, shop_app)
    shop_app.scope_purposes = {
        **shop_app.scope_purposes,
        "purchases:read": "to sell your history to partners",
    }
    shop_app.save()
    changes = consent_changes(
        grant=grant, application=shop_app, requested=["purchases:read"], asks_gifts=True, now=timezone.now()
    )
    reason = [c for c in changes if c.verb.startswith("New reason")]
    assert [f"{c.verb} {c.rest}" for c in reason] == [
        "New reason for Your purchases: “to sell your history to partners” "
        "(before: “to serve you better with purchases:read”)"
    ]
    assert reason[0].applies({"scopes": ["purchases:read"]}) and not reason[0].applies({"scopes": []})


def test_consent_page_over_a_live_grant_shows_it_and_the_changes(flow: Flow, alice: Any) -> None:
    grant = _existing(alice, flow.app)
    path = flow.authorize_path(scope="profile:read purchases:read prescriptions:read")
    page = flow.client.get(path).content.decode()
    assert "Acme Shop asks again for your data" in page
    now_part = page[page.index("What Acme Shop can see now") : page.index("What changes if you press Allow")]
    for title in ("Your appliances", "Your closet", "Your preferences", "Your name", "Your purchases"):
        assert f"<li>{title}</li>" in now_part
    assert f"Until {_day(grant.ends_at)} (89 days left)" in now_part
    assert "History: only the last 12 months" in now_part and "Gifts: included" in now_part

    # As first shown: only "Your name" ticked, 30 days, all history, gifts unticked.
    shown, hidden = _changes(page)
    assert (
        "Stops seeing Your purchases" in shown
        and "Stops seeing Your closet (not asked for this time)" in shown
    )
    assert "Starts seeing Your prescriptions sensitive" in hidden
    assert any(line.startswith("Ends sooner:") and "(60 days earlier)" in line for line in shown)
    assert any(line.startswith("Ends sooner:") and "(83 days earlier)" in line for line in hidden)
    assert "Leaves out gifts: purchases you marked as gifts are no longer shown" in shown

    # Shown again after a mistake, the list follows what the person had chosen.
    again = flow.consent(path, scopes=[], duration=7, history_months="3", include_gifts="on")
    assert again.status_code == 400
    shown, _hidden = _changes(again.content.decode())
    assert any(line.startswith("Ends sooner:") and "(83 days earlier)" in line for line in shown)
    assert "Looks back less far: only the last 3 months instead of only the last 12 months" in shown
    assert not any("gifts" in line for line in shown)
    grant.refresh_from_db()
    assert len(grant.scopes) == 6  # nothing changed until "Allow" succeeds


def test_consent_page_without_a_live_grant_shows_no_changes(flow: Flow) -> None:
    page = flow.client.get(flow.authorize_path()).content.decode()
    assert "would like to see some of your data" in page
    assert "What changes if you press Allow" not in page and "consent-changes.js" not in page
