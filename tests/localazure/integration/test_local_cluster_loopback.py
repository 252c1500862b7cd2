"""A local cluster never opens a connection beyond loopback, even with a webhook-laden chart installed.

The real cert-manager chart (from the chart mirror) brings a validating and a mutating webhook with
failurePolicy Fail. On a cluster that called webhooks, creating an Issuer would dial the webhook
Service's ClusterIP (10.0.x.x) and fail; here it is accepted at once, and a sampler reading the cluster
processes' sockets under /proc during the whole test sees no peer outside 127.0.0.0/8 and ::1.
"""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from localazure.kube import LocalCluster, NodePool, available_versions
from localazure.kube.loopback import SocketPeer, non_loopback_peers
from localazure.kube.tools import helm_binary

pytestmark = pytest.mark.cluster

if not available_versions():
    pytest.skip("Kubernetes binaries are not built; run `make tools`", allow_module_level=True)

# Any dial to a non-loopback IPv4/IPv6 literal as Go's net package logs it ("dial tcp 10.0.12.3:443").
_FOREIGN_DIAL = re.compile(r"dial tcp (?!127\.|\[::1\])[\d.\[\]a-f:]+:\d+")


class SocketSampler:
    """Reads the sockets of a set of processes every few milliseconds and keeps every foreign peer seen."""

    def __init__(self, pids: list[int], period: float = 0.02) -> None:
        self.pids = pids
        self.period = period
        self.seen: set[SocketPeer] = set()
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.seen.update(non_loopback_peers(self.pids))
            self.samples += 1
            self._stop.wait(self.period)

    def __enter__(self) -> SocketSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One local cluster with two nodes, deleted after the module."""
    home = tmp_path_factory.mktemp("loopback") / "cluster"
    created = LocalCluster.create("loopback", available_versions()[0], [NodePool("nodepool1", 2)], "eastus", home)
    try:
        yield created
    finally:
        created.delete()


@pytest.fixture(scope="module")
def kubeconfig_path(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cluster's admin kubeconfig in a 0600 file (helm needs a file)."""
    path = tmp_path_factory.mktemp("kubeconfig") / "config"
    path.write_text(cluster.kubeconfig())
    path.chmod(0o600)
    return path


def _helm(kubeconfig: Path, *args: str) -> str:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(kubeconfig.parent), "KUBECONFIG": str(kubeconfig),
           "HELM_CACHE_HOME": str(kubeconfig.parent / "cache"), "HELM_CONFIG_HOME": str(kubeconfig.parent / "cfg"),
           "HELM_DATA_HOME": str(kubeconfig.parent / "data")}
    result = subprocess.run([str(helm_binary()), *args], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"helm {' '.join(args)} failed: {result.stderr}"
    return result.stdout


def _cert_manager_archive(chart_mirror: Path) -> Path:
    index = yaml.safe_load((chart_mirror / "index.yaml").read_text())
    entry = index["entries"]["cert-manager"][0]
    return chart_mirror / entry["urls"][0]


def _custom(cluster: LocalCluster) -> Any:
    return k8s.CustomObjectsApi(cluster.api_client())


def _issuer() -> dict[str, Any]:
    return {"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
            "metadata": {"name": "selfsigned", "namespace": "default"}, "spec": {"selfSigned": {}}}


def _certificate() -> dict[str, Any]:
    return {
        "apiVersion": "cert-manager.io/v1",
        "kind": "Certificate",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"secretName": "demo-tls", "dnsNames": ["demo.example.com"],
                 "issuerRef": {"name": "selfsigned", "kind": "Issuer"}},
    }


