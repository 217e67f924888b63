"""The docs stand on their own: no link out of the repository, and the example's needs are listed."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from vrm.docs import DOCS

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Addresses in examples: the development server, loopback callbacks, and reserved .example names.
LOCAL = re.compile(r"https?://(127\.0\.0\.1|localhost|\[::1\]|[a-z0-9.-]*\.example)(?=[:/@\s`'\")]|$)")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_docs_link_only_inside_the_repository(page: Path) -> None:
    text = page.read_text()
    assert "../shared" not in text and "INTERFACES.md" not in text and "PRODUCT.md" not in text
    for url in re.findall(r"https?://[^\s)`'\"<>]+", text):
        assert LOCAL.match(url), f"{page.name} links outside the repository: {url}"
    for target in re.findall(r"\]\(([^)#]+)", text):
        assert not re.match(r"[a-z]+:", target), f"{page.name}: {target}"
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(ROOT) and resolved.exists(), f"{page.name}: {target}"


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-"):
            names.add(re.split(r"[=<>\[ ]", line)[0].lower())
    return names


def test_the_example_needs_only_what_its_documented_install_provides() -> None:
    """README and docs/vendors.md run examples/vendor_client.py with requirements.txt plus
    examples/requirements.txt: every package it imports must be in one of them."""
    example = ROOT / "examples" / "vendor_client.py"
    pinned = _requirement_names(ROOT / "requirements.txt") | _requirement_names(
        ROOT / "examples" / "requirements.txt"
    )
    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for node in ast.walk(ast.parse(example.read_text())):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "__future__"}
    assert third_party == {"requests", "authlib"}
    for module in third_party:
        assert {d.lower() for d in distributions[module]} & pinned, f"{module} is not pinned anywhere"
    for page in (ROOT / "README.md", ROOT / "docs" / "vendors.md"):
        assert "pip install -r examples/requirements.txt" in page.read_text(), page.name


def test_the_docs_are_on_the_site_and_linked_from_it(db: Any) -> None:
    client = Client()
    welcome = client.get("/").content.decode()
    for href in ('href="/vendor/signup/"', 'href="/docs/vendors/"', 'href="/api/docs/"'):
        assert href in welcome
    index = client.get("/docs/").content.decode()
    for name in DOCS:
        assert f'href="/docs/{name}/"' in index
        assert (ROOT / "docs" / f"{name}.md").exists()
    assert {p.stem for p in (ROOT / "docs").glob("*.md")} == set(DOCS)
    page = client.get("/docs/api/")
    assert page.status_code == 200
    assert "POST /api/v1/purchases" in page.content.decode()
    assert "Grant-Expires" in client.get("/docs/vendors/").content.decode()
    assert client.get("/docs/missing/").status_code == 404
    assert client.get("/docs/..%2Fsettings/").status_code == 404
