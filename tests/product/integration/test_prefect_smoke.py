"""Flows run through a real Prefect server and leave their records there."""

from __future__ import annotations

import asyncio

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.plan import plan
from tests.paths import REPO


def test_plan_flow_runs_through_the_prefect_server_and_publishes_its_table(prefect_server):
    state = plan(fleet=str(REPO / "fleet.yaml"), return_state=True)
    assert state.is_completed()
    rows = state.result()
    assert [row["region"] for row in rows] == ["eastus", "westus2", "centralus"]

    async def read_artifact():
        async with get_client() as client:
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["plan-multicluster-fleet"]))
            )

    artifacts = asyncio.run(read_artifact())
    assert artifacts and artifacts[0].type == "table"
    assert "aks-multicluster-fleet-westus2" in str(artifacts[0].data)
