"""The OpenAPI schema of the vendor API, generated from the views (INTERFACES.md §5).

drf-spectacular describes the happy path; this AutoSchema adds what PersonApiView does for every
endpoint, so the schema cannot drift from the one consent mechanism: the OAuth2 scopes of each
operation (from `scopes_for`), every problem+json error it can answer with, and its headers.
Every error response of any view refers to the one `Problem` component.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from drf_spectacular.contrib.django_oauth_toolkit import DjangoOAuthToolkitScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from oauth2_provider.contrib.rest_framework import OAuth2Authentication

from core.problems import PROBLEM_CONTENT_TYPE, OrganisationUnverified

if TYPE_CHECKING:
    from rest_framework.views import APIView

ISSUER = settings.VRM_ISSUER

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "An RFC 9457 problem document.",
    "properties": {
        "type": {"type": "string", "format": "uri", "description": "Identifies the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "400 only: the messages for each invalid field or query parameter",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
        "scope": {"type": "string", "description": "403 only: the scopes the request needs"},
        "alarm": {
            "type": "string",
            "description": "409 of POST /api/v1/ledger/cosignatures only: the kind of alarm raised",
        },
    },
    "required": ["type", "title", "status", "detail"],
}

_HEADER_STRING = {"type": "string"}

WWW_AUTHENTICATE_401 = {
    "description": 'RFC 6750 challenge: `Bearer realm="vrm", error="invalid_token"` when a token was '
    'presented, `Bearer realm="vrm"` when none was',
    "required": True,
    "schema": _HEADER_STRING,
}
WWW_AUTHENTICATE_403 = {
    "description": 'RFC 6750 challenge: `Bearer realm="vrm", error="insufficient_scope", scope="…"`',
    "required": True,
    "schema": _HEADER_STRING,
}
RETRY_AFTER = {
    "description": "Seconds to wait before the next request",
    "required": True,
    "schema": {"type": "string", "pattern": r"^\d+$"},
}
GRANT_EXPIRES = {
    "description": "When the grant behind the token ends (RFC 3339, UTC)",
    "required": True,
    "schema": {"type": "string", "format": "date-time"},
}


def _problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": f"{ISSUER}/problems/{slug}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }


# Per status: (description, headers, example) of the problem responses of person-data endpoints.
_ERRORS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "400": (
        "Invalid input: an unknown or malformed query parameter or body field; `errors` names each.",
        {},
        _problem(
            400,
            "invalid-input",
            "Invalid input",
            "The request has invalid fields; see errors.",
            errors={"limit": ["Ensure this value is less than or equal to 200."]},
        ),
    ),
    "401": (
        "No token, or a token that is invalid or expired (or whose grant was revoked or has ended).",
        {"WWW-Authenticate": WWW_AUTHENTICATE_401},
        _problem(
            401,
            "invalid-token",
            "Missing, invalid or expired access token",
            "The access token is invalid, expired, or its grant was revoked or has ended.",
        ),
    ),
    "403": (
        "The grant's effective scopes do not cover the request; `scope` names what it needs.",
        {"WWW-Authenticate": WWW_AUTHENTICATE_403},
        _problem(
            403,
            "insufficient-scope",
            "The grant does not allow this",
            "This needs the scope purchases:read, which the grant does not include.",
            scope="purchases:read",
        ),
    ),
    "404": (
        "No such record under this grant: ids of other people's records, hidden records and records "
        "outside the grant answer exactly like ids that do not exist.",
        {},
        _problem(404, "not-found", "Not found", "No such record."),
    ),
    "406": (
        "The Accept header allows no JSON response.",
        {},
        _problem(406, "not-acceptable", "Not acceptable", "Could not satisfy the request Accept header."),
    ),
    "409": (
        "The Idempotency-Key was already used with a different body (or is still being processed).",
        {},
        _problem(
            409,
            "idempotency-conflict",
            "Idempotency conflict",
            "This Idempotency-Key was already used with a different request body.",
        ),
    ),
    "413": (
        "The request body is larger than 1 MiB.",
        {},
        _problem(413, "too-large", "Request too large", "The request body is larger than 1 MiB."),
    ),
    "415": (
        "The body is not application/json.",
        {},
        _problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            'Unsupported media type "text/plain" in request.',
        ),
    ),
    "429": (
        "Too many requests from this application; wait Retry-After seconds.",
        {"Retry-After": RETRY_AFTER},
        _problem(
            429,
            "rate-limited",
            "Too many requests",
            "Request was throttled. Expected available in 1 second.",
        ),
    ),
}

# Examples of the main documents, keyed by the component the response or request refers to.
PURCHASE_EXAMPLE: dict[str, Any] = {
    "id": "6f1c2a7e-0b1d-4c8e-9a57-3f0d2b9e4c11",
    "merchant": "Green Grocer",
    "product_name": "Crunchy Peanut Butter",
    "brand": "Nutty Farms",
    "gtin": "5012345001234",
    "sku": "NF-PB-340",
    "category": "groceries",
    "quantity": 2,
    "unit_price": "3.4900",
    "currency": "EUR",
    "lot": "L4471",
    "purchased_on": "2026-03-14",
    "order_ref": "R-260314-417",
    "is_gift": False,
    "shared": True,
    "source": "vendor",
    "source_vendor": "Acme Shop",
    "notes": "",
}
_PURCHASE_INPUT = {
    k: v for k, v in PURCHASE_EXAMPLE.items() if k not in {"id", "source", "source_vendor", "unit_price"}
} | {"unit_price": "3.49"}

INTENT_EXAMPLE: dict[str, Any] = {
    "id": "5a0c8e2f-7d4b-4c1a-9e36-2b8f0d1c7a95",
    "kind": "clothing",
    "title": "Winter coat",
    "details": {"size": "M", "colour": "navy", "brands_avoided": "FastFashion"},
    "price_min": "50.00",
    "price_max": "150.00",
    "currency": "EUR",
    "country": "DE",
    "postcode_prefix": "10",
    "ends_at": "2026-12-31T23:00:00Z",
    "terms": "shared-intent",
}
OFFER_EXAMPLE: dict[str, Any] = {
    "price": "129.00",
    "currency": "EUR",
    "description": "Navy wool coat, size M, free delivery in Berlin.",
    "link": "https://acme.example/coats/navy",
    "valid_until": "2030-01-01T00:00:00Z",
}

EXAMPLES: dict[str, tuple[str, Any]] = {
    "PurchaseOut": ("A purchase", PURCHASE_EXAMPLE),
    "PaginatedPurchaseOutList": (
        "A page of purchases",
        {
            "results": [PURCHASE_EXAMPLE],
            "next": f"{ISSUER}/api/v1/purchases?cursor=cD0yMDI2LTAzLTE0&limit=50",
        },
    ),
    "PurchaseSchemaRequest": ("A purchase given back by the vendor", _PURCHASE_INPUT),
    "OwnsOut": ("Owns the product", {"gtin": "5012345001234", "owns": True}),
    "RecallSchemaRequest": (
        "A recall of one lot",
        {
            "title": "Crunchy Peanut Butter 340 g: possible glass fragments",
            "message": "Do not eat it. Return the jar to any shop for a full refund.",
            "severity": "danger",
            "gtins": ["5012345001234"],
            "lots": ["L4471"],
            "purchased_from": "2026-01-01",
            "purchased_to": "2026-03-31",
            "remedy_url": "https://acme.example/recalls/L4471",
        },
    ),
    "RecallOut": (
        "A finished recall",
        {"id": "9b2e4c1d-7a3f-4e8b-b6d5-0c1f2a3e4d5b", "status": "done", "matched": "10-99"},
    ),
    "IntentOut": ("An open intent", INTENT_EXAMPLE),
    "PaginatedIntentOutList": (
        "A page of intents",
        {"results": [INTENT_EXAMPLE], "next": f"{ISSUER}/api/v1/intents?cursor=MjAyNi0xMi0wMw&limit=50"},
    ),
    "OfferSchemaRequest": ("An offer", OFFER_EXAMPLE),
    "PatchedOfferAmendRequest": ("A lower price", {"price": "119.00"}),
    "OfferOut": ("An offer's status", {"id": "3d7e9a40-2b1c-4f5e-8d6a-9c0b1e2f3a4d", "status": "open"}),
    "MeOut": (
        "A grant with profile:read",
        {
            "sub": "p_3q9xk2m7v5d1w8z4",
            "grant": {
                "id": "0c9d3f6a-51e2-4b7a-8f3e-2d6c1b0a9e84",
                "scopes": ["profile:read", "purchases:read"],
                "purpose": {
                    "profile:read": "To greet you by name",
                    "purchases:read": "To suggest refills of what you buy",
                },
                "expires_at": "2026-06-13T09:30:00Z",
                "history_from": "2025-03-14",
            },
            "name": "Alice Liddell",
        },
    ),
}


class BearerAuthenticationScheme(DjangoOAuthToolkitScheme):
    """The oauth2 security scheme for the API's own subclass of DOT's authentication."""

    target_class = "consent.oauth.BearerAuthentication"


def _is_person_view(view: APIView) -> bool:
    from vendors.api.views import PersonApiView  # the schema class is loaded before the views

    return isinstance(view, PersonApiView)


def _is_token_view(view: APIView) -> bool:
    return any(isinstance(a, OAuth2Authentication) for a in view.get_authenticators())


def _scopes(view: APIView, method: str) -> list[str]:
    """The scopes an operation needs: PersonApiView.scopes_for, else DOT's `required_scopes`."""
    if hasattr(view, "scopes_for"):
        return list(view.scopes_for(method) or [])
    return list(getattr(view, "required_scopes", None) or [])


