"""The recall endpoints of the vendor API: verified organisations' own tokens (client credentials) only."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consent.oauth import BearerAuthentication
from core.problems import body_limit_check
from vendors.api.permissions import OrganisationTokenPermission, bearer_client
from vendors.api.throttles import AppBurstThrottle, AppSustainedThrottle
from vendors.models import Recall
from vendors.recalls import RecallSchema, bucket, recall_publish_and_match

SCOPE = "recalls:publish"


class RecallOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Recall.Status.values)
    matched = serializers.CharField(
        required=False,
        allow_null=True,
        help_text=(
            'People reached, as a range and never an exact number: "0-9" (fewer than ten, '
            'zero included, so a recall never tells nobody from a few), "10-99", "100-999", …; '
            "null until matching is done."
        ),
    )


class RecallApiView(APIView):
    authentication_classes = [BearerAuthentication]
    permission_classes = [OrganisationTokenPermission]
    throttle_classes = [AppBurstThrottle, AppSustainedThrottle]
    required_scopes = [SCOPE]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        body_limit_check(request)
        super().initial(request, *args, **kwargs)


class RecallCreate(RecallApiView):
    """Publish a recall; matching runs in the background."""

    @extend_schema(request=RecallSchema, responses={202: RecallOut})
    def post(self, request: Request) -> Response:
        try:
            recall = recall_publish_and_match(application=bearer_client(request), data=request.data)
        except ValidationError as error:
            raise exceptions.ValidationError(error.message_dict) from None
        recall.refresh_from_db()
        return Response({"id": str(recall.pk), "status": recall.status}, status=202)


class RecallDetail(RecallApiView):
    """A recall's status and how many people it reached (bucketed), for its own organisation only."""

    @extend_schema(responses=RecallOut)
    def get(self, request: Request, recall_id: str) -> Response:
        try:
            pk = uuid.UUID(recall_id)
        except ValueError:
            raise Http404 from None
        recall = Recall.objects.filter(pk=pk, organisation_id=bearer_client(request).organisation_id).first()
        if recall is None:
            raise Http404
        done = recall.status == Recall.Status.DONE
        return Response(
            {
                "id": str(recall.pk),
                "status": recall.status,
                "matched": bucket(recall.matched_people or 0) if done else None,
            }
        )
