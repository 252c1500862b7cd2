"""Azure Service Operator v2 for local clusters: an ASO-compatible chart (`chart/`) and a controller that
reconciles ASO objects on the clusters' real apiservers into local Azure over HTTPS.

`provider` plugs the controller into local Azure's start and stop (it serves no Resource Manager routes).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter

from localazure.arm.providers import ResourceProvider
from localazure.providers.aks import aks_of

if TYPE_CHECKING:
    from localazure.arm.context import Emulator

log = logging.getLogger(__name__)

CHART_DIR = Path(__file__).parent / "chart"
SERVICE_KEY = "aso"


def _kubeconfig_reader(emulator: Emulator, cluster_id: str) -> Callable[[], str]:
    return lambda: aks_of(emulator).kubeconfig(cluster_id)


def _clusters(emulator: Emulator) -> list[tuple[str, Callable[[], str]]]:
    out: list[tuple[str, Callable[[], str]]] = []
    aks = aks_of(emulator)
    for body in aks.list_clusters():
        if body.get("properties", {}).get("provisioningState") in ("Creating", "Deleting"):
            continue
        cluster_id = str(body["id"])
        try:
            if aks.local_cluster(cluster_id) is None:
                continue
        except Exception as exc:  # cluster record changing under us; try again next round
            log.debug("local ASO: skipping %s: %s", cluster_id, exc)
            continue
        out.append((cluster_id.lower(), _kubeconfig_reader(emulator, cluster_id)))
    return out


def _on_start(emulator: Emulator) -> None:
    if os.environ.get("FLEETFLOW_LOCAL_ASO", "on").lower() in ("0", "off", "false"):
        log.warning("local ASO controller disabled (FLEETFLOW_LOCAL_ASO=off)")
        return
    from localazure.aso.controller import AsoService

    poll = float(os.environ.get("FLEETFLOW_LOCAL_ASO_POLL", "1.0"))
    service = AsoService(lambda: _clusters(emulator), str(emulator.state_dir / "tls" / "ca.pem"), poll=poll)
    emulator.services[SERVICE_KEY] = service
    service.start()


def _on_stop(emulator: Emulator) -> None:
    service = emulator.services.pop(SERVICE_KEY, None)
    if service is not None:
        service.stop()


provider = ResourceProvider(namespace="LocalAzure.ServiceOperator", api_versions=frozenset(),
                            router=APIRouter(), on_start=_on_start, on_stop=_on_stop)
