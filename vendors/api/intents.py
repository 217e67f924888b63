"""The intent endpoints of the vendor API: verified organisations' own tokens (client credentials)
with `intents:read`. An organisation sees open intents its filters match, offers once per intent,
amends its offer while the intent is open, and learns its offer's status and nothing else."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consent.oauth import BearerAuthentication
from core.problems import body_limit_check
from vendors.api.pagination import KeysetPagination
from vendors.api.permissions import OrganisationTokenPermission, bearer_client
from vendors.api.throttles import AppBurstThrottle, AppSustainedThrottle
from vendors.intents import (
    SCOPE,
    IntentSchema,
    NotOpen,
    OfferExists,
    OfferSchema,
    intent_get_for_organisation,
    intent_json,
    intents_page,
    offer_amend,
    offer_create,
    offer_get_for_organisation,
    offer_status,
)
from vendors.models import Intent, Offer


class OfferConflict(exceptions.APIException):
    status_code = 409
    default_detail = "Your organisation has made an offer on this intent already; amend it with PATCH."
    default_code = "offer_exists"
    problem = ("offer-exists", "An offer exists already")


class OfferClosed(exceptions.APIException):
    status_code = 409
    default_detail = "This offer is no longer open, so it can no longer change."
    default_code = "offer_not_open"
    problem = ("offer-not-open", "The offer is no longer open")


class IntentOut(IntentSchema):
    id = serializers.UUIDField(help_text="Random, one per intent; never a person id")
    postcode_prefix = serializers.CharField(allow_null=True, help_text="At most 3 characters, or null")  # type: ignore[assignment]
    details = serializers.DictField(  # type: ignore[assignment]
        child=serializers.CharField(), help_text="The fields the person chose to include"
    )
    price_min = serializers.CharField(help_text="A decimal string")  # type: ignore[assignment]
    price_max = serializers.CharField(help_text="A decimal string")  # type: ignore[assignment]
    terms = serializers.CharField(allow_null=True, help_text="A MyTerms roster agreement id, or null")  # type: ignore[assignment]


class OfferOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Offer.Status.values)


class OfferAmend(OfferSchema):
    """Any of the offer's fields; those left out stay as they are."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.required = False


class IntentListQuery(serializers.Serializer):  # type: ignore[type-arg]
    since = serializers.DateTimeField(
        required=False, help_text="Only intents published or changed at or after"
    )
    limit = serializers.IntegerField(required=False, min_value=1, max_value=200)
    cursor = serializers.CharField(required=False, max_length=500)


def _strict_query(request: Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query_params) - allowed)
    if unknown:
        raise exceptions.ValidationError({name: ["Unknown query parameter."] for name in unknown})


def _cursor_time(moment: dt.datetime) -> str:
    # As KeysetPagination reads it back: UTC, as PostgreSQL prints a timestamptz.
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f+00")


def _service_errors(error: ValidationError) -> exceptions.ValidationError:
    return exceptions.ValidationError(error.message_dict)


class IntentApiView(APIView):
    authentication_classes = [BearerAuthentication]
    permission_classes = [OrganisationTokenPermission]
    throttle_classes = [AppBurstThrottle, AppSustainedThrottle]
    required_scopes = [SCOPE]
    refuses_bad_query = True  # every intent endpoint answers 400 to unknown query parameters

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        body_limit_check(request)
        super().initial(request, *args, **kwargs)

    @property
    def organisation_id(self) -> Any:
        return bearer_client(self.request).organisation_id

    def intent(self, intent_id: str) -> Intent:
        return intent_get_for_organisation(organisation_id=self.organisation_id, intent_id=intent_id)


class IntentList(IntentApiView):
    """Open intents that match your organisation's filters, most recently published or changed first."""

    pagination_class = KeysetPagination

    @extend_schema(
        parameters=[
            OpenApiParameter("since", dt.datetime, description="RFC 3339 time"),
            OpenApiParameter("limit", int, description="1 to 200, default 50"),
            OpenApiParameter("cursor", str),
        ],
        responses=IntentOut(many=True),
    )
    def get(self, request: Request) -> Response:
        _strict_query(request, {"since", "limit", "cursor"})
        params = IntentListQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        limit = params.validated_data.get("limit", paginator.default_limit)
        rows = intents_page(
            organisation_id=self.organisation_id,
            limit=limit + 1,  # one more tells whether a next page exists
            after=paginator.position(params.validated_data.get("cursor")),
            since=params.validated_data.get("since"),
        )
        page = rows[:limit]
        after = (_cursor_time(page[-1].updated_at), str(page[-1].pk)) if len(rows) > limit else None
        return paginator.response(request, [intent_json(i) for i in page], after)


class IntentDetail(IntentApiView):
    """One open intent your filters match; withdrawn, ended, closed and unknown ids all answer 404."""

    @extend_schema(responses=IntentOut)
    def get(self, request: Request, intent_id: str) -> Response:
        _strict_query(request, set())
        return Response(intent_json(self.intent(intent_id)))


class OfferCreate(IntentApiView):
    """Answer an intent with your organisation's one offer (a second is a 409: amend the first)."""

    may_conflict = True

    @extend_schema(request=OfferSchema, responses={201: OfferOut})
    def post(self, request: Request, intent_id: str) -> Response:
        _strict_query(request, set())
        intent = self.intent(intent_id)
        try:
            offer = offer_create(application=bearer_client(request), intent=intent, data=request.data)
        except ValidationError as error:
            raise _service_errors(error) from None
        except OfferExists:
            raise OfferConflict() from None
        except NotOpen:  # ended between the lookup and the lock: as if it had not been found
            raise exceptions.NotFound("Not found.") from None
        return Response({"id": str(offer.pk), "status": offer.status}, status=201)


class OfferDetail(IntentApiView):
    """Your offer's status (`open`, `accepted`, `declined`, `expired`, `withdrawn`), and nothing
    else; PATCH amends it while the intent is open."""

    may_conflict = True

    @extend_schema(responses=OfferOut)
    def get(self, request: Request, intent_id: str, offer_id: str) -> Response:
        _strict_query(request, set())
        offer = offer_get_for_organisation(
            organisation_id=self.organisation_id, intent_id=intent_id, offer_id=offer_id
        )
        return Response({"id": str(offer.pk), "status": offer_status(offer)})

    @extend_schema(request=OfferAmend, responses=OfferOut)
    def patch(self, request: Request, intent_id: str, offer_id: str) -> Response:
        _strict_query(request, set())
        intent = self.intent(intent_id)  # open and still matching, or 404
        offer = offer_get_for_organisation(
            organisation_id=self.organisation_id, intent_id=str(intent.pk), offer_id=offer_id
        )
        try:
            offer = offer_amend(application=bearer_client(request), offer=offer, data=request.data)
        except ValidationError as error:
            raise _service_errors(error) from None
        except NotOpen:
            raise OfferClosed() from None
        return Response({"id": str(offer.pk), "status": offer.status})
