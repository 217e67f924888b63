"""Every admin page an operator can reach, by following the links from each model's pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urljoin, urlsplit

from django.contrib import admin
from django.test import Client


def _admin_links(html: str, base: str) -> Iterator[str]:
    for href in re.findall(r'href="([^"#]+)"', html):
        url = urljoin(base, href.replace("&amp;", "&"))
        parts = urlsplit(url)
        if parts.netloc in ("", "testserver") and parts.path.startswith("/admin/"):
            # Filters, sorting and facets show the same rows again; pages show the next ones.
            page = re.fullmatch(r"p=\d+", parts.query)
            yield parts.path + (f"?{parts.query}" if page else "")


def admin_pages(client: Client, limit: int = 1500) -> Iterator[tuple[str, int, str]]:
    """Yield (path, status, body) for every admin page reachable from the index and each model."""
    queue = ["/admin/"] + [
        f"/admin/{model._meta.app_label}/{model._meta.model_name}/{page}"
        for model in admin.site._registry
        for page in ("", "add/")
    ]
    seen: set[str] = set()
    while queue and len(seen) < limit:
        path = queue.pop()
        if path in seen or "/logout/" in path:
            continue
        seen.add(path)
        response = client.get(path)
        body = response.content.decode()
        yield path, response.status_code, body
        if response.status_code == 200:
            queue += [link for link in _admin_links(body, path) if link not in seen]
