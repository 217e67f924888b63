"""Charts on the auditor's pages: server-drawn SVG from counts the database already aggregated.

Accesses and refusals per vendor per day are core.charts.day_chart, as on the person's activity
page; grants per vendor is a horizontal bar per vendor split by status. The rows come from
auditor.selectors (TruncDate and Count in SQL), so a chart costs one query however long the
ledger is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from auditor.selectors import GrantStatus, VendorGrantCounts

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
