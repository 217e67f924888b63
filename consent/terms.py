"""The MyTerms roster (IEEE 7012): the standard agreements a person may proffer to a vendor.

The roster is a published standard, not user content, so it lives here as code. An id never
changes meaning: a new wording gets a new version, and records name both (id and version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import Http404


@dataclass(frozen=True)
class Agreement:
    id: str
    version: str
    title: str
    summary: str
    may: tuple[str, ...]  # what the vendor may do under it, in plain words
    may_not: tuple[str, ...]  # what it may not do

    def as_json(self, *, url: str) -> dict[str, Any]:
        """Return the machine-readable form: the roster entry plus the commitments."""
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "summary": self.summary,
            "url": url,
            "may": list(self.may),
            "may_not": list(self.may_not),
        }


_SERVICE_ONLY = "Use what you share only to give you the service you asked for."
_NO_SELLING = "Sell, rent or hand your data to anyone else, except a contractor doing the work for it."
_NO_TRACKING = "Follow you across other sites or apps, or build a profile of you for advertising."

ROSTER: tuple[Agreement, ...] = (
    Agreement(
        id="sd-base",
        version="1.0",
        title="Service delivery only",
        summary="The vendor uses your data only to serve you, and nothing else.",
        may=(_SERVICE_ONLY, "Keep what it needs to serve you for as long as you keep the service."),
        may_not=(_NO_SELLING, _NO_TRACKING, "Use your data for anything you did not ask for."),
    ),
    Agreement(
        id="sd-data-protection",
        version="1.0",
        title="Service delivery with data protection",
        summary="Service delivery only, plus promises on security, deletion and access.",
        may=(_SERVICE_ONLY, "Keep your data only while it serves you, then delete it."),
        may_not=(
            _NO_SELLING,
            _NO_TRACKING,
            "Keep your data unprotected: it must be secured and you must be told of a breach.",
            "Refuse to show you, correct or delete what it holds about you when you ask.",
        ),
    ),
    Agreement(
        id="sd-goods-services",
        version="1.0",
        title="Goods and services only",
        summary="The vendor uses your data only to sell, deliver and support what you buy.",
        may=(
            "Use your data to sell, deliver, repair and support the goods and services you buy.",
            "Tell you about safety recalls of things you bought.",
        ),
        may_not=(_NO_SELLING, _NO_TRACKING, "Send you marketing you did not ask for."),
    ),
    Agreement(
        id="sd-no-ai-training",
        version="1.0",
        title="No AI training",
        summary="Service delivery only, and your data never trains an AI model.",
        may=(_SERVICE_ONLY,),
        may_not=(
            _NO_SELLING,
            _NO_TRACKING,
            "Use your data to train, tune or test any AI or machine-learning model, its own or anyone's.",
        ),
    ),
    Agreement(
        id="shared-intent",
        version="1.0",
        title="Shared intent",
        summary="You say what you want; the vendor uses your data only to answer that.",
        may=(
            "Use what you share only to answer the intent you published (for example, a quote).",
            "Contact you about that intent until you close it.",
        ),
        may_not=(_NO_SELLING, _NO_TRACKING, "Keep or use your data once the intent is closed."),
    ),
)

AGREEMENTS: dict[str, Agreement] = {agreement.id: agreement for agreement in ROSTER}


def agreement_get(*, agreement_id: str) -> Agreement:
    """Return the roster agreement with this id or raise Http404."""
    try:
        return AGREEMENTS[agreement_id]
    except KeyError:
        raise Http404("No such agreement.") from None
