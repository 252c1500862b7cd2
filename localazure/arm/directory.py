"""The principal directory: service principals (with secrets) and managed identities, per tenant."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from typing import Any

from localazure.arm.ids import utc_now
from localazure.arm.store import Record, StateStore

TABLE = "principals"


def _hash_secret(secret: str, salt: str) -> str:
    return hashlib.pbkdf2_hmac("sha256", secret.encode(), bytes.fromhex(salt), 10_000).hex()


def new_client_secret() -> str:
    """A client secret in the style Entra issues (40 url-safe characters)."""
    return secrets.token_urlsafe(30)


class Directory:
    """Principals keyed by app (client) id; secrets are stored only as salted hashes."""

    def __init__(self, store: StateStore) -> None:
        self._store = store

    def create_service_principal(
        self, display_name: str, tenant_id: str, *, secret: str | None = None, app_id: str | None = None
    ) -> tuple[Record, str]:
        """Register an app + service principal with a client secret; returns (public record, secret)."""
        client_secret = secret or new_client_secret()
        salt = secrets.token_hex(16)
        record: Record = {
            "appId": app_id or str(uuid.uuid4()),
            "objectId": str(uuid.uuid4()),
            "displayName": display_name,
            "tenantId": tenant_id,
            "principalType": "ServicePrincipal",
            "createdDateTime": utc_now(),
            "secretSalt": salt,
            "secretHash": _hash_secret(client_secret, salt),
        }
        self._store.put(TABLE, record["appId"], record)
        return self.public(record), client_secret

    def create_managed_identity(self, display_name: str, tenant_id: str) -> Record:
        """Register a secret-less principal (a system-assigned identity of a resource)."""
        app_id = str(uuid.uuid4())
        record: Record = {
            "appId": app_id,
            "objectId": str(uuid.uuid4()),
            "displayName": display_name,
            "tenantId": tenant_id,
            "principalType": "ServicePrincipal",
            "managedIdentity": True,
            "createdDateTime": utc_now(),
        }
        self._store.put(TABLE, app_id, record)
        return self.public(record)

    def delete(self, app_id: str) -> bool:
        """Remove a principal; returns whether it existed."""
        return self._store.delete(TABLE, app_id) is not None

    def by_app_id(self, app_id: str) -> Record | None:
        """The public record of a principal by client id."""
        record = self._store.get(TABLE, app_id)
        return self.public(record) if record else None

    def by_object_id(self, object_id: str) -> Record | None:
        """The public record of a principal by object id."""
        low = object_id.lower()
        found = self._store.values(TABLE, lambda r: str(r["objectId"]).lower() == low)
        return self.public(found[0]) if found else None

    def all(self) -> list[Record]:
        """Public records of every principal."""
        return [self.public(r) for r in self._store.values(TABLE)]

    def tenants(self) -> set[str]:
        """Tenant ids that have at least one principal."""
        return {str(r["tenantId"]).lower() for r in self._store.values(TABLE)}

    def check_secret(self, app_id: str, secret: str) -> bool:
        """Constant-time check of a client secret."""
        record = self._store.get(TABLE, app_id)
        if not record or "secretHash" not in record:
            return False
        return hmac.compare_digest(_hash_secret(secret, record["secretSalt"]), record["secretHash"])

    @staticmethod
    def public(record: Record) -> dict[str, Any]:
        """A record without its secret hash."""
        return {k: v for k, v in record.items() if k not in {"secretHash", "secretSalt"}}
