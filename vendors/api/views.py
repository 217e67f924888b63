"""The vendor REST API (/api/v1/): consent-checked reads, yes/no checks and giving data back.

One mechanism for every endpoint (PersonApiView): the token must be valid, its grant live, and
the grant's effective scopes must cover the view's `required_scopes`; the records a view may
touch are then the grant's record set (consent.selectors.grant_store_filters): shared records of
the person, without gifts unless the grant opted in, within the grant's history window. Every
request that reaches a grant writes one ledger entry (consent.services.access_record), in the
transaction that read or wrote the data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from functools import cache
from typing import Any

import orjson
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from consent.agreements import agreement_acknowledge, agreement_current, agreement_json
from consent.models import Grant
from consent.oauth import BearerAuthentication
from consent.receipts import history_from
from consent.selectors import grant_store_filters
from consent.services import access_denied_record, access_record, grant_share_ensure
from core.formats import rfc3339
from core.problems import body_limit_check
from core.request_ids import request_id_of
from personal_data import selectors, services, shares
from personal_data.models import Share
from personal_data.pseudonyms import pairwise_subject
from personal_data.schemas import PurchaseSchema, VendorPreferencesSchema, preferences_for_vendor
from personal_data.store import preferences_default
from vendors.api.pagination import KeysetPagination
from vendors.api.permissions import PersonGrantPermission, bearer_client, bearer_token
from vendors.api.serializers import (
    AgreementOut,
    ApplianceOut,
    ClosetItemOut,
    ListQuery,
    MeOut,
    OwnsOut,
    OwnsQuery,
    PrescriptionOut,
    PurchaseOut,
    ReceiptOut,
)
from vendors.api.throttles import AppBurstThrottle, AppSustainedThrottle
from vendors.idempotency import idempotent_create


class PersonApiView(APIView):
    authentication_classes = [BearerAuthentication]
    permission_classes = [PersonGrantPermission]
    throttle_classes = [AppBurstThrottle, AppSustainedThrottle]
    # The scopes every method needs; `write_scopes` overrides them for POST.
    required_scopes: list[str] | None = None
    write_scopes: list[str] | None = None

    def scopes_for(self, method: str) -> list[str] | None:
        if method == "POST" and self.write_scopes is not None:
            return self.write_scopes
        return self.required_scopes

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        body_limit_check(request)
        super().initial(request, *args, **kwargs)

    @property
    def grant(self) -> Grant:
        grant = bearer_token(self.request).grant
        if grant is None:  # the permission check refuses organisation tokens first
            raise exceptions.NotAuthenticated()
        return grant

    @property
    def person(self) -> User:
        person: User = self.grant.person
        return person

    @property
    def share(self) -> Share:
        """What the grant lets this vendor read: copies under the grant's own key."""
        grant = self.grant
        share = grant.share if grant.share_id is not None else None
        return share if share is not None else grant_share_ensure(grant=grant)

    def record_access(
        self,
        kind: str,
        *,
        record_ids: list[str] | None = None,
        record_count: int | None = None,
        reason: str = "",
    ) -> None:
        """Record this request's access under the grant: a write's in the caller's transaction,
        a read's (it writes nothing else) as a statement of its own."""
        access_record(
            grant=self.grant,
            client_id=bearer_client(self.request).client_id,
            kind=kind,
            scopes=self.scopes_for(self.request.method or "GET") or [],
            record_ids=record_ids or [],
            record_count=record_count,
            reason=reason,
            # The server's id for this request, never the vendor's X-Request-Id (docs/security.md).
            request_id=request_id_of(self.request),
            alone=kind != "access.write",
        )

    def on_refusal(self, request: Request, status: int, slug: str) -> None:
        """Log a refusal that happened after authentication (called by the problem handler)."""
        token = getattr(request, "_auth", None)
        grant = getattr(token, "grant", None)
        if token is None or grant is None or status == 401 or status == 429:
            return
        access_denied_record(
            grant=grant,
            client_id=token.application.client_id,
            scopes=self.scopes_for(request.method or "GET") or [],
            reason=slug,
            request_id=request_id_of(request),
        )

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        grant = getattr(getattr(request, "_auth", None), "grant", None)
        if grant is not None:
            response["Grant-Expires"] = rfc3339(grant.ends_at)
        return response


# The header that makes a POST safe to retry (vendors/idempotency.py), as the schema documents it.
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Makes a retry return the first result without writing twice",
)


def _strict_query(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})


@cache
def _query_schema(schema: type[serializers.Serializer]) -> serializers.Serializer:  # type: ignore[type-arg]
    # Making a serializer deep-copies its fields; one instance validates every request's query
    # (validation keeps no state on it), as the store does for record schemas.
    return schema()


