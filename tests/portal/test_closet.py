"""The closet picture's text is readable on every swatch it can be drawn on."""

from __future__ import annotations

import pytest

from portal.closet import CARD, COLOURS, FADED_ALPHA, FALLBACK, INK, WHITE, closet_picture, contrast


def test_contrast_is_wcag_2() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#ffffff", "#777777") == pytest.approx(4.48, abs=0.01)
    assert contrast("#1d2430", "#1d2430") == 1


@pytest.mark.parametrize("status", ["owned", "donated"])
@pytest.mark.parametrize("colour", [*COLOURS, "a colour of its own"])
def test_swatch_text_has_at_least_4_5_to_1_on_its_swatch(colour: str, status: str) -> None:
    item = {"kind": "top", "name": "Striped shirt", "color": colour, "status": status, "rating": 4}
    (swatch,) = closet_picture([item])["swatches"]
    assert swatch.ink in (INK, WHITE)
    assert swatch.faded == (status != "owned")
    if not swatch.faded:
        assert swatch.fill == COLOURS.get(colour, FALLBACK)
    assert contrast(swatch.ink, swatch.fill) >= 4.5, (colour, status, swatch.fill, swatch.ink)


def test_a_faded_swatch_is_its_colour_over_the_card() -> None:
    item = {"kind": "top", "name": "Old coat", "color": "black", "status": "donated"}
    (swatch,) = closet_picture([item])["swatches"]
    black, card = int(COLOURS["black"][1:3], 16), int(CARD[1:3], 16)
    assert int(swatch.fill[1:3], 16) == round(FADED_ALPHA * black + (1 - FADED_ALPHA) * card)
