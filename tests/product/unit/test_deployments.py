"""prefect.yaml declares a deployment for every flow, with parameters the flows accept."""

from __future__ import annotations

from deployments.catalog import REPO_ROOT, check_catalog, load_catalog


def test_every_flow_module_has_a_deployment():
    entrypoints = {entry.entrypoint.split(":")[0] for entry in load_catalog()}
    flow_modules = {f"flows/{path.name}" for path in (REPO_ROOT / "flows").glob("*.py")
                    if "@flow" in path.read_text()}
    assert flow_modules <= entrypoints, f"flows without a deployment: {flow_modules - entrypoints}"


def test_every_deployment_loads_and_its_parameters_validate():
    assert check_catalog(load_catalog()) == []


def test_nightly_upgrade_is_node_image_only_consistent_on_a_cron_with_timezone():
    nightly = {entry.name: entry for entry in load_catalog()}["nightly-node-image"]
    assert nightly.parameters["upgrade_type"] == "NodeImageOnly"
    assert nightly.parameters["node_image_selection"] == "Consistent"
    assert "kubernetes_version" not in nightly.parameters
    assert nightly.schedules[0]["cron"] == "0 2 * * *" and nightly.schedules[0]["timezone"]


def test_every_deployment_runs_on_the_process_pool():
    assert {entry.work_pool for entry in load_catalog()} == {"fleetflow"}


def test_every_flow_parameter_has_a_description_for_the_ui_form():
    from prefect.flows import load_flow_from_entrypoint
    from prefect.utilities.callables import parameter_schema

    undocumented = []
    for entry in load_catalog():
        module, name = entry.entrypoint.split(":")
        flow = load_flow_from_entrypoint(f"{REPO_ROOT / module}:{name}")
        for parameter, schema in parameter_schema(flow.fn).model_dump()["properties"].items():
            if not schema.get("description"):
                undocumented.append(f"{entry.name}.{parameter}")
    assert undocumented == []
