"""Signed JSON documents: a compact JWS (EdDSA, Ed25519) under the ledger signing key.

Consent receipts and the auditor's verification reports are signed this way. The protected
header names the key by `kid` (its RFC 7638 thumbprint) and the document's kind by `typ`;
`GET /api/v1/ledger/checkpoint` publishes every trusted key as a JWK with that kid, so a
document keeps verifying after the signing key is rotated.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jwcrypto import jwk, jws

from audit.selectors import signing_key_by_kid, signing_key_jwk
from audit.services import signing_key_use
from core.crypto import jwk_thumbprint

InvalidSignature = jws.InvalidJWSSignature


@lru_cache(maxsize=4)
def _jwk(pem: str) -> jwk.JWK:
    return jwk.JWK.from_pem(pem.encode())


def document_sign(document: dict[str, Any], *, typ: str) -> str:
    """Sign a JSON document with the configured key (refused unless it is in the key history)."""
    signing = signing_key_use()
    token = jws.JWS(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())
    kid = jwk_thumbprint(signing.public_raw())
    token.add_signature(
        _jwk(signing.private_pem()),
        alg="EdDSA",
        protected=json.dumps({"alg": "EdDSA", "typ": typ, "kid": kid}),
    )
    return token.serialize(compact=True)


def document_verify(compact: str, public_key: dict[str, Any] | None = None) -> dict[str, Any]:
    """Verify a compact JWS and return its JSON document; raise InvalidSignature.

    Without public_key (a JWK), take the key its header's `kid` names from the chain of trusted
    keys, so a document signed before a rotation verifies under the key that signed it.
    """
    token = jws.JWS()
    token.deserialize(compact)
    if public_key is None:
        kid = token.jose_header.get("kid")
        public_raw = signing_key_by_kid(kid=kid) if isinstance(kid, str) else None
        if public_raw is None or not isinstance(kid, str):
            raise InvalidSignature(f"the key id {kid!r} is not in the key history")
        public_key = signing_key_jwk(public_raw, kid)
    token.verify(jwk.JWK(**public_key), alg="EdDSA")
    document: dict[str, Any] = json.loads(token.payload)
    return document
