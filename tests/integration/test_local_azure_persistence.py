"""State survives emulator restarts; operations cut off by a stop end Failed, never silently Succeeded."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError

pytestmark = pytest.mark.emulator

CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def _cluster(location="eastus"):
    return {"location": location,
            "properties": {"dnsPrefix": "p", "agentPoolProfiles": [{"name": "nodepool1", "count": 1}]}}


def test_groups_clusters_principals_assignments_and_ca_survive_a_restart(local_azure, azure_clients, fresh_name):
    group = azure_clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    azure_clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "kept", _cluster()).result()
    sp = local_azure.azure.create_service_principal(fresh_name)
    azure_clients.authorization.role_assignments.create(group.id, str(uuid.uuid4()), {
        "role_definition_id": f"/subscriptions/{local_azure.endpoint.subscription_id}/providers/"
                              f"Microsoft.Authorization/roleDefinitions/{CONTRIBUTOR}",
        "principal_id": sp["objectId"]})
    before = local_azure.endpoint
    ca_before = Path(before.ca_bundle).read_bytes()

    local_azure.restart()

    after = local_azure.endpoint
    assert after.pid != before.pid
    assert (after.port, after.tenant_id, after.subscription_id) == (before.port, before.tenant_id,
                                                                     before.subscription_id)
    assert Path(after.ca_bundle).read_bytes() == ca_before
    sp_clients = local_azure.clients(local_azure.credential(sp["appId"], sp["password"]))
    assert sp_clients.resource.resource_groups.get(fresh_name).id == group.id
    kept = sp_clients.containerservice.managed_clusters.get(fresh_name, "kept")
    assert kept.provisioning_state == "Succeeded"


@pytest.mark.parametrize("crash", [False, True], ids=["graceful-stop", "killed"])
def test_cluster_create_cut_off_by_a_restart_ends_failed(local_azure, fresh_name, crash):
    clients = local_azure.clients()
    clients.resource.resource_groups.create_or_update(fresh_name, {"location": "eastus"})
    local_azure.azure.set_knobs(latency={"aks.create": 600_000})  # 10 minutes at the session time scale
    poller = clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "cut", _cluster())
    token = poller.continuation_token()

    local_azure.restart(crash=crash)  # the restart also puts the session knobs back

    clients = local_azure.clients()
    resumed = clients.containerservice.managed_clusters.begin_create_or_update(
        fresh_name, "cut", None, continuation_token=token)
    with pytest.raises(HttpResponseError) as caught:
        resumed.result()
    assert "interrupted" in str(caught.value)
    cluster = clients.containerservice.managed_clusters.get(fresh_name, "cut")
    assert cluster.provisioning_state == "Failed"
    # A failed cluster can be fixed by PUTting it again, as on Azure.
    retried = clients.containerservice.managed_clusters.begin_create_or_update(fresh_name, "cut", _cluster())
    assert retried.result().provisioning_state == "Succeeded"
