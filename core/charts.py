"""Stacked bar charts per day, drawn as server-side SVG (templates/_day_chart.html).

Used by the person's activity page and the auditor's pages alike: counts the database already
aggregated (vendor, day, value) become a bar per day, one colour per vendor (the six biggest;
the rest are "Other vendors"), a legend and the numbers as a table for screen readers. No script,
no inline style: positions and colours are SVG presentation attributes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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
    unit: str = ""  # what is counted, for the legend ("request"); empty: bare numbers


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
    unit: str = "",
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
        unit=unit,
    )
