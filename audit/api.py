"""Public ledger endpoints: the newest signed checkpoint and Merkle proofs (no authentication).

They reveal hashes, tree sizes and entry ids only, so anyone can check that the ledger they were
shown yesterday is a prefix of today's. Errors are RFC 9457 problem documents.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.selectors import (
    TilesNotBuilt,
    checkpoint_document,
    checkpoint_latest,
    ledger_consistency_proof,
    ledger_inclusion_proof,
)
from core.problems import PROBLEM_CONTENT_TYPE, problem_type
from core.ratelimits import AddressScopedRateThrottle


class JwkOut(serializers.Serializer[dict[str, Any]]):
    kty = serializers.CharField()
    crv = serializers.CharField()
    x = serializers.CharField()
    kid = serializers.CharField()
    alg = serializers.CharField()
    use = serializers.CharField()


class PublicKeyOut(serializers.Serializer[dict[str, Any]]):
    key_id = serializers.CharField(help_text="hex of the 4-byte C2SP key id in checkpoint notes")
    kid = serializers.CharField(help_text="RFC 7638 thumbprint: the `kid` of consent receipts")
    public_key = serializers.CharField(help_text="base64 raw Ed25519 public key")
    public_key_pem = serializers.CharField()
    jwk = JwkOut()
    created_at = serializers.DateTimeField()
    retired_at = serializers.DateTimeField(allow_null=True)
    current = serializers.BooleanField()
    predecessor_kid = serializers.CharField(
        allow_null=True, help_text="`kid` of the key that handed over to this one (null for the first key)"
    )
    handover_signature = serializers.CharField(
        allow_null=True,
        help_text="base64 Ed25519 signature by the predecessor of the handover statement naming this key",
    )
    possession_signature = serializers.CharField(
        allow_null=True, help_text="base64 Ed25519 signature by this key of its possession statement"
    )


class CheckpointOut(serializers.Serializer[dict[str, Any]]):
    origin = serializers.CharField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="base64 SHA-256")
    created_at = serializers.DateTimeField()
    note = serializers.CharField(help_text="C2SP signed-note checkpoint")
    signature = serializers.CharField(help_text="base64 Ed25519 signature of the note body")
    key_id = serializers.CharField(help_text="hex key id of the key that signed this checkpoint")
    public_key = serializers.CharField(
        allow_null=True, help_text="base64 raw Ed25519 public key that signed this checkpoint"
    )
    public_key_pem = serializers.CharField(allow_null=True)
    keys = PublicKeyOut(
        many=True,
        help_text="the chain of trusted keys, oldest first, with their handovers; old keys verify old proofs",
    )


class InclusionOut(serializers.Serializer[dict[str, Any]]):
    entry_id = serializers.IntegerField()
    leaf_index = serializers.IntegerField()
    leaf_hash = serializers.CharField()
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())


class ConsistencyOut(serializers.Serializer[dict[str, Any]]):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    first_root_hash = serializers.CharField()
    second_root_hash = serializers.CharField()
    proof = serializers.ListField(child=serializers.CharField())


class ProblemOut(serializers.Serializer[dict[str, Any]]):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()


def _problem(status: int, title: str, detail: str) -> Response:
    body = {"type": problem_type(status), "title": title, "status": status, "detail": detail}
    return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


def _tiles_not_built() -> Response:
    # Only between an upgrade and the sealer's next run, which builds the tiles.
    response = _problem(503, "Service Unavailable", "The ledger's tiles are being built; try again shortly.")
    response["Retry-After"] = "30"
    return response


def _size_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):  # isdigit() alone takes "²", which int() refuses
        raise ValueError(f"{name} must be a positive integer")
    return int(raw)


class PublicLedgerView(APIView):
    # Public on purpose: a view that names no permission is refused (settings: DenyAll).
    permission_classes = (AllowAny,)
    authentication_classes = ()
    # Each request reads a few tiles and hashes a few hundred nodes: limit each address anyway
    # (VRM_LEDGER_RATE).
    throttle_classes = (AddressScopedRateThrottle,)
    throttle_scope = "ledger"


class CheckpointView(PublicLedgerView):
    @extend_schema(responses={200: CheckpointOut, 404: ProblemOut}, auth=[])
    def get(self, request: Request) -> Response:
        """Return the newest signed checkpoint and every public key with its key ids; 404 before a seal."""
        checkpoint = checkpoint_latest()
        if checkpoint is None:
            return _problem(404, "Not Found", "The ledger has no checkpoint yet.")
        return Response(checkpoint_document(checkpoint=checkpoint))


class InclusionProofView(PublicLedgerView):
    @extend_schema(
        parameters=[OpenApiParameter("size", int, description="checkpoint tree size (default newest)")],
        responses={200: InclusionOut, 400: ProblemOut, 404: ProblemOut, 503: ProblemOut},
        auth=[],
    )
    def get(self, request: Request, entry_id: int) -> Response:
        """Return the inclusion proof of a sealed entry in a checkpoint's tree, computed from tiles."""
        try:
            size = _size_param(request, "size")
            return Response(ledger_inclusion_proof(entry_id=entry_id, tree_size=size))
        except ValueError as exc:
            return _problem(400, "Bad Request", str(exc))
        except Http404 as exc:
            return _problem(404, "Not Found", str(exc))
        except TilesNotBuilt:
            return _tiles_not_built()


class ConsistencyProofView(PublicLedgerView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "first", int, required=True, description="older tree size: any size from 1 to `second`"
            ),
            OpenApiParameter("second", int, description="newer checkpoint tree size (default newest)"),
        ],
        responses={200: ConsistencyOut, 400: ProblemOut, 404: ProblemOut, 503: ProblemOut},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        """Return the consistency proof from an older tree size to a checkpoint, computed from tiles."""
        try:
            first = _size_param(request, "first")
            if first is None:
                raise ValueError("first is required")
            second = _size_param(request, "second")
            return Response(ledger_consistency_proof(first=first, second=second))
        except ValueError as exc:
            return _problem(400, "Bad Request", str(exc))
        except Http404 as exc:
            return _problem(404, "Not Found", str(exc))
        except TilesNotBuilt:
            return _tiles_not_built()
