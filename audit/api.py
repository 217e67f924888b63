"""Public ledger endpoints: the newest signed checkpoint and Merkle proofs (no authentication).

They reveal hashes, tree sizes and entry ids only, so anyone can check that the ledger they were
shown yesterday is a prefix of today's. Errors are RFC 9457 problem documents.
"""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpResponse
from django.http.request import RawPostDataException
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.ledger import MAX_NOTE_CHARS, b64
from audit.selectors import (
    checkpoint_document,
    checkpoint_latest,
    checkpoint_note_cosigned,
    ledger_consistency_proof,
    ledger_inclusion_proof,
)
from audit.services import CosignatureRefused, cosignature_submit
from core.parsers import PlainTextParser
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


class CosignatureBriefOut(serializers.Serializer[dict[str, Any]]):
    witness = serializers.CharField(help_text="the witness's key name")
    key_id = serializers.CharField(help_text="hex of the witness key's 4-byte C2SP key id")
    timestamp = serializers.IntegerField(help_text="POSIX seconds the witness cosigned at")


class CosignatureOut(CosignatureBriefOut):
    line = serializers.CharField(help_text="the cosignature/v1 signature line, as the witness wrote it")


class WitnessedOut(serializers.Serializer[dict[str, Any]]):
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="base64 SHA-256")
    note = serializers.CharField(
        help_text="the log's signed note with the witnesses' cosignature lines appended"
    )
    cosignatures = CosignatureOut(many=True)


class WitnessOut(serializers.Serializer[dict[str, Any]]):
    name = serializers.CharField()
    key_id = serializers.CharField(help_text="hex of the 4-byte C2SP key id")
    public_key = serializers.CharField(help_text="base64 raw Ed25519 public key")
    vkey = serializers.CharField(help_text="C2SP verifier key: name+keyid+base64(0x04 || key)")
    created_at = serializers.DateTimeField()
    retired_at = serializers.DateTimeField(allow_null=True)


class CosignaturesStoredOut(serializers.Serializer[dict[str, Any]]):
    tree_size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="base64 SHA-256")
    cosignatures = CosignatureBriefOut(many=True, help_text="the cosignatures stored for this checkpoint")


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
    cosignatures = CosignatureOut(many=True, help_text="witnesses' cosignatures of this checkpoint")
    witnessed = WitnessedOut(
        allow_null=True, help_text="the newest checkpoint any witness cosigned (null if none)"
    )
    witnesses = WitnessOut(many=True, help_text="the witnesses auditors registered, retired ones too")


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


def _problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body = {"type": problem_type(status), "title": title, "status": status, "detail": detail, **extra}
    return Response(body, status=status, content_type=PROBLEM_CONTENT_TYPE)


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
    # Proofs read every leaf hash up to a checkpoint: limit each address (VRM_LEDGER_RATE).
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
        responses={200: InclusionOut, 400: ProblemOut, 404: ProblemOut},
        auth=[],
    )
    def get(self, request: Request, entry_id: int) -> Response:
        """Return the inclusion proof of a sealed entry in a checkpoint's tree."""
        try:
            size = _size_param(request, "size")
            return Response(ledger_inclusion_proof(entry_id=entry_id, tree_size=size))
        except ValueError as exc:
            return _problem(400, "Bad Request", str(exc))
        except Http404 as exc:
            return _problem(404, "Not Found", str(exc))


