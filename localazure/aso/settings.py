"""Operator settings and credentials, read from Kubernetes Secrets the way ASO reads them."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

SETTINGS_SECRET = "aso-controller-settings"
NAMESPACE_CREDENTIAL_SECRET = "aso-credential"
CREDENTIAL_FROM = "serviceoperator.azure.com/credential-from"

PUBLIC_AUTHORITY = "https://login.microsoftonline.com/"
PUBLIC_RESOURCE_MANAGER = "https://management.azure.com/"
PUBLIC_AUDIENCE = "https://management.core.windows.net/"
DEFAULT_SYNC_PERIOD = 15 * 60.0  # ASO's default AZURE_SYNC_PERIOD

# Keys of aso-controller-settings (ASO's "Configuring ASO" page).
KEYS = (
    "AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "USE_WORKLOAD_IDENTITY_AUTH",
    "AZURE_SYNC_PERIOD", "AZURE_AUTHORITY_HOST", "AZURE_RESOURCE_MANAGER_ENDPOINT",
    "AZURE_RESOURCE_MANAGER_AUDIENCE", "AZURE_TARGET_NAMESPACES", "AZURE_OPERATOR_MODE",
    "AZURE_USER_AGENT_SUFFIX", "MAX_CONCURRENT_RECONCILES", "RATE_LIMIT_MODE", "RATE_LIMIT_QPS",
    "RATE_LIMIT_BUCKET_SIZE",
)


class SettingsError(ValueError):
    """Settings or a credential cannot be used; `reason` is the condition reason to report."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode_secret(secret: Any) -> dict[str, str]:
    """A V1Secret's (or a dict's) data, base64-decoded; stringData wins like the apiserver does."""
    data = getattr(secret, "data", None) if not isinstance(secret, dict) else secret.get("data")
    string_data = getattr(secret, "string_data", None) if not isinstance(secret, dict) else secret.get("stringData")
    out = {k: base64.b64decode(v).decode() for k, v in (data or {}).items()}
    out.update(string_data or {})
    return out


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")


def parse_duration(text: str) -> float:
    """Go's time.ParseDuration for the forms ASO documents ("1h", "15m", "60s", "1m30s"); seconds."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    total, pos = 0.0, 0
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * scale[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {text!r}")
    return total


def is_loopback_url(url: str) -> bool:
    """Whether an https URL points at 127.0.0.0/8 or localhost (local mode never dials anything else)."""
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback and ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


@dataclass(frozen=True)
class OperatorSettings:
    """The global settings of one cluster's operator (from aso-controller-settings)."""

    authority_host: str
    resource_manager_endpoint: str
    audience: str
    sync_period: float
    target_namespaces: tuple[str, ...]
    global_credential: Credential | None

    @classmethod
    def from_secret(cls, values: dict[str, str]) -> OperatorSettings:
        """Parse aso-controller-settings; raises SettingsError for an unusable value."""
        period_text = values.get("AZURE_SYNC_PERIOD", "").strip()
        try:
            sync_period = parse_duration(period_text) if period_text else DEFAULT_SYNC_PERIOD
        except ValueError as exc:
            raise SettingsError("InvalidSettings", f"AZURE_SYNC_PERIOD: {exc}") from exc
        namespaces = tuple(n.strip() for n in values.get("AZURE_TARGET_NAMESPACES", "").split(",") if n.strip())
        credential = None
        if values.get("AZURE_CLIENT_ID") or values.get("AZURE_SUBSCRIPTION_ID"):
            credential = Credential.from_values(values, "global credential (aso-controller-settings)")
        return cls(
            authority_host=(values.get("AZURE_AUTHORITY_HOST") or PUBLIC_AUTHORITY).rstrip("/"),
            resource_manager_endpoint=(values.get("AZURE_RESOURCE_MANAGER_ENDPOINT") or PUBLIC_RESOURCE_MANAGER),
            audience=values.get("AZURE_RESOURCE_MANAGER_AUDIENCE") or PUBLIC_AUDIENCE,
            sync_period=sync_period,
            target_namespaces=namespaces,
            global_credential=credential,
        )

    def check_loopback(self) -> None:
        """Local mode only talks to local Azure: the endpoints must be loopback addresses."""
        for name, url in (("AZURE_RESOURCE_MANAGER_ENDPOINT", self.resource_manager_endpoint),
                          ("AZURE_AUTHORITY_HOST", self.authority_host)):
            if not is_loopback_url(url):
                raise SettingsError(
                    "InvalidSettings",
                    f"{name} is {url!r}: the local Azure Service Operator only talks to local Azure on a loopback "
                    f"address; set {name} in {SETTINGS_SECRET} to local Azure's endpoint")

    def watches(self, namespace: str) -> bool:
        """Whether the operator reconciles resources of this namespace."""
        return not self.target_namespaces or namespace in self.target_namespaces


@dataclass(frozen=True)
class Credential:
    """A service-principal credential (client secret)."""

    subscription_id: str
    tenant_id: str
    client_id: str
    client_secret: str
    source: str

    def __repr__(self) -> str:  # never print the secret
        return f"Credential(client_id={self.client_id!r}, tenant_id={self.tenant_id!r}, source={self.source!r})"

    @property
    def cache_key(self) -> str:
        """Identifies the credential (the secret hashed) for the token cache."""
        digest = hashlib.sha256(self.client_secret.encode()).hexdigest()[:16]
        return f"{self.tenant_id}/{self.client_id}/{digest}"

    @classmethod
    def from_values(cls, values: dict[str, str], source: str) -> Credential:
        """A credential from a secret's keys; SettingsError naming what is missing."""
        missing = [k for k in ("AZURE_SUBSCRIPTION_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_ID") if not values.get(k)]
        if values.get("USE_WORKLOAD_IDENTITY_AUTH", "").lower() == "true" or values.get("AZURE_CLIENT_CERTIFICATE"):
            raise SettingsError("InvalidCredential", f"{source}: only client-secret credentials are served by "
                                "local Azure (workload identity and certificates are not)")
        if not values.get("AZURE_CLIENT_SECRET"):
            missing.append("AZURE_CLIENT_SECRET")
        if missing:
            raise SettingsError("InvalidCredential", f"{source} is missing {', '.join(missing)}")
        return cls(values["AZURE_SUBSCRIPTION_ID"].strip(), values["AZURE_TENANT_ID"].strip(),
                   values["AZURE_CLIENT_ID"].strip(), values["AZURE_CLIENT_SECRET"], source)
