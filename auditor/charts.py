"""Charts on the auditor's pages: server-drawn SVG from counts the database already aggregated.

The same approach as the person's activity chart (portal/activity.py): stacked bars per day, a
legend, and the numbers as a table for screen readers. No script, no inline style: positions and
colours are SVG presentation attributes. The rows come from auditor.selectors (TruncDate and
Count in SQL), so a chart costs one query however long the ledger is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.selectors import GrantStatus, VendorGrantCounts

PALETTE = ("#1f6f5c", "#2f6fb3", "#b3541e", "#7d3c98", "#8a6d00", "#a61e4d")
OTHERS_COLOUR = "#5f6b7a"
DEFAULT_DAYS = 30
MAX_DAYS = 366
BAR_W, GAP, PLOT_H, TOP, LEFT = 14, 4, 160, 10, 40


@dataclass
class Series:
    name: str
    colour: str
    total: int


@dataclass
class Bar:
    x: int
    segments: list[tuple[int, int, str, str]]  # (y, height, colour, title)
    label: str


@dataclass
class DayChart:
    title: str
    series: list[Series]
    bars: list[Bar]
    table: list[tuple[dt.date, list[int], int]]
    width: int
    height: int
    peak: int
    first: dt.date
    last: dt.date
    total: int


def _ranked(totals: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    """Name the biggest vendors one colour each and the rest "Other vendors"; slot per vendor."""
    ranked = sorted(totals, key=lambda name: (-totals[name], name))
    shown = ranked[: len(PALETTE)]
    slots = {name: shown.index(name) if name in shown else len(shown) for name in ranked}
    if len(ranked) > len(shown):
        shown.append("Other vendors")
    return shown, slots


def day_chart(
    *,
    title: str,
    rows: Iterable[Mapping[str, Any]],
    value: str,
    label: Callable[[str], str],
    first: dt.date | None,
    last: dt.date | None,
) -> DayChart | None:
    """Stack `value` per vendor for each day from `first` to `last` (rows: vendor, day, value).

    Without dates, the chart ends on the newest day with any count and spans 30 days.
    """
    counts: dict[tuple[str, dt.date], int] = {}
    for row in rows:
        if row[value]:
            key = (label(row["vendor"]), row["day"])
            counts[key] = counts.get(key, 0) + row[value]
    if not counts:
        return None
    last = last or max(day for _, day in counts)
    first = max(first or last - dt.timedelta(days=DEFAULT_DAYS - 1), last - dt.timedelta(days=MAX_DAYS - 1))
    counts = {(name, day): n for (name, day), n in counts.items() if first <= day <= last}
    if not counts:
        return None
    totals: dict[str, int] = {}
    for (name, _), n in counts.items():
        totals[name] = totals.get(name, 0) + n
    names, slots = _ranked(totals)
    series = [
        Series(name, PALETTE[i] if i < len(PALETTE) else OTHERS_COLOUR, 0) for i, name in enumerate(names)
    ]
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    per_day = {day: [0] * len(series) for day in days}
    for (name, day), n in counts.items():
        per_day[day][slots[name]] += n
        series[slots[name]].total += n
    peak = max(sum(c) for c in per_day.values()) or 1
    bars = []
    for i, day in enumerate(days):
        y = TOP + PLOT_H
        segments = []
        for slot, n in enumerate(per_day[day]):
            if n:
                h = max(1, round(n * PLOT_H / peak))
                y -= h
                segments.append((y, h, series[slot].colour, f"{day:%Y-%m-%d}: {series[slot].name}, {n:,}"))
        edge = i in (0, len(days) - 1)
        clear = min(i, len(days) - 1 - i) >= 4
        tick = f"{day:%-d %b}" if edge or (day.day == 1 and clear) else ""
        bars.append(Bar(LEFT + i * (BAR_W + GAP), segments, tick))
    return DayChart(
        title=title,
        series=series,
        bars=bars,
        table=[(day, per_day[day], sum(per_day[day])) for day in days if sum(per_day[day])],
        width=LEFT + len(days) * (BAR_W + GAP) + 10,
        height=TOP + PLOT_H + 24,
        peak=peak,
        first=first,
        last=last,
        total=sum(totals.values()),
    )


STATUS_COLOURS = {
    GrantStatus.ACTIVE: "#1f6f5c",
    GrantStatus.REVOKED: "#b3541e",
    GrantStatus.EXPIRED: "#5f6b7a",
}
GRANT_BAR_W = 300


@dataclass
class GrantRow:
    name: str
    counts: list[int]  # in GrantStatus.CHOICES order
    total: int
    segments: list[tuple[int, int, str, str]]  # (x, width, colour, title)


@dataclass
class GrantChart:
    rows: list[GrantRow]
    statuses: list[tuple[str, str]]  # (label, colour)
    width: int
    total: int


def grant_chart(*, rows: Iterable[VendorGrantCounts], label: Callable[[str], str]) -> GrantChart | None:
    """One horizontal bar per vendor, its grants split by status, longest bar the most grants."""
    order = [status for status, _ in GrantStatus.CHOICES]
    counts: dict[str, list[int]] = {}
    for row in rows:
        name = label(row["vendor"]) if row["vendor"] else "No vendor entry yet"
        counts.setdefault(name, [0] * len(order))[order.index(row["status"])] += row["grants"]
    if not counts:
        return None
    peak = max(sum(c) for c in counts.values())
    result = []
    for name in sorted(counts, key=lambda n: (-sum(counts[n]), n)):
        x, segments = 0, []
        for status, n in zip(GrantStatus.CHOICES, counts[name], strict=True):
            if n:
                w = max(1, round(n * GRANT_BAR_W / peak))
                segments.append((x, w, STATUS_COLOURS[status[0]], f"{name}: {n} {status[1].lower()}"))
                x += w
        result.append(GrantRow(name, counts[name], sum(counts[name]), segments))
    return GrantChart(
        rows=result,
        statuses=[(label_, STATUS_COLOURS[status]) for status, label_ in GrantStatus.CHOICES],
        width=GRANT_BAR_W,
        total=sum(r.total for r in result),
    )
