"""The vendor REST API (/api/v1/): consent-checked reads, yes/no checks and giving data back.

One mechanism for every endpoint (PersonApiView): the token must be valid, its grant live, and
the grant's effective scopes must cover the view's `required_scopes`; the records a view may
touch are then the grant's record set (GrantFilters): shared records of the person, without
gifts unless the grant opted in, within the grant's history window. Every request that reaches
a grant writes one ledger entry, in the transaction that read or wrote the data.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from typing import Any

import orjson
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.services import ledger_append
from consent.oauth import BearerAuthentication
from consent.receipts import history_from
from core.formats import rfc3339
from core.problems import InsufficientScope, body_limit_check
from core.statements import pipelined_atomic
from personal_data import selectors, services
from personal_data.pseudonyms import pairwise_subject, person_subject
from personal_data.schemas import (
    ApplianceSchema,
    ClosetItemSchema,
    PreferencesSchema,
    PrescriptionSchema,
    PurchaseSchema,
)
from personal_data.validators import gtin_error
from vendors.api.throttles import AppBurstThrottle, AppSustainedThrottle
from vendors.idempotency import idempotent_create

# What the ledger accepts as a request id: a plain id, never free text from the vendor.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:/+=-]{1,64}")


class PersonGrantPermission(BasePermission):
    """Allow a request only under a live person grant whose effective scopes cover the view's.

    A view that declares no `required_scopes` fails closed (an empty list means: any person grant).
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        required = view.scopes_for(request.method) if hasattr(view, "scopes_for") else None
        if required is None:
            raise ImproperlyConfigured(f"{type(view).__name__} declares no required_scopes")
        token = request.auth
        if token is None:
            return False
        if token.grant is None or not token.grant.is_live():
            raise exceptions.AuthenticationFailed("The access token is invalid.")
        if not token.allow_scopes(required):
            raise InsufficientScope(required)
        return True


class RecordCursor(CursorPagination):
    """`{"results": [...], "next": url-or-null}`, newest stored first, `limit` 1-200 (default 50)."""

    page_size = 50
    max_page_size = 200
    page_size_query_param = "limit"
    ordering = ("-created_at", "-id")

    def decode_cursor(self, request: Request) -> Cursor | None:
        # A cursor is input like any other: a bad one is a 400, and its position must be a time
        # before it reaches the query (DRF would answer 404, or 500 on an unparsable position).
        invalid = exceptions.ValidationError({self.cursor_query_param: [self.invalid_cursor_message]})
        try:
            cursor = super().decode_cursor(request)
            position = cursor.position if cursor is not None else None
            if position is not None and not parse_datetime(str(position)):
                raise ValueError(position)
        except (exceptions.NotFound, ValueError):
            raise invalid from None
        return cursor

    def get_paginated_response(self, data: Any) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["results", "next"],
            "properties": {"results": schema, "next": {"type": "string", "format": "uri", "nullable": True}},
        }


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

    # The grant, as plain store filters.

    @property
    def grant(self) -> Any:
        return self.request.auth.grant

    @property
    def person(self) -> Any:
        return self.grant.person

    def grant_filters(self) -> dict[str, Any]:
        since = history_from(self.grant)
        return {
            "since": dt.date.fromisoformat(since) if since else None,
            "include_gifts": self.grant.include_gifts,
            "ids": self.grant.record_ids,
        }

    def record_access(
        self,
        kind: str,
        *,
        record_ids: list[str] | None = None,
        record_count: int | None = None,
        reason: str = "",
    ) -> None:
        token = self.request.auth
        ledger_append(
            kind=kind,
            actor_type="client",
            actor_id=token.application.client_id,
            subject=person_subject(self.person),
            grant_id=str(self.grant.pk),
            scopes=self.scopes_for(self.request.method) or [],
            record_ids=record_ids or [],
            record_count=record_count,
            reason=reason,
            request_id=self.request_id(),
        )

    def request_id(self) -> str:
        """The vendor's X-Request-Id for the ledger, if it is a plain id (anything else is dropped)."""
        value = self.request.META.get("HTTP_X_REQUEST_ID", "")
        return value if _REQUEST_ID.fullmatch(value) else ""

    def on_refusal(self, request: Request, status: int, slug: str) -> None:
        """Log a refusal that happened after authentication (called by the problem handler)."""
        token = getattr(request, "_auth", None)
        grant = getattr(token, "grant", None)
        if grant is None or status == 401 or status == 429:
            return
        with transaction.atomic():
            ledger_append(
                kind="access.denied",
                actor_type="client",
                actor_id=token.application.client_id,
                subject=person_subject(grant.person),
                grant_id=str(grant.pk),
                scopes=self.scopes_for(request.method) or [],
                outcome="denied",
                reason=slug,
            )

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        grant = getattr(getattr(request, "_auth", None), "grant", None)
        if grant is not None:
            response["Grant-Expires"] = rfc3339(grant.ends_at)
        return response


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


class GrantOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    scopes = serializers.ListField(child=serializers.CharField())
    purpose = serializers.DictField(
        child=serializers.CharField(), help_text="The declared purpose of each scope"
    )
    expires_at = serializers.DateTimeField()
    history_from = serializers.DateField(allow_null=True)


class MeOut(serializers.Serializer):  # type: ignore[type-arg]
    sub = serializers.CharField(help_text="The pairwise id this organisation knows the person by")
    grant = GrantOut()
    name = serializers.CharField(required=False, help_text="Only with profile:read")