class ConsistencyProofView(PublicLedgerView):
    @extend_schema(
        parameters=[
            OpenApiParameter("first", int, required=True, description="older checkpoint tree size"),
            OpenApiParameter("second", int, description="newer checkpoint tree size (default newest)"),
        ],
        responses={200: ConsistencyOut, 400: ProblemOut, 404: ProblemOut},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        """Return the consistency proof between two checkpoints."""
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


# A cosigned note is a few hundred bytes; this leaves room for many witnesses.
MAX_COSIGNED_BYTES = 16 * 1024
_TITLES = {400: "Bad Request", 403: "Forbidden"}
_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")
_COSIGNED_EXAMPLE = (
    "https://vrm.example.org/ledger\n40\nK5Cfo0Z8xWw9rVbY0Xn3kfHnPpM0hR0w5o2mQ2t2Xlk=\n\n"
    "\u2014 https://vrm.example.org/ledger AbCdEf...\n"
    "\u2014 witness.example.org/alice 1a2b3c4d...\n"
)


class CosignaturesView(PublicLedgerView):
    parser_classes = (PlainTextParser,)

    @extend_schema(
        request={"text/plain": OpenApiTypes.STR},
        examples=[OpenApiExample("A cosigned checkpoint", value=_COSIGNED_EXAMPLE, request_only=True)],
        responses={
            200: OpenApiResponse(CosignaturesStoredOut, description="already stored (idempotent)"),
            201: OpenApiResponse(CosignaturesStoredOut, description="stored"),
            400: ProblemOut,
            403: ProblemOut,
            409: OpenApiResponse(
                ProblemOut,
                description="the ledger cannot stand behind this log-signed checkpoint: an alarm was "
                "raised; `alarm` names its kind (fork, inconsistent, truncated, checkpoint_missing)",
            ),
            415: ProblemOut,
        },
        auth=[],
    )
    def post(self, request: Request) -> Response:
        """Take a checkpoint note the log signed and registered witnesses cosigned (C2SP tlog-cosignature).

        The body is the note: body, blank line, the log's signature line and one or more
        cosignature/v1 lines (lines of unknown keys are ignored). A witness that refuses a new
        checkpoint posts its own last cosigned one here: a forked, rewritten or truncated log then
        raises an alarm (409).
        """
        if request.content_type in _FORMS:
            # A form's body is read (and consumed) by the middleware before this view runs.
            return _problem(415, "Unsupported Media Type", "Send the note as text/plain.")
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        try:
            raw = b"" if length > MAX_COSIGNED_BYTES else request.body
        except RawPostDataException:
            return _problem(415, "Unsupported Media Type", "Send the note as text/plain.")
        if length > MAX_COSIGNED_BYTES or len(raw) > MAX_COSIGNED_BYTES:
            return _problem(400, "Bad Request", f"The note is larger than {MAX_COSIGNED_BYTES} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _problem(400, "Bad Request", "The note is not UTF-8 text.")
        if len(text) > MAX_NOTE_CHARS:
            return _problem(400, "Bad Request", f"The note is longer than {MAX_NOTE_CHARS} characters.")
        try:
            outcome = cosignature_submit(text.replace("\r\n", "\n"))
        except CosignatureRefused as refused:
            return _problem(refused.status, _TITLES[refused.status], refused.detail)
        if outcome.alarm is not None:
            return _problem(
                409,
                "Conflict",
                f"Alarm raised ({outcome.alarm.kind} at tree size {outcome.alarm.tree_size}): "
                f"{outcome.alarm.detail}",
                alarm=outcome.alarm.kind,
            )
        body = {
            "tree_size": outcome.tree_size,
            "root_hash": b64(outcome.root_hash),
            "cosignatures": [
                {
                    "witness": c.witness.name,
                    "key_id": bytes(c.witness.key_id).hex(),
                    "timestamp": c.timestamp,
                }
                for c in outcome.cosignatures
            ],
        }
        return Response(body, status=201 if outcome.created else 200)


class CheckpointTextView(PublicLedgerView):
    """The C2SP tlog-tiles checkpoint: the newest note with its cosignature lines, as text."""

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # Plain text whatever Accept asks for (a C2SP client may ask for text/plain).
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse | Response:
        checkpoint = checkpoint_latest()
        if checkpoint is None:
            return _problem(404, "Not Found", "The ledger has no checkpoint yet.")
        response = HttpResponse(
            checkpoint_note_cosigned(checkpoint), content_type="text/plain; charset=utf-8"
        )
        response["Cache-Control"] = "max-age=5"
        return response
