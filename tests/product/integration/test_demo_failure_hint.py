"""When the demo's lifecycle fails, it names the step (sub-flow) that failed so only that one is retried."""

from __future__ import annotations

from prefect import flow

from console.local_mode import failed_step


@flow(name="bootstrap-aso")
def _failing_step() -> None:
    raise RuntimeError("cert-manager did not become Available")


@flow(name="provision")
def _passing_step() -> None:
    return None


@flow(name="lifecycle-probe")
def _lifecycle() -> None:
    _passing_step()
    _failing_step()


def test_the_failed_sub_flow_is_named(prefect_server: None) -> None:
    state = _lifecycle(return_state=True)
    assert state.is_failed()
    assert failed_step(state.state_details.flow_run_id) == "bootstrap-aso"
