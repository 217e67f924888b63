"""Small template filters for the portal."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """Look a key up in a dict or QueryDict (`params|get_item:name`)."""
    return mapping.get(key, "") if hasattr(mapping, "get") else ""


@register.filter
def split(text: str, sep: str = " ") -> list[str]:
    return text.split(sep)
