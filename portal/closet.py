"""The closet picture: items laid out by kind, drawn in their own colours, with ratings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

KIND_ORDER = ("top", "bottom", "dress", "outerwear", "shoes", "accessory", "other")
KIND_LABELS = {
    "top": "Tops",
    "bottom": "Bottoms",
    "dress": "Dresses",
    "outerwear": "Outerwear",
    "shoes": "Shoes",
    "accessory": "Accessories",
    "other": "Other",
}
COLOURS = {
    "white": "#f4f4f2",
    "black": "#222222",
    "grey": "#8a8f98",
    "gray": "#8a8f98",
    "navy": "#1f2f5a",
    "blue": "#2f6fb3",
    "indigo": "#33407a",
    "red": "#c0392b",
    "orange": "#e67e22",
    "yellow": "#f1c40f",
    "green": "#2a8251",  # a shade darker than sea green, so white text reads on it
    "beige": "#d9c7a7",
    "camel": "#c19a6b",
    "brown": "#7b4b2a",
    "pink": "#e79ab5",
    "purple": "#7d3c98",
    "cream": "#f3ead3",
    "khaki": "#b5a76c",
    "olive": "#6b7b3a",
    "silver": "#c0c4cc",
    "gold": "#d4af37",
    "burgundy": "#7a1f2b",
    "teal": "#1f7a7a",
}
FALLBACK = "#b8bec9"
# Text on a swatch is the page's ink or white, whichever stands out more from the swatch as drawn
# (WCAG 2 contrast; at least 4.5:1 for every colour above, tests/portal/test_closet.py). An item
# no longer owned is drawn paler: its colour at FADED_ALPHA over the card, which is white.
INK, WHITE, CARD = "#1d2430", "#ffffff", "#ffffff"
FADED_ALPHA = 0.4
W, H, GAP, COL_W, TOP = 108, 64, 14, 128, 56
NAME_CHARS = 13


@dataclass
class Swatch:
    x: int
    y: int
    fill: str
    ink: str
    name: str
    label: str
    stars: str
    faded: bool


def _fill(colour: str) -> str:
    for word in colour.lower().replace("/", " ").split():
        if word in COLOURS:
            return COLOURS[word]
    return FALLBACK


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return r, g, b


def _luminance(hex_colour: str) -> float:
    """WCAG 2 relative luminance."""
    linear = [c / 255 / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in _rgb(hex_colour)]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours, from 1 to 21."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _over(hex_colour: str, background: str, alpha: float) -> str:
    mixed = (
        round(alpha * c + (1 - alpha) * d) for c, d in zip(_rgb(hex_colour), _rgb(background), strict=True)
    )
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _ink(fill: str) -> str:
    return max((INK, WHITE), key=lambda text: contrast(text, fill))


def closet_picture(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Lay closet items out in one column per kind; return what the SVG template draws."""
    columns = []
    swatches: list[Swatch] = []
    kinds = [k for k in KIND_ORDER if any(i["kind"] == k for i in items)]
    tallest = 0
    for col, kind in enumerate(kinds):
        x = GAP + col * COL_W
        columns.append(
            {
                "x": x + W // 2,
                "label": KIND_LABELS[kind],
                "count": sum(1 for i in items if i["kind"] == k) if (k := kind) else 0,
            }
        )
        of_kind = sorted(
            (i for i in items if i["kind"] == kind), key=lambda i: (i.get("color") or "", i["name"])
        )
        for row, item in enumerate(of_kind):
            faded = item.get("status") != "owned"
            fill = _fill(item.get("color") or "")
            if faded:
                fill = _over(fill, CARD, FADED_ALPHA)
            rating = item.get("rating")
            swatches.append(
                Swatch(
                    x=x,
                    y=TOP + row * (H + GAP),
                    fill=fill,
                    ink=_ink(fill),
                    name=item["name"],
                    label=(item["name"][: NAME_CHARS - 1] + "…")
                    if len(item["name"]) > NAME_CHARS
                    else item["name"],
                    stars="★" * rating + "☆" * (5 - rating) if rating else "",
                    faded=faded,
                )
            )
        tallest = max(tallest, len(of_kind))
    width = max(GAP * 2 + len(kinds) * COL_W, 240)
    height = TOP + max(tallest, 1) * (H + GAP) + GAP
    return {"columns": columns, "swatches": swatches, "width": width, "height": height, "w": W, "h": H}