def _component_name(media: dict[str, Any]) -> str:
    return str(media.get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1]


def _add_example(content: dict[str, Any]) -> None:
    for media in content.values():
        found = EXAMPLES.get(_component_name(media))
        if found and "examples" not in media:
            name, value = found
            media["examples"] = {name.title().replace(" ", ""): {"summary": name, "value": value}}


class VrmAutoSchema(AutoSchema):
    """AutoSchema with the API's OAuth2 scopes, problem+json errors, headers and examples."""

    def get_auth(self) -> list[dict[str, Any]]:
        # The parent registers the oauth2 security scheme (drf-spectacular's DOT extension) once.
        auths = super().get_auth()
        if _is_token_view(self.view):
            return [{"oauth2": _scopes(self.view, self.method)}]
        return auths

    def _problem_response(self, status: str) -> dict[str, Any]:
        registered = ResolvedComponent(
            name="Problem", type=ResolvedComponent.SCHEMA, object="Problem", schema=PROBLEM_SCHEMA
        )
        self.registry.register_on_missing(registered)
        response: dict[str, Any] = {
            "description": "A problem document (RFC 9457).",
            "content": {PROBLEM_CONTENT_TYPE: {"schema": registered.ref}},
        }
        known = _ERRORS.get(status)
        if known and _is_token_view(self.view):
            description, headers, example = known
            if status == "404" and not _is_person_view(self.view):
                description = "Not found, or not this organisation's: both answer alike."
                example = {**example, "detail": "Not found."}
            if status == "409" and getattr(self.view, "may_conflict", False):
                description = (
                    "Your organisation has an offer on this intent already (`type` ends in /offer-exists: "
                    "amend it with PATCH), or the offer is no longer open (/offer-not-open)."
                )
                example = _problem(409, "offer-exists", "An offer exists already", "Amend it with PATCH.")
            response["description"] = description
            if headers:
                response["headers"] = dict(headers)
            scopes = _scopes(self.view, self.method)
            if status == "403" and scopes:
                needed = " ".join(scopes)
                detail = f"This needs the scope {needed}, which the grant does not include."
                example = {**example, "detail": detail, "scope": needed}
            examples = {"Problem": {"summary": example["title"], "value": example}}
            if status == "403" and not _is_person_view(self.view):
                # Organisation scopes are for verified organisations only (OrganisationTokenPermission).
                response["description"] = (
                    f"{description} Or the organisation is not verified by the operator: the `type` "
                    "ends in /organisation-unverified and no WWW-Authenticate challenge is sent."
                )
                response["headers"] = {"WWW-Authenticate": {**WWW_AUTHENTICATE_403, "required": False}}
                examples["OrganisationUnverified"] = {
                    "summary": "The organisation is not verified",
                    "value": _problem(
                        403,
                        "organisation-unverified",
                        "The organisation is not verified",
                        str(OrganisationUnverified.default_detail),
                    ),
                }
            response["content"][PROBLEM_CONTENT_TYPE]["examples"] = examples
        return response

    def _get_response_for_code(
        self, serializer: Any, status_code: str, media_types: Any = None, direction: str = "response"
    ) -> dict[str, Any]:
        # Any view's error responses are problem documents, whatever serializer it names.
        if direction == "response" and str(status_code) >= "400":
            return self._problem_response(str(status_code))
        return super()._get_response_for_code(serializer, status_code, media_types, direction)

    def _error_codes(self) -> list[str]:
        """The problem responses a token-protected operation can give."""
        person, writes = _is_person_view(self.view), self.method in {"POST", "PUT", "PATCH"}
        codes = {"401", "406"}
        if self.view.get_throttles():
            codes.add("429")
        if _scopes(self.view, self.method):
            codes.add("403")
        if person or writes or getattr(self.view, "refuses_bad_query", False):
            codes.add("400")  # person views (and those marked) refuse unknown query parameters
        if "{" in self.path or (person and writes) or getattr(self.view, "may_answer_not_found", False):
            codes.add("404")  # ids; a retry whose record the person has since deleted; a missing document
        if writes:
            codes.add("415")
        if person and writes:
            codes |= {"409", "413"}
        if writes and getattr(self.view, "may_conflict", False):
            codes.add("409")  # a second offer on an intent, or an offer no longer open
        return sorted(codes)

    def _get_response_bodies(self, direction: Literal["request", "response"] = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, response in responses.items():
            if str(code).startswith("2"):
                _add_example(response.get("content", {}))
        if not _is_token_view(self.view):
            if self.view.get_throttles():  # the public ledger endpoints are limited per address
                responses.setdefault("429", self._problem_response("429"))
                return dict(sorted(responses.items()))
            return responses
        if _is_person_view(self.view):
            for code, response in responses.items():
                if str(code).startswith("2"):
                    response["headers"] = {"Grant-Expires": GRANT_EXPIRES, **response.get("headers", {})}
        for code in self._error_codes():
            responses.setdefault(code, self._problem_response(code))
        return dict(sorted(responses.items()))

    def _get_request_body(
        self, direction: Literal["request", "response"] = "request"
    ) -> dict[str, Any] | None:
        body = super()._get_request_body(direction)
        if body:
            _add_example(body.get("content", {}))
        return body
