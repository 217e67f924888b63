"""POST /api/v1/messages and GET /api/v1/messages/{id}: a vendor's messages to the person.

The scope is messages:send; the service (vendors.messages) seals the words to the person,
keeps to the grant's weekly allowance and writes the ledger entry.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from core.request_ids import request_id_of
from vendors.api.permissions import bearer_client
from vendors.api.views import IDEMPOTENCY_KEY, PersonApiView, _strict_query
from vendors.idempotency import idempotent_create
from vendors.messages import (
    AllowanceExceeded,
    MessageSchema,
    message_get_for_grant,
    message_send,
    message_status,
)

STATUSES = ("delivered", "expired")


class AllowanceUsed(exceptions.Throttled):
    """429 with Retry-After: the grant's messages for the rolling week are used up."""

    def __init__(self, exceeded: AllowanceExceeded) -> None:
        detail = (
            "This grant's messages for the last 7 days are used up "
            f"(at most {exceeded.allowance} a week; the person may lower it to none)."
        )
        super().__init__(wait=exceeded.retry_after, detail=detail)


class MessageCreatedOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=STATUSES, help_text="`delivered` or `expired`, never read")


class MessageOut(MessageCreatedOut):
    response = serializers.ChoiceField(
        choices=["interested", "not_interested"],
        allow_null=True,
        help_text="The person's answer, or null",
    )


class MessageCreate(PersonApiView):
    """Post a message (offer, notice or thanks) to the person's inbox, within the weekly allowance."""

    required_scopes = ["messages:send"]

    @extend_schema(
        request=MessageSchema,
        # Error responses (400, 401, 403, 409, 413, 429 with Retry-After) come from vrm.schema.
        responses={201: MessageCreatedOut},
        parameters=[IDEMPOTENCY_KEY],
    )
    def post(self, request: Request) -> Response:
        _strict_query(request, set())
        client = bearer_client(request)
        grant = self.grant

        def create() -> dict[str, Any]:
            try:
                message = message_send(
                    grant=grant, application=client, data=request.data, request_id=request_id_of(request)
                )
            except ValidationError as error:
                raise exceptions.ValidationError(error.message_dict) from None
            except AllowanceExceeded as exceeded:
                raise AllowanceUsed(exceeded) from None
            return {"id": str(message.pk), "status": message_status(message)}

        key = request.META.get("HTTP_IDEMPOTENCY_KEY", "").strip()
        if len(key) > 200:
            raise exceptions.ValidationError({"Idempotency-Key": ["At most 200 characters."]})
        if not key:
            return Response(create(), status=201)
        with transaction.atomic():
            document, _created = idempotent_create(
                application=client,
                owner=self.person,
                share=self.share,
                key=key,
                body=request.data,
                create=create,
            )
        return Response({"id": document["id"], "status": document["status"]}, status=201)


class MessageDetail(PersonApiView):
    """A message this grant posted: its status and the person's answer, nothing else."""

    required_scopes = ["messages:send"]

    @extend_schema(responses={200: MessageOut})
    def get(self, request: Request, message_id: str) -> Response:
        _strict_query(request, set())
        message = message_get_for_grant(grant=self.grant, message_id=message_id)
        self.record_access(
            "access.read", record_ids=[str(message.pk)], record_count=0, reason="message status"
        )
        return Response(
            {"id": str(message.pk), "status": message_status(message), "response": message.response or None}
        )
