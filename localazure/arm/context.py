"""The emulator instance: state, identity of the subscription, knobs, and the shared services."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request

from localazure.arm.directory import Directory
from localazure.arm.ids import group_id, subscription_id_path
from localazure.arm.knobs import KnobBoard, Knobs
from localazure.arm.lro import Operations
from localazure.arm.providers import ProviderRegistry
from localazure.arm.rbac import OWNER, Rbac
from localazure.arm.store import StateStore
from localazure.arm.tokens import PUBLIC_ARM_AUDIENCES, TokenSigner

META = "meta"
ADMIN_ASSIGNMENT_NAME = "a0000000-0000-4000-8000-000000000001"


class Emulator:
    """Everything one running local Azure holds; routers reach it through `get_emulator(request)`."""

    def __init__(self, state_dir: Path, knobs: Knobs, base_url: str) -> None:
        self.state_dir = state_dir
        self.base_url = base_url.rstrip("/")
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = StateStore(state_dir / "state.json")
        self.knobs = KnobBoard(knobs)
        self.directory = Directory(self.store)
        self.rbac = Rbac(self.store)
        self.signer = TokenSigner(state_dir / "keys" / "token-signing-key.pem", self.base_url)
        self.providers = ProviderRegistry()
        self._identity = self._load_or_create_identity()
        self.rbac.migrate_legacy_ids()
        self.operations = Operations(self.store, self.knobs, self.subscription_id)
        # In-process services of the providers (e.g. "aks"), built once from the factories providers register.
        self.services: dict[str, Any] = {}
        self._service_factories: dict[str, Callable[[Emulator], Any]] = {}
        self._services_lock = threading.RLock()

    def _load_or_create_identity(self) -> dict[str, Any]:
        identity = self.store.get(META, "identity")
        if identity is not None:
            return identity
        tenant_id = str(uuid.uuid4())
        subscription_id = str(uuid.uuid4())
        admin, secret = self.directory.create_service_principal("fleetflow-local-admin", tenant_id)
        identity = {
            "tenantId": tenant_id,
            "subscriptionId": subscription_id,
            "subscriptionName": "fleetflow local subscription",
            "adminAppId": admin["appId"],
            "adminObjectId": admin["objectId"],
            # Kept so endpoint.json can be rewritten on every start; state.json is 0600 like endpoint.json.
            "adminSecret": secret,
        }
        with self.store.transaction():
            self.store.put(META, "identity", identity)
            self.rbac.assign(subscription_id_path(subscription_id), ADMIN_ASSIGNMENT_NAME,
                             f"/providers/Microsoft.Authorization/roleDefinitions/{OWNER}", admin["objectId"])
        return identity

    @property
    def tenant_id(self) -> str:
        """The subscription's home tenant."""
        return str(self._identity["tenantId"])

    @property
    def subscription_id(self) -> str:
        """The one subscription this emulator serves."""
        return str(self._identity["subscriptionId"])

    @property
    def subscription_name(self) -> str:
        """The subscription's display name."""
        return str(self._identity.get("subscriptionName") or "fleetflow local subscription")

    @property
    def admin_app_id(self) -> str:
        """Client id of the built-in admin (Owner on the subscription)."""
        return str(self._identity["adminAppId"])

    @property
    def admin_object_id(self) -> str:
        """Object id of the built-in admin."""
        return str(self._identity["adminObjectId"])

    @property
    def admin_secret(self) -> str:
        """Client secret of the built-in admin."""
        return str(self._identity["adminSecret"])

    @property
    def subscription_path(self) -> str:
        """`/subscriptions/{id}`."""
        return subscription_id_path(self.subscription_id)

    def group_id(self, group: str) -> str:
        """Id of a resource group of this subscription."""
        return group_id(self.subscription_id, group)

    @property
    def accepted_audiences(self) -> frozenset[str]:
        """Token audiences Resource Manager accepts."""
        return PUBLIC_ARM_AUDIENCES | {self.base_url, self.base_url + "/"}

    def offer_service(self, name: str, factory: Callable[[Emulator], Any]) -> None:
        """Register the factory of a provider's in-process service; a name offered twice is refused."""
        with self._services_lock:
            if name in self._service_factories and self._service_factories[name] is not factory:
                raise ValueError(f"service {name!r} is already offered by another provider")
            self._service_factories[name] = factory

    def service(self, name: str) -> Any:
        """A provider's in-process service, built on first use (typed accessors live with each provider,
        e.g. `localazure.providers.aks.aks_of`)."""
        with self._services_lock:
            if name not in self.services:
                factory = self._service_factories.get(name)
                if factory is None:
                    raise LookupError(f"no provider offers the service {name!r}; is it in the composition root?")
                self.services[name] = factory(self)
            return self.services[name]


def get_emulator(request: Request) -> Emulator:
    """FastAPI dependency: the emulator serving this request."""
    emulator: Emulator = request.app.state.emulator
    return emulator
