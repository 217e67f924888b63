"""A malformed id is not found, like a missing one (core.ids)."""

from __future__ import annotations

import uuid

import pytest
from django.http import Http404
from hypothesis import given
from hypothesis import strategies as st

from core.ids import uuid_or_404


@given(st.uuids())
def test_a_uuid_in_any_spelling_comes_back_as_itself(value: uuid.UUID) -> None:
    assert uuid_or_404(value) == value
    assert uuid_or_404(str(value)) == value
    assert uuid_or_404(str(value).upper()) == value


@given(st.text(max_size=60).filter(lambda t: not _is_uuid(t)))
def test_anything_else_is_not_found(text: str) -> None:
    with pytest.raises(Http404, match="No such thing"):
        uuid_or_404(text, message="No such thing.")


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
