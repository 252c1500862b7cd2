"""`LocalAzure`: start, reach and stop the emulator from Python (tests, the `fleetflow local` commands)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENDPOINT_FILE = "endpoint.json"
EXIT_BUSY = 3  # `python -m localazure serve` exit status: the state directory is served already
LOG_FILE = "emulator.log"


def default_state_dir() -> Path:
    """`${FLEETFLOW_HOME:-~/.fleetflow}/local`."""
    return Path(os.environ.get("FLEETFLOW_HOME") or "~/.fleetflow").expanduser() / "local"


class LocalAzureError(RuntimeError):
    """The emulator could not be started, reached or stopped."""


@dataclass(frozen=True)
class Endpoint:
    """What endpoint.json says about a running emulator."""

    resource_manager_endpoint: str
    authority_host: str
    tenant_id: str
    subscription_id: str
    client_id: str
    client_secret: str
    object_id: str
    ca_bundle: str
    pid: int
    port: int
    clusters: str = "local"
    state_dir: str = ""

    def __repr__(self) -> str:  # keep the secret out of logs and assertion messages
        return (f"Endpoint(resource_manager_endpoint={self.resource_manager_endpoint!r}, tenant_id={self.tenant_id!r}, "
                f"subscription_id={self.subscription_id!r}, client_id={self.client_id!r}, pid={self.pid})")

    @classmethod
    def read(cls, path: Path) -> Endpoint:
        """Parse an endpoint.json."""
        data = json.loads(path.read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def credential(self, client_id: str | None = None, client_secret: str | None = None,
                   tenant_id: str | None = None) -> Any:
        """An azure-identity ClientSecretCredential for the admin (or the given principal) against this emulator."""
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(
            tenant_id or self.tenant_id, client_id or self.client_id, client_secret or self.client_secret,
            authority=self.authority_host, connection_verify=self.ca_bundle, disable_instance_discovery=True,
        )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _knob_flags(knobs: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for name, value in knobs.items():
        if value is None:
            continue
        flag = "--" + name.replace("_", "-")
        if name == "latency" and isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        if name == "fail" and not isinstance(value, str):
            for rule in value:
                flags += [flag, str(rule)]
            continue
        flags += [flag, str(value)]
    return flags


class LocalAzure:
    """Handle on the emulator of one state directory (running or not)."""

    def __init__(self, state_dir: Path | str | None = None) -> None:
        self.state_dir = Path(state_dir).expanduser().resolve() if state_dir else default_state_dir()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_path(self) -> Path:
        """Where the running emulator publishes its endpoint."""
        return self.state_dir / ENDPOINT_FILE

    @property
    def log_path(self) -> Path:
        """The emulator's log file (stdout and stderr)."""
        return self.state_dir / LOG_FILE

    @property
    def endpoint(self) -> Endpoint:
        """The running emulator's endpoint (LocalAzureError when it is not running)."""
        try:
            return Endpoint.read(self.endpoint_path)
        except FileNotFoundError as exc:
            raise LocalAzureError(f"local Azure is not running for {self.state_dir}") from exc

    @classmethod
    def start(cls, state_dir: Path | str | None = None, port: int | None = None, timeout: float = 60.0,
              **knobs: Any) -> LocalAzure:
        """Start `python -m localazure serve` detached (own session) unless already running; wait until it answers.

        Knobs are the serve flags in Python form: latency={"aks.create": 5} or "aks.create=5", time_scale=0.01,
        throttle_rate, error_rate, retry_after, fail=["aks.create:eastus"], clusters="arm-only", ...
        """
        local = cls(state_dir)
        if local.is_running():
            return local
        local.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        local.endpoint_path.unlink(missing_ok=True)
        argv = [sys.executable, "-m", "localazure", "serve", "--state-dir", str(local.state_dir)]
        if port:
            argv += ["--port", str(port)]
        argv += _knob_flags(knobs)
        with open(local.log_path, "ab") as log:
            local._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                              start_new_session=True, close_fds=True)
        local._wait_ready(timeout)
        return local

    def _wait_ready(self, timeout: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code == EXIT_BUSY and self.is_running():
                return  # a concurrent start won the state directory; use that emulator
            if code is not None and code != EXIT_BUSY:
                raise LocalAzureError(f"local Azure exited with status {code} while starting; log {self.log_path}:\n"
                                      + self._log_tail())
            if self.endpoint_path.exists():
                with contextlib.suppress(LocalAzureError, ValueError, OSError):
                    if self.endpoint.pid == self._process.pid and self._healthy():
                        return
            time.sleep(0.05)
        raise LocalAzureError(f"local Azure did not answer within {timeout:.0f}s; log {self.log_path}:\n"
                              + self._log_tail())

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def _ssl_context(self, endpoint: Endpoint) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=endpoint.ca_bundle)

    def _healthy(self) -> bool:
        try:
            self._request("GET", "/healthz", authenticated=False, timeout=2)
        except (LocalAzureError, OSError):
            return False
        return True

    def is_running(self) -> bool:
        """Whether an emulator for this state directory is up and answering."""
        try:
            endpoint = self.endpoint
        except (LocalAzureError, ValueError, OSError):
            return False
        return _pid_alive(endpoint.pid) and self._healthy()

    def stop(self, timeout: float = 120.0) -> bool:
        """Stop the emulator (SIGTERM; it stops its local clusters first). Returns whether one was running."""
        try:
            pid = self.endpoint.pid
        except (LocalAzureError, ValueError, OSError):
            starting = self._starting_pid()  # still starting up: endpoint.json is written once it answers
            if starting is None:
                return False
            pid = starting
        if not _pid_alive(pid):
            self.endpoint_path.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.pid == pid:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=0.05)
            if not _pid_alive(pid):
                self.endpoint_path.unlink(missing_ok=True)
                return True
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        if self._process is not None and self._process.pid == pid:
            self._process.wait(timeout=10)
        self.endpoint_path.unlink(missing_ok=True)
        return True

    def _starting_pid(self) -> int | None:
        """The pid in serve.pid when that process is the emulator serving this state directory."""
        try:
            pid = int((self.state_dir / "serve.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        serving = b"serve" in cmdline and str(self.state_dir.resolve()).encode() in {
            str(Path(part.decode(errors="replace")).expanduser().resolve()).encode() for part in cmdline if part}
        return pid if serving else None

    def kill(self) -> None:
        """SIGKILL the emulator (to test recovery from a crash)."""
        pid = self.endpoint.pid
        os.kill(pid, signal.SIGKILL)
        if self._process is not None and self._process.pid == pid:
            self._process.wait(timeout=10)
        else:
            while _pid_alive(pid):
                time.sleep(0.05)

    # ---- talking to it ----------------------------------------------------------------------------

    def admin_token(self) -> str:
        """A Resource Manager access token for the built-in admin."""
        endpoint = self.endpoint
        form = urllib.parse.urlencode({
            "grant_type": "client_credentials", "client_id": endpoint.client_id,
            "client_secret": endpoint.client_secret, "scope": "https://management.azure.com/.default",
        }).encode()
        answer = self._request("POST", f"/{endpoint.tenant_id}/oauth2/v2.0/token", raw_body=form,
                               authenticated=False, content_type="application/x-www-form-urlencoded")
        return str(answer["access_token"])

    def _request(self, method: str, path: str, body: Any = None, *, authenticated: bool = True,
                 raw_body: bytes | None = None, content_type: str = "application/json", timeout: float = 30) -> Any:
        endpoint = self.endpoint
        data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(endpoint.authority_host + path, data=data, method=method)  # noqa: S310
        request.add_header("Content-Type", content_type)
        if authenticated:
            request.add_header("Authorization", "Bearer " + self.admin_token())
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._ssl_context(endpoint)) as response:  # noqa: S310
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise LocalAzureError(f"{method} {path.split('?')[0]} answered {exc.code}: {detail}") from exc
        except urllib.error.URLError as exc:
            raise LocalAzureError(f"local Azure at {endpoint.authority_host} is unreachable: {exc.reason}") from exc
        return json.loads(payload) if payload else None

    def arm(self, method: str, path: str, body: Any = None) -> Any:
        """An authenticated admin request to any emulator path (Resource Manager or /_local)."""
        return self._request(method, path, body)

    def create_service_principal(self, name: str, role: str | None = None, scopes: list[str] | None = None,
                                 tenant_id: str | None = None) -> dict[str, Any]:
        """Like `az ad sp create-for-rbac`: {appId, displayName, password, tenant} plus objectId.

        Without `role` the principal has no role assignment. `tenant_id` puts it in another tenant.
        """
        body: dict[str, Any] = {"displayName": name}
        if role:
            body["role"] = role
            body["scopes"] = scopes or [f"/subscriptions/{self.endpoint.subscription_id}"]
        if tenant_id:
            body["tenantId"] = tenant_id
        result: dict[str, Any] = self._request("POST", "/_local/principals", body)
        return result

    def operations(self, scope: str) -> list[dict[str, Any]]:
        """The long-running operations the emulator started on resources at or below `scope`, oldest first."""
        from urllib.parse import quote

        result: dict[str, Any] = self._request("GET", f"/_local/operations?scope={quote(scope, safe='')}")
        return list(result["value"])

    def knobs(self) -> dict[str, Any]:
        """The running emulator's knobs."""
        result: dict[str, Any] = self._request("GET", "/_local/knobs")
        return result

    def set_knobs(self, **changes: Any) -> dict[str, Any]:
        """Change knobs at run time (same names as `start`); returns all knobs."""
        result: dict[str, Any] = self._request("POST", "/_local/knobs", changes)
        return result

    def status(self) -> dict[str, Any]:
        """Running or not, endpoint, cluster mode, and counts of groups and clusters."""
        if not self.is_running():
            return {"running": False, "state_dir": str(self.state_dir)}
        endpoint = self.endpoint
        sub = f"/subscriptions/{endpoint.subscription_id}"
        groups = self.arm("GET", f"{sub}/resourcegroups?api-version=2025-04-01")["value"]
        clusters = self.arm("GET", f"{sub}/providers/Microsoft.ContainerService/managedClusters"
                                   "?api-version=2026-08-01")["value"]
        return {
            "running": True, "state_dir": str(self.state_dir), "pid": endpoint.pid,
            "resource_manager_endpoint": endpoint.resource_manager_endpoint, "tenant_id": endpoint.tenant_id,
            "subscription_id": endpoint.subscription_id, "clusters_mode": self.knobs()["clusters"],
            "resource_groups": [g["name"] for g in groups],
            "managed_clusters": {c["name"]: c["properties"]["provisioningState"] for c in clusters},
        }
