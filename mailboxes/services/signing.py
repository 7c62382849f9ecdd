"""The server's ECDSA P-256 identity key: signs X-MultiMail-Identity on every outbound email.

The key comes from MULTIMAIL_SIGNING_KEY_PEM (a PKCS#8 or SEC1 PEM, for production: set it
so every process and every restart signs with the same key). Without it, the embedded
default generates one key on first use and keeps it in MULTIMAIL_SIGNING_KEY_FILE
(var/signing-key.pem), so signatures stay verifiable across restarts of a single server.

Header format: ``base64url(JSON claim) "." base64url(DER ECDSA-SHA256 signature over the
first part's ASCII)``, no padding. The public key is at /.well-known/multimail-signing-key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _load_or_create_file(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        # O_EXCL: two processes starting together agree on whichever key was written first.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return pem


@cache
def signing_key() -> ec.EllipticCurvePrivateKey:
    configured = settings.MULTIMAIL_SIGNING_KEY_PEM
    pem = (
        configured.encode()
        if configured
        else _load_or_create_file(Path(settings.MULTIMAIL_SIGNING_KEY_FILE))
    )
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("MULTIMAIL_SIGNING_KEY_PEM must be an ECDSA P-256 private key.")
    return key


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _b64url(hashlib.sha256(der).digest()[:16])


def public_key_document() -> dict[str, Any]:
    """What /.well-known/multimail-signing-key publishes: PEM and JWK of the public key."""
    public = signing_key().public_key()
    numbers = public.public_numbers()
    kid = key_id(public)
    return {
        "algorithm": "ES256",
        "kid": kid,
        "header": "X-MultiMail-Identity",
        "format": "base64url(JSON claim) + '.' + base64url(DER ECDSA-SHA256 signature)",
        "public_key_pem": public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode(),
        "jwk": {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
            "alg": "ES256",
            "use": "sig",
            "kid": kid,
        },
    }


def identity_sign(claim: dict[str, Any]) -> str:
    key = signing_key()
    payload = _b64url(
        json.dumps(
            {**claim, "kid": key_id(key.public_key())}, separators=(",", ":"), sort_keys=True
        ).encode()
    )
    signature = key.sign(payload.encode("ascii"), ec.ECDSA(hashes.SHA256()))
    return f"{payload}.{_b64url(signature)}"