class MeView(PersonApiView):
    """Who the token speaks for (a pairwise id) and what its grant allows."""

    required_scopes: list[str] = []

    @extend_schema(responses=MeOut)
    def get(self, request: Request) -> Response:
        _strict_query(request, set())
        token, grant = request.auth, self.grant
        scopes = token.effective_scopes()
        body: dict[str, Any] = {
            "sub": pairwise_subject(person=grant.person, organisation_id=token.application.organisation_id),
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
        with transaction.atomic():
            self.record_access("access.read", record_count=0, reason="me")
        return Response(body)


class ReceiptOut(serializers.Serializer):  # type: ignore[type-arg]
    number = serializers.IntegerField()
    event = serializers.ChoiceField(choices=["created", "amended", "revoked", "expired"])
    issued_at = serializers.DateTimeField()
    jws = serializers.CharField(
        help_text="Compact JWS (EdDSA); verify with the key at /api/v1/ledger/checkpoint"
    )
    document = serializers.DictField()


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
        with transaction.atomic():
            self.record_access("access.read", record_count=0, reason="receipts")
        return Response(receipts)


# Records.


class ListQuery(serializers.Serializer):  # type: ignore[type-arg]
    since = serializers.DateField(required=False)
    until = serializers.DateField(required=False)
    gtin = serializers.CharField(required=False, max_length=14)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200)
    cursor = serializers.CharField(required=False, max_length=500)

    def validate_gtin(self, value: str) -> str:
        if problem := gtin_error(value):
            raise serializers.ValidationError(problem)
        return value


class RecordListView(PersonApiView):
    category = ""
    pagination_class = RecordCursor
    query_fields = {"since", "until", "limit", "cursor"}

    def get(self, request: Request) -> Response:
        _strict_query(request, self.query_fields)
        params = _query(request, ListQuery)
        filters = self.grant_filters()
        if params.get("since") and (filters["since"] is None or params["since"] > filters["since"]):
            filters["since"] = params["since"]
        rows = selectors.records_shared_rows(
            owner=self.person,
            category=self.category,
            until=params.get("until"),
            gtin=params.get("gtin"),
            **filters,
        )
        paginator = self.pagination_class()
        # The page and its ledger entry in one transaction, in two round trips on PostgreSQL.
        with pipelined_atomic():
            page = paginator.paginate_queryset(rows, request, view=self) or []
            documents = selectors.records_open_json(owner=self.person, category=self.category, rows=page)
            self.record_access("access.read", record_ids=list(documents))
        # The documents are JSON already: the renderer embeds them as they are.
        return paginator.get_paginated_response([orjson.Fragment(d) for d in documents.values()])


class RecordDetailView(PersonApiView):
    category = ""

    def get(self, request: Request, record_id: str) -> Response:
        _strict_query(request, set())
        with transaction.atomic():
            document = selectors.record_get_shared(
                owner=self.person, category=self.category, record_id=record_id, **self.grant_filters()
            )
            self.record_access("access.read", record_ids=[document["id"]])
        return Response(document)


class OwnsOut(serializers.Serializer):  # type: ignore[type-arg]
    gtin = serializers.CharField()
    owns = serializers.BooleanField()


class OwnsQuery(serializers.Serializer):  # type: ignore[type-arg]
    gtin = serializers.CharField(max_length=14)

    def validate_gtin(self, value: str) -> str:
        if problem := gtin_error(value):
            raise serializers.ValidationError(problem)
        return value


class PurchasesOwnsView(PersonApiView):
    """Yes or no: does the person own this product? Answered from the blind index alone."""

    required_scopes = ["purchases:check"]

    @extend_schema(parameters=[OwnsQuery], responses=OwnsOut)
    def get(self, request: Request) -> Response:
        _strict_query(request, {"gtin"})
        gtin = _query(request, OwnsQuery)["gtin"]
        with transaction.atomic():
            owns = selectors.purchases_owns(owner=self.person, gtin=gtin, **self.grant_filters())
            self.record_access("access.check", record_count=0)
        return Response({"gtin": gtin, "owns": owns})


class PreferencesView(PersonApiView):
    """The person's preferences document."""

    required_scopes = ["preferences:read"]

    @extend_schema(responses=PreferencesSchema)
    def get(self, request: Request) -> Response:
        _strict_query(request, set())
        with transaction.atomic():
            document = selectors.preferences_get(owner=self.person)
            self.record_access("access.read", record_count=1, reason="preferences")
        return Response(document)


# Per-category endpoints. Output shapes are the record formats of INTERFACES.md §6.


class PurchaseOut(PurchaseSchema):
    id = serializers.UUIDField()
    source = serializers.ChoiceField(choices=["manual", "import", "vendor"])
    source_vendor = serializers.CharField(allow_blank=True)


class ClosetItemOut(ClosetItemSchema):
    id = serializers.UUIDField()


class ApplianceOut(ApplianceSchema):
    id = serializers.UUIDField()


class PrescriptionOut(PrescriptionSchema):
    id = serializers.UUIDField()
    next_refill_on = serializers.DateField(allow_null=True)


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
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                description="Makes a retry return the first result",
            )
        ],
    )
    def post(self, request: Request) -> Response:
        _strict_query(request, set())
        token = request.auth

        def create() -> Any:
            try:
                return services.record_create(
                    owner=self.person,
                    category="purchases",
                    data=request.data,
                    source="vendor",
                    source_vendor=token.application.organisation.name,
                )
            except ValidationError as error:
                raise exceptions.ValidationError(error.message_dict) from None

        def replay(record_id: str) -> Any:
            return selectors.record_get_for_owner(
                owner=self.person, category="purchases", record_id=record_id
            )

        key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        if len(key) > 200:
            raise exceptions.ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        with transaction.atomic():
            if key:
                document, _created = idempotent_create(
                    application=token.application,
                    owner=self.person,
                    key=key,
                    body=request.data,
                    create=create,
                    replay=replay,
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
