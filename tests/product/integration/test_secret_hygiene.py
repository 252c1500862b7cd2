"""A client secret loaded from a block never reaches logs, parameters, artifacts or exceptions."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, FlowRunFilter, LogFilter, LogFilterFlowRunId

from blocks.azure import AzureServicePrincipal
from tasks.artifacts import publish_markdown
from tasks.clients import azure_clients

SECRET = f"leak-canary-{uuid.uuid4().hex}"


@flow(name="secret-hygiene-probe")
def probe(block_name: str) -> None:
    logger = get_run_logger()
    principal = AzureServicePrincipal.load(block_name)
    logger.info("loaded %r", principal)
    logger.info("fields %s", principal.model_dump())
    clients = azure_clients(principal)
    logger.info("clients for %s at %s", clients.subscription_id, clients.endpoint)
    publish_markdown("secret-hygiene-probe", f"principal: `{principal}`", "probe")
    raise RuntimeError(f"deliberate failure while using {principal}")


def test_secret_never_appears_in_logs_parameters_artifacts_or_exceptions(prefect_server):
    AzureServicePrincipal(
        tenant_id="00000000-0000-0000-0000-000000000001",
        client_id="00000000-0000-0000-0000-000000000002",
        client_secret=SECRET,
        subscription_id="00000000-0000-0000-0000-000000000003",
    ).save("hygiene-probe", overwrite=True)

    state = probe(block_name="hygiene-probe", return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError) as raised:
        state.result()
    assert SECRET not in str(raised.value) and "**********" in str(raised.value)

    async def read_records():
        async with get_client() as client:
            run_ids = [state.state_details.flow_run_id]
            runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(id={"any_": run_ids}))
            logs = await client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[runs[0].id])))
            artifacts = await client.read_artifacts(artifact_filter=ArtifactFilter())
            return runs[0], logs, artifacts

    # Logs reach the server in batches from a background worker; give them a moment to land.
    for _ in range(40):
        run, logs, artifacts = asyncio.run(read_records())
        if any("deliberate failure" in log.message for log in logs):
            break
        time.sleep(0.25)
    assert logs, "the probe flow logged nothing, so the check would prove nothing"
    everything = "\n".join([str(run.parameters), *(log.message for log in logs),
                            *(str(artifact.data) for artifact in artifacts)])
    assert "deliberate failure" in everything
    assert SECRET not in everything
    assert AzureServicePrincipal.load("hygiene-probe").client_secret.get_secret_value() == SECRET
