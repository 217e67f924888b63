"""Small template filters for the portal."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    """Look a key up in a dict or QueryDict (`params|get_item:name`)."""
    return mapping.get(key, "") if hasattr(mapping, "get") else ""


@register.filter
def split(text: str, sep: str = " ") -> list[str]:
    return text.split(sep)


@register.filter
def words(code: Any) -> str:
    """A stored code as words: "washing_machine" reads "Washing machine"."""
    text = str(code).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@register.simple_tag(takes_context=True)
def current(context: Any, href: str) -> str:
    """` aria-current="page"` on the navigation link of the section being shown."""
    request = context.get("request")
    path = getattr(request, "path", "")
    here = path == href or (href != "/" and path.startswith(href))
    return mark_safe(' aria-current="page"') if here else ""  # noqa: S308 (a constant)
