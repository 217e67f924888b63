"""Property tests: whatever the records and the grant, the API shows exactly the effective set.

The effective set is computed here by a reference written from INTERFACES.md §4-5 alone
(shared, gifts only with the opt-in, on or after the first day of the history window), and
compared with what a vendor can list page by page, fetch one by one, and ask yes/no about.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.scopes import PERSON_SCOPES
from tests.vendors_api.conftest import Api, add_record, authorize, issue_token, make_person
from vendors.models import Application

THREE_YEARS = 3 * 365 + 1


@dataclass(frozen=True)
class Spec:
    """One purchase: whether it is shared, a gift, and how many days old."""

    shared: bool
    is_gift: bool
    age_days: int


@dataclass(frozen=True)
class GrantSpec:
    scopes: frozenset[str]
    history_months: int | None
    include_gifts: bool


def first_day(today: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months ago (clamped to the month's end)."""
    month_index = today.year * 12 + (today.month - 1) - months
    year, month = month_index // 12, month_index % 12 + 1
    return dt.date(year, month, min(today.day, calendar.monthrange(year, month)[1]))


def effective(purchases: list[tuple[Spec, dict[str, Any]]], grant: GrantSpec, today: dt.date) -> set[str]:
    start = first_day(today, grant.history_months) if grant.history_months else None
    return {
        doc["id"]
        for spec, doc in purchases
        if spec.shared
        and (grant.include_gifts or not spec.is_gift)
        and (start is None or dt.date.fromisoformat(doc["purchased_on"]) >= start)
    }


purchase_specs = st.lists(
    st.builds(Spec, st.booleans(), st.booleans(), st.integers(min_value=0, max_value=THREE_YEARS)),
    max_size=12,
)
grant_specs = st.builds(
    GrantSpec,
    st.frozensets(st.sampled_from(PERSON_SCOPES), min_size=1),
    st.sampled_from([None, 1, 3, 6, 12, 24]),
    st.booleans(),
)
# A page size small enough to need several pages, and optional since/until query filters.
queries = st.fixed_dictionaries(
    {"limit": st.integers(min_value=1, max_value=5)},
    optional={
        "since": st.integers(min_value=0, max_value=THREE_YEARS),
        "until": st.integers(min_value=0, max_value=THREE_YEARS),
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=purchase_specs, grant=grant_specs, query=queries)
def test_api_returns_exactly_the_effective_set(
    shop_app: Application,
    throttle_rates: Callable[..., None],
    specs: list[Spec],
    grant: GrantSpec,
    query: dict[str, int],
) -> None:
    throttle_rates()  # one app makes every example's requests
    # A new person per example: the examples share one database transaction.
    person = make_person("p")
    today = timezone.now().date()
    purchases = [
        (
            spec,
            add_record(
                person,
                "purchases",
                day=today - dt.timedelta(days=spec.age_days),
                shared=spec.shared,
                is_gift=spec.is_gift,
            ),
        )
        for spec in specs
    ]
    consent = authorize(
        person,
        shop_app,
        sorted(grant.scopes),
        history_months=grant.history_months,
        include_gifts=grant.include_gifts,
    )
    api = Api(issue_token(consent))
    expected = effective(purchases, grant, today)
    params = {
        name: (today - dt.timedelta(days=value)).isoformat() if name != "limit" else value
        for name, value in query.items()
    }

    if "purchases:read" not in grant.scopes:
        response = api.get("purchases", params)
        assert response.status_code == 403
        assert response.json()["type"] == f"{django_settings.VRM_ISSUER}/problems/insufficient-scope"
    else:
        listed = api.all_pages("purchases", params)
        ids = [r["id"] for r in listed]
        assert len(ids) == len(set(ids)), "a record appeared on two pages"
        since, until = params.get("since"), params.get("until")
        assert set(ids) == {
            doc["id"]
            for _, doc in purchases
            if doc["id"] in expected
            and (since is None or doc["purchased_on"] >= since)
            and (until is None or doc["purchased_on"] <= until)
        }
        for _, doc in purchases:
            one = api.get(f"purchases/{doc['id']}")
            assert one.status_code == (200 if doc["id"] in expected else 404)

    if "purchases:check" in grant.scopes:
        for _, doc in purchases:
            owns = api.get("purchases/owns", {"gtin": doc["gtin"]})
            assert owns.json() == {"gtin": doc["gtin"], "owns": doc["id"] in expected}
