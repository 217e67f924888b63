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
    "green": "#2e8b57",
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
W, H, GAP, COL_W, TOP = 108, 64, 14, 128, 56
NAME_CHARS = 13


@dataclass
class Swatch:
    x: int
    y: int
    fill: str
    dark: bool
    name: str
    label: str
    stars: str
    faded: bool


def _fill(colour: str) -> str:
    for word in colour.lower().replace("/", " ").split():
        if word in COLOURS:
            return COLOURS[word]
    return FALLBACK


def _is_dark(hex_colour: str) -> bool:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return (0.299 * r + 0.587 * g + 0.114 * b) < 140


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
            fill = _fill(item.get("color") or "")
            rating = item.get("rating")
            swatches.append(
                Swatch(
                    x=x,
                    y=TOP + row * (H + GAP),
                    fill=fill,
                    dark=_is_dark(fill),
                    name=item["name"],
                    label=(item["name"][: NAME_CHARS - 1] + "…")
                    if len(item["name"]) > NAME_CHARS
                    else item["name"],
                    stars="★" * rating + "☆" * (5 - rating) if rating else "",
                    faded=item.get("status") != "owned",
                )
            )
        tallest = max(tallest, len(of_kind))
    width = max(GAP * 2 + len(kinds) * COL_W, 240)
    height = TOP + max(tallest, 1) * (H + GAP) + GAP
    return {"columns": columns, "swatches": swatches, "width": width, "height": height, "w": W, "h": H}
