"""How a local cluster's processes are launched: the components, their command lines, memory limits and
the configuration files (component kubeconfigs, kwok stages) they read from the cluster home."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from localazure.kube.errors import LocalClusterError
from localazure.kube.loopback import DISABLED_ADMISSION_PLUGINS
from localazure.kube.manifests import KWOK_NODE_ANNOTATION
from localazure.kube.pki import ADMIN, CONTROLLER_MANAGER, KWOK, SCHEDULER, ClientIdentity, ClusterPki
from localazure.kube.state import Ports
from localazure.kube.tools import Toolchain

# AKS's default is 10.0.0.0/16 (what Resource Manager reports); a local cluster's Services get loopback
# ClusterIPs instead, so that anything dialling a Service (a webhook, an aggregated API) stays on this machine.
SERVICE_CIDR = "127.1.0.0/16"
POD_CIDR = "10.244.0.0/16"  # AKS kubenet default

# The process running apiserver, controller-manager and scheduler together (`kube control-plane`).
COMBINED_CONTROL_PLANE = "control-plane"
# The control-plane components as separate processes (binaries without the combined mode), in start order.
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# Processes of a cluster whose binary runs separate components, in start order; stop runs in reverse.
COMPONENTS = ("etcd", *CONTROL_PLANE, "kwok")
# Every process name either layout records, in start order; stop runs in reverse.
PROCESS_NAMES = ("etcd", COMBINED_CONTROL_PLANE, *CONTROL_PLANE, "kwok")

# Controllers a cluster without kubelets, cloud provider or CSI does not need. node-lifecycle would taint
# nodes whose kubelet heartbeat it misses, and kwok's fast stages send none. Every name must exist in every
# built minor: the controller-manager rejects unknown ones (an integration test checks).
DISABLED_CONTROLLERS = (
    "node-lifecycle-controller",
    "node-ipam-controller",
    "persistentvolume-attach-detach-controller",
    "persistentvolume-expander-controller",
    "ephemeral-volume-controller",
    "certificatesigningrequest-signing-controller",
    "certificatesigningrequest-approving-controller",
    "certificatesigningrequest-cleaner-controller",
    "ttl-controller",
    "taint-eviction-controller",
    # Controllers that watch many resource types (memory) for features local clusters do not offer:
    # quota status, autoscaling without metrics, storage migration, dynamic resource allocation.
    "resourcequota-controller",
    "horizontal-pod-autoscaler-controller",
    "storage-version-migrator-controller",
    "storageversion-garbage-collector-controller",
    "resourceclaim-controller",
    "device-taint-eviction-controller",
    "validatingadmissionpolicy-status-controller",
    "kube-apiserver-serving-clustertrustbundle-publisher-controller",
    "legacy-serviceaccount-token-cleaner-controller",
    "endpointslice-mirroring-controller",
)

# Soft memory limits per component (Go runtime GOMEMLIMIT) to keep a cluster's RSS small; GOGC makes the
# collector run sooner than the default.
MEMORY_LIMITS_MIB = {
    "etcd": 64,
    "kube-apiserver": 128,
    "kube-controller-manager": 64,
    "kube-scheduler": 40,
    "kwok": 40,
}
MEMORY_LIMITS_MIB[COMBINED_CONTROL_PLANE] = sum(MEMORY_LIMITS_MIB[name] for name in CONTROL_PLANE)
GOGC = "50"

# Ports each component listens on (attributes of Ports), re-allocated when taken while the cluster was stopped.
PORTS_OF = {
    "etcd": ("etcd_client", "etcd_peer"),
    "kube-apiserver": ("apiserver",),
    COMBINED_CONTROL_PLANE: ("apiserver",),
    "kwok": ("kwok",),
}


def control_plane(toolchain: Toolchain) -> tuple[str, ...]:
    """The control-plane processes the binary runs: one combined process, or the three components."""
    return (COMBINED_CONTROL_PLANE,) if toolchain.has_combined_control_plane else CONTROL_PLANE


def environment(component: str) -> dict[str, str]:
    """Go runtime settings of a component (soft memory limit, GOGC)."""
    return {"GOGC": GOGC, "GOMEMLIMIT": f"{MEMORY_LIMITS_MIB[component]}MiB"}


def b64(path: Path) -> str:
    """A file's bytes, base64 (kubeconfig *-data fields)."""
    return base64.b64encode(path.read_bytes()).decode()


