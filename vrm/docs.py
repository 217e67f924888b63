"""The project's documentation (docs/*.md), readable on the site at /docs/.

The pages show the Markdown source as it is in the repository, as preformatted text: nothing to
render, no Markdown library, and what a vendor reads on the site is the file in the checkout.
Only the files listed here are served, by name.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

# name -> (title, what it is for); the order of the index page.
DOCS = {
    "vendors": (
        "Integrate in 10 minutes",
        "For vendors: an app, OAuth with PKCE, the API, receipts, recalls.",
    ),
    "api": (
        "API, OAuth and formats reference",
        "For vendors: every endpoint, scope, error and record field.",
    ),
    "consent": ("Grants and consent", "How grants, the OAuth choices and consent receipts work."),
    "portal": ("The person's portal", "What people see: lists, activity, import, export, proofs."),
    "ledger": ("The ledger", "The tamper-evident log, its checkpoints and proofs, and how to check them."),
    "witness": (
        "Running a witness",
        "For auditors: cosign the ledger's checkpoints from your own machine, and what a refusal means.",
    ),
    "security": ("Security", "Keys, what is encrypted, what is kept in clear and why."),
    "operations": (
        "Operations",
        "For operators: health probes, logs, backups and restore, and a plan for growing past one database.",
    ),
    "abuse": (
        "Reports and review",
        "How people report a vendor, and how auditors review vendors without seeing people.",
    ),
    "architecture": ("Architecture", "The layers of the code and where new code goes."),
    "performance": ("Performance", "The vendor API's hot path and its figures."),
    "metrics": (
        "Metrics",
        "For operators: the Prometheus metrics at /metrics, who may read them, and their cost.",
    ),
}


@require_http_methods(["GET"])
def docs_index(request: HttpRequest) -> HttpResponse:
    return render(request, "docs/index.html", {"docs": [(name, *about) for name, about in DOCS.items()]})


@require_http_methods(["GET"])
def docs_page(request: HttpRequest, name: str) -> HttpResponse:
    if name not in DOCS:
        raise Http404("No such document.")
    text = (settings.BASE_DIR / "docs" / f"{name}.md").read_text(encoding="utf-8")
    return render(request, "docs/page.html", {"name": name, "title": DOCS[name][0], "text": text})