def _query(request: Request, schema: type[serializers.Serializer]) -> dict[str, Any]:  # type: ignore[type-arg]
    """The request's query parameters validated by schema, or a 400 naming each bad one."""
    return dict(_query_schema(schema).run_validation(request.query_params))


# /me and /receipts.


class MeView(PersonApiView):
    """Who the token speaks for (a pairwise id) and what its grant allows."""

    required_scopes: list[str] = []

    @extend_schema(responses=MeOut)
    def get(self, request: Request) -> Response:
        _strict_query(request, set())
        token, client, grant = bearer_token(request), bearer_client(request), self.grant
        scopes = token.effective_scopes()
        body: dict[str, Any] = {
            "sub": pairwise_subject(person=grant.person, organisation_id=client.organisation_id),
            "grant": {
                "id": str(grant.pk),
                "scopes": scopes,
                "purpose": grant.purposes,
                "expires_at": rfc3339(grant.ends_at),
                "history_from": history_from(grant),
            },
        }
        if "profile:read" in scopes:
            body["name"] = grant.person.display_name
        self.record_access("access.read", record_count=0, reason="me")
        return Response(body)


class ReceiptsView(PersonApiView):
    """The signed consent receipts of this grant, oldest first."""

    required_scopes: list[str] = []

    @extend_schema(responses=ReceiptOut(many=True))
    def get(self, request: Request) -> Response:
        _strict_query(request, set())
        receipts = [
            {
                "number": r.number,
                "event": r.event,
                "issued_at": rfc3339(r.issued_at),
                "jws": r.jws,
                "document": r.document,
            }
            for r in self.grant.receipts.order_by("number")
        ]
        self.record_access("access.read", record_count=0, reason="receipts")
        return Response(receipts)


class AgreementView(PersonApiView):
    """The signed MyTerms agreement record this grant was made under (404 if none)."""

    required_scopes: list[str] = []
    may_answer_not_found = True  # a grant made without terms has no agreement

    @extend_schema(responses=AgreementOut)
    def get(self, request: Request) -> Response:
        _strict_query(request, set())
        record = agreement_current(grant=self.grant)
        self.record_access("access.read", record_count=0, reason="agreement")
        return Response(agreement_json(record))


class AgreementAcceptView(PersonApiView):
    """Acknowledge the grant's agreement record: the vendor's client has it. Idempotent."""

    required_scopes: list[str] = []
    may_answer_not_found = True  # a grant made without terms has no agreement

    @extend_schema(request=None, responses=AgreementOut)
    def post(self, request: Request) -> Response:
        _strict_query(request, set())
        if request.data:
            raise exceptions.ValidationError({"body": ["Send no body: the grant names the agreement."]})
        record, first = agreement_acknowledge(
            grant=self.grant,
            client_id=bearer_client(request).client_id,
            request_id=request_id_of(request),
        )
        if not first:  # the first wrote terms.acknowledged; a repeat is recorded as a read
            self.record_access("access.read", record_count=0, reason="agreement")
        return Response(agreement_json(record))


# Records.


class RecordListView(PersonApiView):
    category = ""
    pagination_class = KeysetPagination
    query_fields = {"since", "until", "limit", "cursor"}

    def get(self, request: Request) -> Response:
        _strict_query(request, self.query_fields)
        params = _query(request, ListQuery)
        paginator = self.pagination_class()
        after = paginator.position(params.get("cursor"))
        limit = params.get("limit", paginator.default_limit)
        filters = grant_store_filters(self.grant)
        if params.get("since") and (filters["since"] is None or params["since"] > filters["since"]):
            filters["since"] = params["since"]
        share = self.share
        rows = shares.copies_page(
            share=share,
            category=self.category,
            limit=limit + 1,  # one more tells whether a next page exists
            after=after,
            since=filters["since"],
            until=params.get("until"),
            gtin=params.get("gtin"),
        )
        page = rows[:limit]
        documents = shares.copies_open_json(share=share, category=self.category, rows=page)
        # Committed before the page is sent: no read goes unrecorded.
        self.record_access("access.read", record_ids=list(documents))
        next_after = (page[-1]["created_at"], str(page[-1]["id"])) if len(rows) > limit else None
        # The documents are JSON already: the renderer embeds them as they are.
        return paginator.response(request, [orjson.Fragment(d) for d in documents.values()], next_after)


class RecordDetailView(PersonApiView):
    category = ""

    def get(self, request: Request, record_id: str) -> Response:
        _strict_query(request, set())
        try:
            record_uuid = str(uuid.UUID(record_id))
        except ValueError:
            raise Http404("No such record.") from None
        document = shares.copy_get(
            share=self.share,
            category=self.category,
            record_id=record_uuid,
            since=grant_store_filters(self.grant)["since"],
        )
        if document is None:  # not shared, not covered, someone else's, or no such record
            raise Http404("No such record.")
        self.record_access("access.read", record_ids=[document["id"]])
        return Response(document)


