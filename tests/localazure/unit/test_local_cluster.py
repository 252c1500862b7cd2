"""Unit tests of the local-cluster layer that need no Kubernetes binaries."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from localazure.kube import NodePool, UnknownVmSizeError, available_versions, node_resources, nodes, processes, vm_size
from localazure.kube import cluster as cluster_module
from localazure.kube.cluster import LocalCluster
from localazure.kube.pki import ADMIN, ClusterPki
from localazure.kube.state import DEFAULT_NODE_IMAGE_VERSION, ClusterState, PoolState, Ports
from localazure.kube.tools import Toolchain, ToolsMissingError


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tools directory with executable placeholders for two minors, etcd and kwok."""
    root = tmp_path / "tools"
    for directory, binary in [
        ("kube-v1.36.3", "kube"),
        ("kube-v1.37.2", "kube"),
        ("kube-v1.35.4", "kube"),
        ("etcd-v3.6.16", "etcd"),
        ("kwok-v0.8.0", "kwok"),
    ]:
        (root / directory).mkdir(parents=True)
        path = root / directory / binary
        path.write_text("#!/bin/sh\nexit 0\n")
        path.chmod(0o755)
    (root / "kwok-v0.8.0" / "stages").mkdir()
    (root / "kwok-v0.8.0" / "stages" / "node-initialize.yaml").write_text("kind: Stage\n")
    (root / "kube-v1.38.0").mkdir()  # a directory without a binary is not a built version
    monkeypatch.setenv("FLEETFLOW_TOOLS", str(root))
    return root


def _cluster_at(version: str, home: Path) -> LocalCluster:
    state = ClusterState(
        name="c1",
        kubernetes_version=version,
        region="westeurope",
        status="stopped",
        ports=Ports(1, 2, 3, 4),
        pools=[PoolState(NodePool("nodepool1", 2, "Standard_DS2_v2", orchestrator_version=version), "12345678")],
    )
    home.mkdir(parents=True, exist_ok=True)
    cluster = LocalCluster(home, state)
    cluster._save()
    return cluster


def test_vm_sizes_map_to_capacity_and_smaller_allocatable() -> None:
    capacity, allocatable = node_resources("Standard_DS2_v2")
    assert capacity["cpu"] == "2"
    assert capacity["memory"] == f"{7 * 1024 * 1024}Ki"
    assert capacity["pods"] == allocatable["pods"] == "110"
    assert allocatable["cpu"] == "1900m"
    assert int(allocatable["memory"][:-2]) < int(capacity["memory"][:-2])
    assert vm_size("standard_d4s_v3").vcpus == 4  # Azure size names are case-insensitive


def test_unknown_vm_size_is_a_clear_error_listing_known_sizes() -> None:
    with pytest.raises(UnknownVmSizeError, match=r"Standard_Z99.*known sizes: .*Standard_DS2_v2"):
        vm_size("Standard_Z99")
    with pytest.raises(UnknownVmSizeError):
        NodePool("pool1", 1, "Standard_Z99").validate()


@pytest.mark.parametrize("name", ["Pool", "1pool", "averyveryverylongpool", "with-dash", ""])
def test_invalid_node_pool_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid node pool name"):
        NodePool(name).validate()


def test_available_versions_lists_built_control_planes_ascending(fake_tools: Path) -> None:
    assert available_versions() == ["v1.35.4", "v1.36.3", "v1.37.2"]


def test_missing_version_names_what_is_built(fake_tools: Path) -> None:
    with pytest.raises(ToolsMissingError, match=r"v1\.30\.0 is not built.*v1\.35\.4, v1\.36\.3, v1\.37\.2"):
        Toolchain.for_version("v1.30.0")


def test_create_fails_before_touching_disk_when_version_is_not_built(fake_tools: Path, tmp_path: Path) -> None:
    home = tmp_path / "cluster"
    with pytest.raises(ToolsMissingError):
        LocalCluster.create("c1", kubernetes_version="v1.29.0", home=home)
    assert not home.exists()


def test_pki_issues_admin_in_system_masters_and_serving_cert_for_loopback(tmp_path: Path) -> None:
    pki = ClusterPki(tmp_path / "pki")
    pki.generate("c1")
    assert pki.exists()
    admin = x509.load_pem_x509_certificate(pki.client_cert(ADMIN).read_bytes())
    organizations = [a.value for a in admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert organizations == ["system:masters"]
    usages = admin.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usages
    serving = x509.load_pem_x509_certificate(pki.serving_cert.read_bytes())
    sans = serving.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in sans.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "10.0.0.1"]
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert serving.issuer == ca.subject
    for key in (pki.ca_key, pki.serving_key, pki.service_account_key, pki.client_key(ADMIN)):
        assert key.stat().st_mode & 0o077 == 0, f"{key.name} is readable by others"


