"""What consent relies on in the OAuth application model, without importing it.

Applications are django-oauth-toolkit's swappable model, defined by vendors (vendors.Application)
above consent: consent reaches them through DOT and names them only by these protocols.
"""

from __future__ import annotations

from typing import Protocol


class Controller(Protocol):
    """The organisation behind an application: the controller named on consent receipts."""

    @property
    def pk(self) -> object: ...

    @property
    def name(self) -> str: ...

    @property
    def verified(self) -> bool: ...

    @property
    def accepted_terms(self) -> list[str]: ...  # MyTerms roster ids it accepts, public

    def halted(self) -> bool: ...  # suspended or ended by the operator: no tokens, no new grants

    def halt_notice(self) -> str: ...

    def refresh_from_db(self, using: str | None = None, fields: list[str] | None = None) -> None: ...


class OAuthApplication(Protocol):
    """An OAuth client as consent sees it: its ids, its registered scopes and their purposes."""

    @property
    def pk(self) -> int: ...

    @property
    def client_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def scopes(self) -> list[str]: ...

    @property
    def required_scopes(self) -> list[str]: ...

    @property
    def organisation(self) -> Controller: ...

    def purpose_of(self, scope: str) -> str: ...

    def redirect_uri_allowed(self, uri: str) -> bool: ...
