"""Every route of the URLconf, read from the resolver, for the matrices and the fuzz test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver


@dataclass(frozen=True)
class Route:
    name: str  # for reverse(), with its namespace: "consent:grant"
    pattern: str  # as the resolver spells it
    kwargs: tuple[str, ...]


def walk(
    patterns: list[Any], prefix: str = "", namespace: str = "", kwargs: tuple[str, ...] = ()
) -> list[tuple[Route, Any]]:
    """Every (route, view) below `patterns`, with the URL parameters of enclosing includes."""
    found: list[tuple[Route, Any]] = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        names = kwargs + tuple(pattern.pattern.regex.groupindex)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            found += walk(pattern.url_patterns, route, inner, names)
        elif isinstance(pattern, URLPattern):
            found.append((Route(f"{namespace}{pattern.name}", route, names), pattern.callback))
    return found


def all_routes() -> list[tuple[Route, Any]]:
    return walk(get_resolver().url_patterns)
