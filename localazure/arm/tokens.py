"""Signed access tokens (RS256 JWTs) the token endpoint issues and Resource Manager verifies."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_LIFETIME_SECONDS = 3600

# Audiences Resource Manager accepts besides its own URL: what the SDK asks for by default
# (`https://management.azure.com/.default`) and the classic alias.
PUBLIC_ARM_AUDIENCES = frozenset(
    {
        "https://management.azure.com",
        "https://management.azure.com/",
        "https://management.core.windows.net",
        "https://management.core.windows.net/",
    }
)


class InvalidToken(Exception):
    """A bearer token that is malformed, badly signed, expired or not meant for Resource Manager."""


@dataclass(frozen=True)
class TokenClaims:
    """The claims Resource Manager uses from a verified token."""

    tenant_id: str
    object_id: str
    app_id: str
    audience: str


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class TokenSigner:
    """Holds the emulator's RSA signing key (persisted, 0600) and issues / verifies tokens."""

    def __init__(self, key_path: Path, issuer_base: str) -> None:
        self._key = self._load_or_create(key_path)
        self._issuer_base = issuer_base.rstrip("/")
        public_der = self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.key_id = hashlib.sha256(public_der).hexdigest()[:32]

    @staticmethod
    def _load_or_create(key_path: Path) -> rsa.RSAPrivateKey:
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise TypeError(f"{key_path} does not hold an RSA key")
            return key
        key_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        tmp = key_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, key_path)
        return key

    def issuer(self, tenant_id: str) -> str:
        """The `iss` claim for tokens of a tenant."""
        return f"{self._issuer_base}/{tenant_id}/v2.0"

    def issue(self, *, tenant_id: str, object_id: str, app_id: str, audience: str) -> tuple[str, int]:
        """Sign an app-only access token; returns the token and its lifetime in seconds."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "aud": audience,
            "iss": self.issuer(tenant_id),
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_LIFETIME_SECONDS,
            "tid": tenant_id,
            "oid": object_id,
            "sub": object_id,
            "appid": app_id,
            "azp": app_id,
            "idtyp": "app",
            "ver": "2.0",
            "uti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.key_id})
        return token, TOKEN_LIFETIME_SECONDS

    def verify(self, token: str, accepted_audiences: frozenset[str]) -> TokenClaims:
        """Check signature, lifetime and audience; raises InvalidToken (never echoing the token)."""
        try:
            claims = jwt.decode(
                token,
                self._key.public_key(),
                algorithms=["RS256"],
                options={"verify_aud": False, "require": ["exp", "tid", "oid", "aud"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"The access token is invalid ({type(exc).__name__}).") from exc
        audience = str(claims["aud"])
        if audience not in accepted_audiences:
            raise InvalidToken(f"The access token has an invalid audience '{audience}'.")
        return TokenClaims(
            tenant_id=str(claims["tid"]),
            object_id=str(claims["oid"]),
            app_id=str(claims.get("appid", "")),
            audience=audience,
        )

    def jwks(self) -> dict[str, Any]:
        """The public signing key as a JSON Web Key Set."""
        numbers = self._key.public_key().public_numbers()
        return {
            "keys": [
                {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.key_id,
                 "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}
            ]
        }
