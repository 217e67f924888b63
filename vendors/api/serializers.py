"""The vendor API's input and output shapes (INTERFACES.md §5 and the record formats of §6).

Input schemas of records come from the store (personal_data.schemas); outputs add the fields
the store sets (`id`, `source`, computed dates). Query serializers validate query strings.
"""

from __future__ import annotations

from rest_framework import serializers

from personal_data.schemas import ApplianceSchema, ClosetItemSchema, PrescriptionSchema, PurchaseSchema
from personal_data.validators import gtin_error


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


class ReceiptOut(serializers.Serializer):  # type: ignore[type-arg]
    number = serializers.IntegerField()
    event = serializers.ChoiceField(choices=["created", "amended", "revoked", "expired"])
    issued_at = serializers.DateTimeField()
    jws = serializers.CharField(
        help_text="Compact JWS (EdDSA); verify with the key at /api/v1/ledger/checkpoint"
    )
    document = serializers.DictField()


class AgreementOut(serializers.Serializer):  # type: ignore[type-arg]
    record = serializers.DictField(
        help_text=(
            "The agreement record (vrm-agreement/1): both parties, the agreement and version, "
            "the time and the grant"
        )
    )
    jws = serializers.CharField(
        help_text="The record as a compact JWS (EdDSA); verify with the key at /api/v1/ledger/checkpoint"
    )
    acknowledged_at = serializers.DateTimeField(
        allow_null=True, help_text="When your client acknowledged it (POST /api/v1/agreement/accept)"
    )


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


class OwnsOut(serializers.Serializer):  # type: ignore[type-arg]
    gtin = serializers.CharField()
    owns = serializers.BooleanField()


class OwnsQuery(serializers.Serializer):  # type: ignore[type-arg]
    gtin = serializers.CharField(max_length=14)

    def validate_gtin(self, value: str) -> str:
        if problem := gtin_error(value):
            raise serializers.ValidationError(problem)
        return value


class PurchaseOut(PurchaseSchema):
    id = serializers.UUIDField()
    # A record field called `source`, not DRF's Field.source the stubs type on the class.
    source = serializers.ChoiceField(choices=["manual", "import", "vendor"])  # type: ignore[assignment]
    source_vendor = serializers.CharField(allow_blank=True)


class ClosetItemOut(ClosetItemSchema):
    id = serializers.UUIDField()


class ApplianceOut(ApplianceSchema):
    id = serializers.UUIDField()


class PrescriptionOut(PrescriptionSchema):
    id = serializers.UUIDField()
    next_refill_on = serializers.DateField(allow_null=True)