def argv(component: str, toolchain: Toolchain, *, name: str, home: Path, pki: ClusterPki, ports: Ports) -> list[str]:
    """Command line of one component of the cluster `name` living in `home`."""
    if component == "etcd":
        peer = f"http://127.0.0.1:{ports.etcd_peer}"
        client = f"http://127.0.0.1:{ports.etcd_client}"
        return [
            str(toolchain.etcd),
            f"--name={name}",
            f"--data-dir={home / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster={name}={peer}",
            "--initial-cluster-state=new",
            "--quota-backend-bytes=268435456",  # 256 MiB: plenty for a test cluster, small mmap
            "--snapshot-count=5000",
            "--auto-compaction-mode=periodic",
            "--auto-compaction-retention=10m",
            # Graceful stops flush; only a host crash could lose the last writes of a local cluster.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
    kube = str(toolchain.kube)
    if component == COMBINED_CONTROL_PLANE:
        prefixes = {
            "kube-apiserver": "--apiserver-arg=",
            "kube-controller-manager": "--controller-manager-arg=",
            "kube-scheduler": "--scheduler-arg=",
        }
        command = [kube, COMBINED_CONTROL_PLANE]
        for component_name, prefix in prefixes.items():
            flags = argv(component_name, toolchain, name=name, home=home, pki=pki, ports=ports)[2:]
            command += [prefix + flag for flag in flags]
        return command
    if component == "kube-apiserver":
        return [
            kube, "kube-apiserver",
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports.apiserver}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-key-file={pki.service_account_public_key}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=RBAC",
            "--allow-privileged=true",
            # Webhooks would dial Service IPs beyond loopback; see localazure/kube/loopback.py.
            "--disable-admission-plugins=" + ",".join(DISABLED_ADMISSION_PLUGINS),
            "--profiling=false",
            "--enable-priority-and-fairness=false",
            "--endpoint-reconciler-type=none",
            "--event-ttl=30m",
            "--watch-cache=false",
            "--v=1",
        ]
    if component == "kube-controller-manager":
        return [
            kube, "kube-controller-manager",
            f"--kubeconfig={component_kubeconfig(home, CONTROLLER_MANAGER)}",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*," + ",".join(f"-{name}" for name in DISABLED_CONTROLLERS),
            "--leader-elect=false",
            "--secure-port=0",
            "--profiling=false",
            "--kube-api-qps=100",
            "--kube-api-burst=200",
            "--v=1",
        ]
    if component == "kube-scheduler":
        return [
            kube, "kube-scheduler",
            f"--kubeconfig={component_kubeconfig(home, SCHEDULER)}",
            "--leader-elect=false",
            "--secure-port=0",
            "--profiling=false",
            "--v=1",
        ]
    if component == "kwok":
        annotation = "=".join(KWOK_NODE_ANNOTATION)
        return [
            str(toolchain.kwok),
            f"--kubeconfig={component_kubeconfig(home, KWOK)}",
            f"--config={home / 'kwok.yaml'}",
            f"--manage-nodes-with-annotation-selector={annotation}",
            f"--server-address=127.0.0.1:{ports.kwok}",
            f"--cidr={POD_CIDR}",
        ]
    raise ValueError(f"unknown component {component}")


def kubeconfig_dict(name: str, server: str, pki: ClusterPki, identity: ClientIdentity, embed: bool) -> dict[str, Any]:
    """Kubeconfig of `identity`: certificates embedded (handed out) or referenced by path (component files)."""
    user: dict[str, str]
    cluster: dict[str, str] = {"server": server}
    if embed:
        cluster["certificate-authority-data"] = b64(pki.ca_cert)
        user = {
            "client-certificate-data": b64(pki.client_cert(identity)),
            "client-key-data": b64(pki.client_key(identity)),
        }
    else:
        cluster["certificate-authority"] = str(pki.ca_cert)
        user = {
            "client-certificate": str(pki.client_cert(identity)),
            "client-key": str(pki.client_key(identity)),
        }
    context = f"{name}-{identity.file_stem}" if identity is not ADMIN else f"{name}-admin"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": cluster}],
        "users": [{"name": context, "user": user}],
        "contexts": [{"name": context, "context": {"cluster": name, "user": context}}],
        "current-context": context,
        "preferences": {},
    }

def component_kubeconfig(home: Path, identity: ClientIdentity) -> Path:
    """Where a component's kubeconfig lives in the cluster home."""
    return home / f"{identity.file_stem}.kubeconfig"

def write_component_configs(home: Path, name: str, server: str, pki: ClusterPki, version: str) -> None:
    """The kubeconfigs of controller-manager, scheduler and kwok, and kwok's configuration."""
    # Kubeconfigs reference the key files by path so no key material is copied around.
    for identity in (CONTROLLER_MANAGER, SCHEDULER, KWOK):
        path = component_kubeconfig(home, identity)
        path.write_text(yaml.safe_dump(kubeconfig_dict(name, server, pki, identity, embed=False), sort_keys=False))
        path.chmod(0o600)
    write_kwok_config(home, version)

def write_kwok_config(home: Path, version: str) -> None:
    """kwok's configuration: the node and pod stages built beside its binary."""
    stages_dir = Toolchain.for_version(version).kwok.parent / "stages"
    stage_files = sorted(stages_dir.glob("*.yaml")) if stages_dir.is_dir() else []
    if not stage_files:
        raise LocalClusterError(f"kwok stages are missing in {stages_dir}; run `make tools`")
    # kwok's own "fast" node and pod stages (copied beside the binary by hack/kube/build.sh).
    documents = [path.read_text() for path in stage_files]
    (home / "kwok.yaml").write_text("\n---\n".join(documents))
