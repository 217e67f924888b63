"""The scopes of INTERFACES.md §4, in plain language, and the DOT scopes backend."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oauthlib.common import Request as OauthlibRequest

from consent.types import OAuthApplication


@dataclass(frozen=True)
class Scope:
    name: str
    title: str
    reveals: str
    example: str
    category: str | None = None
    sensitive: bool = False
    organisation: bool = False  # client-credentials only, no person involved
    verified_only: bool = False  # only for organisations the operator has verified


SCOPES: dict[str, Scope] = {
    s.name: s
    for s in (
        Scope(
            "profile:read",
            "Your name",
            "your display name and the id this vendor knows you by",
            "“Alex Morgan”",
        ),
        Scope(
            "purchases:read",
            "Your purchases",
            "the purchases you keep in vrm and have not hidden",
            "“Crunchy Peanut Butter, Green Grocer, 14 March”",
            category="purchases",
        ),
        Scope(
            "purchases:check",
            "Yes/no questions about your purchases",
            "only yes or no to “does this person already own product X?”, never the list",
            "“Already owns this book: yes”",
            category="purchases",
        ),
        Scope(
            "purchases:write",
            "Add purchases to your store",
            "nothing: it lets the vendor send you records of what you bought from them",
            "a receipt for today's order appears in your purchases",
        ),
        Scope(
            "closet:read",
            "Your closet",
            "the clothes and shoes in your closet, with sizes and ratings",
            "“Navy jumper, size M, 4 stars”",
            category="closet",
        ),
        Scope(
            "appliances:read",
            "Your appliances",
            "your home appliances with models, serial numbers, warranty dates and energy use",
            "“Bosch fridge, warranty until May 2027”",
            category="appliances",
        ),
        Scope(
            "prescriptions:read",
            "Your prescriptions",
            "your medicines, strengths, directions, prescribers and refill dates",
            "“Atorvastatin 20 mg, refill due 3 April”",
            category="prescriptions",
            sensitive=True,
        ),
        Scope(
            "preferences:read",
            "Your preferences",
            "your dietary needs, allergies, sizes and favourite or avoided brands",
            "“no red meat, peanut allergy”",
            category="preferences",
        ),
        Scope(
            "messages:send",
            "Send you messages",
            "nothing: it lets the vendor put a few messages or offers a week in your inbox, "
            "which you can answer, mute or report",
            "“Your size is back in stock”",
        ),
        Scope(
            "recalls:publish",
            "Publish product recalls",
            "nothing about any person",
            "a recall of lot L4471",
            organisation=True,
            verified_only=True,
        ),
        Scope(
            "intents:read",
            "Read and answer intents",
            "open intents that match your filters, never who published them",
            "“winter coat, size M, under 150 EUR”",
            organisation=True,
            verified_only=True,
        ),
    )
}
PERSON_SCOPES = tuple(name for name, s in SCOPES.items() if not s.organisation)
ORGANISATION_SCOPES = tuple(name for name, s in SCOPES.items() if s.organisation)
SENSITIVE_SCOPES = frozenset(name for name, s in SCOPES.items() if s.sensitive)
VERIFIED_ONLY_SCOPES = frozenset(name for name, s in SCOPES.items() if s.verified_only)


class ApplicationScopes:
    """DOT scopes backend: an application is offered only the scopes registered for it."""

    def get_all_scopes(self) -> dict[str, str]:
        return {name: scope.title for name, scope in SCOPES.items()}

    def get_available_scopes(
        self,
        application: OAuthApplication | None = None,
        request: OauthlibRequest | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[str]:
        if application is None:
            return []
        return [s for s in application.scopes if s in SCOPES]

    def get_default_scopes(
        self,
        application: OAuthApplication | None = None,
        request: OauthlibRequest | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> list[str]:
        # A request without `scope` asks for nothing; nothing is granted by default.
        return []