class PurchasesOwnsView(PersonApiView):
    """Yes or no: does the person own this product? Answered from the blind index alone."""

    required_scopes = ["purchases:check"]

    @extend_schema(parameters=[OwnsQuery], responses=OwnsOut)
    def get(self, request: Request) -> Response:
        _strict_query(request, {"gtin"})
        gtin = _query(request, OwnsQuery)["gtin"]
        owns = selectors.purchases_owns(owner=self.person, gtin=gtin, **grant_store_filters(self.grant))
        self.record_access("access.check", record_count=0)
        return Response({"gtin": gtin, "owns": owns})


class PreferencesView(PersonApiView):
    """The person's preferences document."""

    required_scopes = ["preferences:read"]

    @extend_schema(responses=VendorPreferencesSchema)
    def get(self, request: Request) -> Response:
        _strict_query(request, set())
        document = shares.copy_get(
            share=self.share, category=shares.PREFERENCES, record_id=str(self.person.pk)
        )
        if document is None:
            document = preferences_default()
        self.record_access("access.read", record_count=1, reason="preferences")
        # Copies made before the reminder choices existed are trimmed here too.
        return Response(preferences_for_vendor(document))


# Per-category endpoints. Output shapes are the record formats of INTERFACES.md §6.


_LIST_PARAMS = [
    OpenApiParameter("since", dt.date),
    OpenApiParameter("until", dt.date),
    OpenApiParameter("limit", int),
    OpenApiParameter("cursor", str),
]


class PurchaseList(RecordListView):
    """Shared purchases under the grant (filters: since, until, gtin); POST gives a purchase back."""

    category = "purchases"
    required_scopes = ["purchases:read"]
    write_scopes = ["purchases:write"]
    query_fields = RecordListView.query_fields | {"gtin"}

    @extend_schema(
        parameters=[*_LIST_PARAMS, OpenApiParameter("gtin", str)], responses=PurchaseOut(many=True)
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    @extend_schema(
        request=PurchaseSchema,
        responses={201: PurchaseOut},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        _strict_query(request, set())
        client = bearer_client(request)

        def create() -> dict[str, Any]:
            try:
                return services.record_create(
                    owner=self.person,
                    category="purchases",
                    data=request.data,
                    source="vendor",
                    source_vendor=client.organisation.name,
                )
            except ValidationError as error:
                raise exceptions.ValidationError(error.message_dict) from None

        key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        if len(key) > 200:
            raise exceptions.ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        with transaction.atomic():
            if key:
                document, _created = idempotent_create(
                    application=client,
                    owner=self.person,
                    share=self.share,
                    key=key,
                    body=request.data,
                    create=create,
                )
            else:
                document = create()
            self.record_access("access.write", record_ids=[document["id"]])
        return Response(document, status=201)


class PurchaseDetail(RecordDetailView):
    category = "purchases"
    required_scopes = ["purchases:read"]

    @extend_schema(responses=PurchaseOut)
    def get(self, request: Request, record_id: str) -> Response:
        return super().get(request, record_id)


class ClosetList(RecordListView):
    category = "closet"
    required_scopes = ["closet:read"]

    @extend_schema(parameters=_LIST_PARAMS, responses=ClosetItemOut(many=True))
    def get(self, request: Request) -> Response:
        return super().get(request)


class ClosetDetail(RecordDetailView):
    category = "closet"
    required_scopes = ["closet:read"]

    @extend_schema(responses=ClosetItemOut)
    def get(self, request: Request, record_id: str) -> Response:
        return super().get(request, record_id)


class ApplianceList(RecordListView):
    category = "appliances"
    required_scopes = ["appliances:read"]

    @extend_schema(parameters=_LIST_PARAMS, responses=ApplianceOut(many=True))
    def get(self, request: Request) -> Response:
        return super().get(request)


class ApplianceDetail(RecordDetailView):
    category = "appliances"
    required_scopes = ["appliances:read"]

    @extend_schema(responses=ApplianceOut)
    def get(self, request: Request, record_id: str) -> Response:
        return super().get(request, record_id)


class PrescriptionList(RecordListView):
    category = "prescriptions"
    required_scopes = ["prescriptions:read"]

    @extend_schema(parameters=_LIST_PARAMS, responses=PrescriptionOut(many=True))
    def get(self, request: Request) -> Response:
        return super().get(request)


class PrescriptionDetail(RecordDetailView):
    category = "prescriptions"
    required_scopes = ["prescriptions:read"]

    @extend_schema(responses=PrescriptionOut)
    def get(self, request: Request, record_id: str) -> Response:
        return super().get(request, record_id)
