"""What allowing a consent request would change in the grant the person already gave that app.

Allowing replaces the live grant (`grant_authorize`): the ticked scopes, an end counted from
today, the history window and gifts. The consent page lists every change the form could make;
each names the form field and value it depends on, so the page shows the ones that apply to
the form as it stands, and static/js/consent-changes.js keeps that in step as the person ticks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.template.defaultfilters import pluralize
from django.utils import dateformat

from consent.forms import GIFTS_ON
from consent.models import Grant
from consent.scopes import SCOPES
from consent.services import DURATIONS, HISTORY_MONTHS
from consent.types import OAuthApplication


@dataclass(frozen=True)
class Change:
    verb: str
    rest: str
    less: bool  # the vendor would see less, or for less time
    field: str = ""  # the form field the change depends on; "" when it happens whatever is ticked
    value: str = ""
    when_chosen: bool = True  # it happens when `value` is ticked or selected (False: when it is not)
    sensitive: bool = False

    def applies(self, chosen: Mapping[str, Sequence[str]]) -> bool:
        if not self.field:
            return True
        return (self.value in chosen.get(self.field, ())) == self.when_chosen


def _day(moment: dt.datetime) -> str:
    return dateformat.format(moment, "j M Y")


def _days(n: int) -> str:
    return f"{n} day{pluralize(n)}"


def _history(months: int | None) -> str:
    if months is None:
        return "all your history"
    return "only the last month" if months == 1 else f"only the last {months} months"


def consent_changes(
    *,
    grant: Grant,
    application: OAuthApplication,
    requested: Sequence[str],
    asks_gifts: bool,
    now: dt.datetime,
) -> list[Change]:
    """Return every change the consent form could make to the live `grant`, in the page's words."""
    changes: list[Change] = []
    shared = set(grant.scopes)
    for name in grant.scopes:
        if name not in requested:
            changes.append(
                Change("Stops seeing", f"{SCOPES[name].title} (not asked for this time)", less=True)
            )
    for name in requested:
        scope = SCOPES[name]
        if name in shared:
            changes.append(Change("Stops seeing", scope.title, True, "scopes", name, when_chosen=False))
            before, after = grant.purposes.get(name, ""), application.purpose_of(name)
            if before and after and before != after:
                changes.append(
                    Change(
                        f"New reason for {scope.title}:",
                        f"“{after}” (before: “{before}”)",
                        False,
                        "scopes",
                        name,
                    )
                )
        else:
            changes.append(
                Change("Starts seeing", scope.title, False, "scopes", name, sensitive=scope.sensitive)
            )
    now_ends = _day(grant.ends_at)
    for days in DURATIONS:
        ends = now + dt.timedelta(days=days)
        # In whole days between the dates the person reads, as the grant's dates are shown (UTC).
        later_by = (ends.astimezone(dt.UTC).date() - grant.ends_at.astimezone(dt.UTC).date()).days
        if later_by < 0:
            changes.append(
                Change(
                    "Ends sooner:",
                    f"on {_day(ends)} instead of {now_ends} ({_days(-later_by)} earlier)",
                    True,
                    "duration_days",
                    str(days),
                )
            )
        elif later_by > 0:
            changes.append(
                Change(
                    "Lasts longer:",
                    f"until {_day(ends)} instead of {now_ends} ({_days(later_by)} more)",
                    False,
                    "duration_days",
                    str(days),
                )
            )
    for months in (None, *HISTORY_MONTHS):
        if months == grant.history_months:
            continue
        further = months is None or (grant.history_months is not None and months > grant.history_months)
        changes.append(
            Change(
                "Looks further back:" if further else "Looks back less far:",
                f"{_history(months)} instead of {_history(grant.history_months)}",
                not further,
                "history_months",
                "" if months is None else str(months),
            )
        )
    if asks_gifts and grant.include_gifts:
        changes.append(
            Change(
                "Leaves out gifts:",
                "purchases you marked as gifts are no longer shown",
                True,
                "include_gifts",
                GIFTS_ON,
                when_chosen=False,
            )
        )
    elif asks_gifts:
        changes.append(
            Change(
                "Includes gifts:",
                "purchases you marked as gifts are shown too",
                False,
                "include_gifts",
                GIFTS_ON,
            )
        )
    return changes