def test_kubeconfig_embeds_ca_and_admin_client_certificate(tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path)
    cluster._pki.generate("c1")
    config = yaml.safe_load(cluster.kubeconfig())
    entry = config["clusters"][0]["cluster"]
    assert entry["server"] == "https://127.0.0.1:3"
    assert base64.b64decode(entry["certificate-authority-data"]) == cluster._pki.ca_cert.read_bytes()
    user = config["users"][0]["user"]
    assert base64.b64decode(user["client-certificate-data"]) == cluster._pki.client_cert(ADMIN).read_bytes()
    assert config["current-context"] == config["contexts"][0]["name"]


def test_node_manifests_look_like_aks_nodes(tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path)
    pool_state = cluster._state.pools[0]
    first = cluster._new_node_manifest(pool_state)
    second = cluster._new_node_manifest(pool_state)
    assert first["metadata"]["name"] == "aks-nodepool1-12345678-vmss000000"
    assert second["metadata"]["name"] == "aks-nodepool1-12345678-vmss000001"
    assert re.fullmatch(r"aks-[a-z0-9]+-\d{8}-vmss[0-9a-z]{6}", first["metadata"]["name"])
    labels = first["metadata"]["labels"]
    assert labels["kubernetes.azure.com/agentpool"] == "nodepool1"
    assert labels["kubernetes.azure.com/node-image-version"] == DEFAULT_NODE_IMAGE_VERSION
    assert labels["node.kubernetes.io/instance-type"] == "Standard_DS2_v2"
    assert labels["topology.kubernetes.io/region"] == "westeurope"
    assert labels["topology.kubernetes.io/zone"] == "westeurope-1"
    assert labels["kubernetes.io/os"] == "linux"
    assert first["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"
    assert first["status"]["capacity"]["cpu"] == "2"
    assert first["status"]["nodeInfo"]["kubeletVersion"] == "v1.36.3"


def test_state_round_trips_through_the_state_file(tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path)
    cluster._state.processes["etcd"] = processes.ProcessRecord(123, 456)
    cluster._save()
    loaded = ClusterState.from_json(json.loads((tmp_path / "cluster.json").read_text()))
    assert loaded.to_json() == cluster._state.to_json()


def test_upgrade_allows_only_one_minor_up(fake_tools: Path, tmp_path: Path) -> None:
    cluster = _cluster_at("v1.35.4", tmp_path)
    assert cluster.allowed_upgrades() == ["v1.36.3"]
    with pytest.raises(ValueError, match=r"from v1\.35\.4 to v1\.37\.2; allowed: v1\.36\.3"):
        cluster.upgrade_control_plane("v1.37.2")


def test_downgrade_is_refused_naming_current_requested_and_allowed(fake_tools: Path, tmp_path: Path) -> None:
    cluster = _cluster_at("v1.37.2", tmp_path)
    with pytest.raises(ValueError, match=r"from v1\.37\.2 to v1\.36\.3; allowed: none"):
        cluster.upgrade_control_plane("v1.36.3")


def test_same_version_upgrade_is_a_no_op(fake_tools: Path, tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path)
    cluster.upgrade_control_plane("v1.36.3")
    assert json.loads((tmp_path / "cluster.json").read_text())["kubernetes_version"] == "v1.36.3"


def test_stopped_cluster_upgrade_records_the_new_version(fake_tools: Path, tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path)
    cluster.upgrade_control_plane("v1.37.2")
    assert LocalCluster.load(tmp_path).version == "v1.37.2"


def test_load_without_state_raises_cluster_not_found(tmp_path: Path) -> None:
    with pytest.raises(cluster_module.ClusterNotFoundError):
        LocalCluster.load(tmp_path / "nothing")


def test_load_cleans_up_a_cluster_whose_creation_was_interrupted(tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path / "c1")
    cluster._state.status = "creating"
    cluster._save()
    with pytest.raises(cluster_module.ClusterNotFoundError, match="interrupted while creating"):
        LocalCluster.load(tmp_path / "c1")
    assert not (tmp_path / "c1").exists()


def test_combined_control_plane_is_used_only_when_the_binary_has_the_mode(fake_tools: Path) -> None:
    toolchain = Toolchain.for_version("v1.37.2")
    assert not toolchain.has_combined_control_plane  # the placeholder prints no control-plane usage
    toolchain.kube.write_text(
        '#!/bin/sh\n[ "$1 $2" = "control-plane --help" ] && echo "usage: kube control-plane [--apiserver-arg=FLAG]"\n'
    )
    assert toolchain.has_combined_control_plane


def test_combined_control_plane_argv_passes_each_components_flags_with_its_prefix(
    fake_tools: Path, tmp_path: Path
) -> None:
    cluster = _cluster_at("v1.37.2", tmp_path / "c1")
    toolchain = Toolchain.for_version("v1.37.2")
    argv = cluster._argv("control-plane", toolchain)
    assert argv[:2] == [str(toolchain.kube), "control-plane"]
    passed = 0
    for component, prefix in [
        ("kube-apiserver", "--apiserver-arg="),
        ("kube-controller-manager", "--controller-manager-arg="),
        ("kube-scheduler", "--scheduler-arg="),
    ]:
        flags = [arg.removeprefix(prefix) for arg in argv[2:] if arg.startswith(prefix)]
        assert flags == cluster._argv(component, toolchain)[2:]
        passed += len(flags)
    assert passed == len(argv) - 2


def test_process_identity_survives_and_terminate_kills_the_session(tmp_path: Path) -> None:
    record = processes.spawn([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "sleep.log")
    assert processes.is_alive(record)
    assert not processes.is_alive(processes.ProcessRecord(record.pid, record.start_ticks + 1))
    processes.terminate([record], timeout=5)
    assert not processes.is_alive(record)


def test_processes_referencing_finds_a_process_by_a_file_in_its_directory_not_a_sibling(tmp_path: Path) -> None:
    home, sibling = tmp_path / "c1", tmp_path / "c10"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--data-dir={home}/etcd"])
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", f"--data-dir={sibling}/etcd"])
    try:
        assert [record.pid for record in processes.processes_referencing(home)] == [child.pid]
    finally:
        for process in (child, other):
            process.kill()
            process.wait()


def test_allocated_ports_are_distinct_and_free() -> None:
    ports = processes.allocate_ports(8)
    try:
        assert len(set(ports)) == 8
        assert all(processes.port_is_free(port) for port in ports)
        assert not set(ports) & set(processes.allocate_ports(8))
    finally:
        processes.release_ports(ports)


class _Selector:
    def __init__(self, match_labels: dict[str, str] | None = None, expressions: list[object] | None = None) -> None:
        self.match_labels = match_labels
        self.match_expressions = expressions


class _Expression:
    def __init__(self, key: str, operator: str, values: list[str] | None = None) -> None:
        self.key, self.operator, self.values = key, operator, values


def test_pdb_selector_matching_follows_label_selector_semantics() -> None:
    labels = {"app": "web", "tier": "front"}
    assert nodes._selector_matches(_Selector({"app": "web"}), labels)
    assert not nodes._selector_matches(_Selector({"app": "db"}), labels)
    assert nodes._selector_matches(_Selector(None, [_Expression("tier", "In", ["front", "back"])]), labels)
    assert not nodes._selector_matches(_Selector(None, [_Expression("tier", "NotIn", ["front"])]), labels)
    assert not nodes._selector_matches(_Selector(None, [_Expression("zone", "Exists")]), labels)
    assert nodes._selector_matches(_Selector(None, [_Expression("zone", "DoesNotExist")]), labels)
    assert not nodes._selector_matches(None, labels)


def test_two_objects_for_one_home_see_each_others_changes(fake_tools: Path, tmp_path: Path) -> None:
    first = _cluster_at("v1.36.3", tmp_path)
    second = LocalCluster.load(tmp_path)
    first.upgrade_control_plane("v1.37.2")
    assert second.version == "v1.37.2"
    # The stale object must not undo the upgrade when it saves next.
    with second._locked():
        second._save()
    assert LocalCluster.load(tmp_path).version == "v1.37.2"


def test_load_without_restart_adopts_a_dead_running_cluster_as_not_running(tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path)
    cluster._state.status = "running"
    cluster._state.processes["etcd"] = processes.ProcessRecord(2**22 + 1, 1)  # no such process
    cluster._save()
    adopted = LocalCluster.load(tmp_path, restart=False)
    assert adopted.status == "running"
    assert not adopted.is_running()


def test_failed_create_keeps_only_logs_and_can_be_retried(fake_tools: Path, tmp_path: Path) -> None:
    home = tmp_path / "failing"
    # The placeholder binaries exit at once, so the control plane never becomes ready.
    with pytest.raises(cluster_module.LocalClusterError, match=r"creating local cluster 'c1' failed \(logs in"):
        LocalCluster.create("c1", "v1.36.3", home=home, timeout=10)
    assert sorted(entry.name for entry in home.iterdir()) == ["logs"]
    assert not processes.processes_referencing(home)
    with pytest.raises(cluster_module.LocalClusterError, match="failed"):
        LocalCluster.create("c1", "v1.36.3", home=home, timeout=10)  # not "a cluster already lives in"


def test_versions_without_a_v_prefix_are_accepted(fake_tools: Path, tmp_path: Path) -> None:
    cluster = _cluster_at("v1.36.3", tmp_path)
    cluster.upgrade_control_plane("1.37.2")
    assert cluster.version == "v1.37.2"


def test_create_rejects_a_pool_newer_than_the_control_plane(fake_tools: Path, tmp_path: Path) -> None:
    pool = NodePool("nodepool1", 1, orchestrator_version="v1.37.2")
    with pytest.raises(ValueError, match=r"v1\.37\.2 is newer than the control plane v1\.36\.3"):
        LocalCluster.create("c1", "v1.36.3", [pool], home=tmp_path / "c1")


def test_apiserver_never_calls_webhooks_and_listens_and_advertises_only_on_loopback(
    fake_tools: Path, tmp_path: Path
) -> None:
    cluster = _cluster_at("v1.37.2", tmp_path / "c1")
    argv = cluster._argv("kube-apiserver", Toolchain.for_version("v1.37.2"))
    flags = dict(arg.split("=", 1) for arg in argv[2:])
    disabled = set(flags["--disable-admission-plugins"].split(","))
    assert {"MutatingAdmissionWebhook", "ValidatingAdmissionWebhook"} <= disabled
    assert "--enable-admission-plugins" not in flags
    assert flags["--bind-address"] == "127.0.0.1"
    assert flags["--advertise-address"] == "127.0.0.1"
    assert flags["--etcd-servers"].startswith("http://127.0.0.1:")
    assert flags["--endpoint-reconciler-type"] == "none"
    # No flag that makes the apiserver dial a remote service: webhooks for authn/authz/audit, OIDC, tracing.
    for forbidden in ("--authentication-token-webhook-config-file", "--authorization-webhook-config-file",
                      "--audit-webhook-config-file", "--oidc-issuer-url", "--tracing-config-file",
                      "--egress-selector-config-file", "--enable-aggregator-routing"):
        assert forbidden not in flags


def test_loopback_policy_refuses_conversion_webhooks_and_service_backed_apiservices() -> None:
    from localazure.kube.loopback import LOOPBACK_OBJECTS, LOOPBACK_POLICY, POLICY_NAME

    rules = LOOPBACK_POLICY["spec"]["matchConstraints"]["resourceRules"]
    assert {(rule["apiGroups"][0], rule["resources"][0]) for rule in rules} == {
        ("apiextensions.k8s.io", "customresourcedefinitions"), ("apiregistration.k8s.io", "apiservices")}
    expressions = " ".join(v["expression"] for v in LOOPBACK_POLICY["spec"]["validations"])
    assert "conversion.strategy != 'Webhook'" in expressions and "has(object.spec.service)" in expressions
    assert LOOPBACK_POLICY["spec"]["failurePolicy"] == "Fail"
    kinds = [manifest["kind"] for _, manifest in LOOPBACK_OBJECTS]
    assert kinds == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    binding = LOOPBACK_OBJECTS[1][1]["spec"]
    assert binding == {"policyName": POLICY_NAME, "validationActions": ["Deny"]}


def test_socket_probe_reports_a_connection_beyond_loopback_and_ignores_loopback(tmp_path: Path) -> None:
    import socket

    from localazure.kube.loopback import _decode_address, non_loopback_peers

    # /proc encodes 10.0.0.10:443 as little-endian hex; ::1 as four host-order words.
    assert str(_decode_address("0A00000A:01BB")[0]) == "10.0.0.10"
    assert _decode_address("0A00000A:01BB")[1] == 443
    assert str(_decode_address("00000000000000000000000001000000:0050")[0]) == "::1"
    import os

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname())
    # Connecting a UDP socket only records its peer: no packet leaves, but /proc shows the peer address.
    foreign = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        assert non_loopback_peers([os.getpid()]) == []
        foreign.connect(("192.0.2.7", 9))  # TEST-NET-1
        peers = non_loopback_peers([os.getpid()])
        assert [(peer.protocol, peer.remote) for peer in peers] == [("udp", "192.0.2.7:9")]
    finally:
        foreign.close()
        client.close()
        server.close()