def test_cert_manager_objects_are_accepted_without_any_connection_beyond_loopback(
    cluster: LocalCluster, kubeconfig_path: Path, chart_mirror: Path
) -> None:
    pids = list(cluster.pids.values())
    log_dir = cluster.home / "logs"
    with SocketSampler(pids) as sampler:
        _helm(kubeconfig_path, "install", "cert-manager", str(_cert_manager_archive(chart_mirror)),
              "--namespace", "cert-manager", "--create-namespace", "--set", "crds.enabled=true",
              "--wait", "--timeout", "180s")
        webhooks = k8s.AdmissionregistrationV1Api(cluster.api_client())
        validating = webhooks.list_validating_webhook_configuration().items
        assert any(hook.webhooks[0].failure_policy == "Fail" for hook in validating), "chart webhook missing"

        started = time.monotonic()
        _custom(cluster).create_namespaced_custom_object("cert-manager.io", "v1", "default", "issuers", _issuer())
        _custom(cluster).create_namespaced_custom_object(
            "cert-manager.io", "v1", "default", "certificates", _certificate())
        elapsed = time.monotonic() - started
        stored = _custom(cluster).get_namespaced_custom_object(
            "cert-manager.io", "v1", "default", "certificates", "demo")
        time.sleep(1.0)  # let any late dial (a controller's retry) show up in the sampler
    assert stored["spec"]["issuerRef"]["name"] == "selfsigned"
    # A webhook call to a ClusterIP that is not on this machine would hang for its 10 s timeout.
    assert elapsed < 5.0, f"creating the two objects took {elapsed:.1f}s: a webhook was called"
    assert sampler.samples > 20, "the socket sampler did not run"
    assert not sampler.seen, "connections beyond loopback: " + "; ".join(map(str, sorted(sampler.seen, key=str)))
    for log in log_dir.glob("*.log"):
        dials = _FOREIGN_DIAL.findall(log.read_text(errors="replace"))
        assert not dials, f"{log.name} logged dials beyond loopback: {dials[:5]}"


def test_crd_with_a_conversion_webhook_is_refused(cluster: LocalCluster) -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}},
            ],
            "conversion": {"strategy": "Webhook", "webhook": {
                "conversionReviewVersions": ["v1"],
                "clientConfig": {"service": {"name": "widget-webhook", "namespace": "default", "path": "/convert"}},
            }},
        },
    }
    extensions = k8s.ApiextensionsV1Api(cluster.api_client())
    with pytest.raises(ApiException) as refused:
        extensions.create_custom_resource_definition(crd)
    assert refused.value.status in (403, 422)
    assert "conversion webhook" in str(refused.value.body)
    crd["spec"]["conversion"] = {"strategy": "None"}
    extensions.create_custom_resource_definition(crd)
    extensions.delete_custom_resource_definition("widgets.example.com")


def test_apiservice_backed_by_a_service_is_refused(cluster: LocalCluster) -> None:
    service = {
        "apiVersion": "apiregistration.k8s.io/v1",
        "kind": "APIService",
        "metadata": {"name": "v1beta1.metrics.example.com"},
        "spec": {"group": "metrics.example.com", "version": "v1beta1", "groupPriorityMinimum": 100,
                 "versionPriority": 100, "insecureSkipTLSVerify": True,
                 "service": {"name": "metrics", "namespace": "kube-system"}},
    }
    with pytest.raises(ApiException) as refused:
        k8s.ApiregistrationV1Api(cluster.api_client()).create_api_service(service)
    assert refused.value.status in (403, 422)
    assert "APIServices backed by a Service" in str(refused.value.body)


def test_service_cluster_ips_are_loopback_addresses(cluster: LocalCluster) -> None:
    core = k8s.CoreV1Api(cluster.api_client())
    created = core.create_namespaced_service("default", {"metadata": {"name": "probe"},
                                                         "spec": {"ports": [{"port": 443}]}})
    try:
        for service in (core.read_namespaced_service("kubernetes", "default"), created):
            assert ipaddress.ip_address(service.spec.cluster_ip).is_loopback, service.spec.cluster_ip
    finally:
        core.delete_namespaced_service("probe", "default")
