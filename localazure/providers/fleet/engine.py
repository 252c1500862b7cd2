"""The update-run engine: executes started runs in background threads against the in-process AKS service.

Stages run in order; the groups of a stage in parallel; the members of a group one at a time (or up
to the group's / stage's maxConcurrency). Every state change is written to the run's stored status at
once, so a GET always shows the truth and an emulator restart can resume the run. Approval gates
become fleets/gates resources (state Pending) when the run reaches them; the run waits until a gate is
Completed, the gated stage/group is skipped, or the run is stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from localazure.arm.common import RESOURCES
from localazure.arm.errors import ArmError, invalid_parameter
from localazure.arm.ids import utc_now
from localazure.arm.store import Record
from localazure.providers.aks import aks_of
from localazure.providers.fleet.resources import GATE_TYPE, RUN_TYPE, new_etag, system_data

if TYPE_CHECKING:
    from localazure.arm.context import Emulator

log = logging.getLogger(__name__)

SERVICE = "fleet.engine"
ACTIVE = frozenset({"Running", "Stopping", "Pending"})
TERMINAL = frozenset({"Completed", "Failed", "Skipped"})
DONE = frozenset({"Completed", "Skipped"})
ENDED = frozenset({"Completed", "Failed", "Skipped", "Stopped"})
POLL_SECONDS = 0.1
# Wall-clock ceiling for one AKS operation of a member upgrade (real drains can be slow).
MEMBER_OPERATION_TIMEOUT = 3600.0
RESTART_MESSAGE = "The member upgrade was interrupted by a local Azure restart and was started again."

Status = dict[str, Any]


class _Gone(Exception):
    """The run was deleted while executing."""


class _Cancelled(Exception):
    """The emulator is shutting down or the run's fleet is being deleted: leave the stored state as it is."""


def set_state(element: dict[str, Any], state: str, error: dict[str, Any] | None = None) -> None:
    """Set an element's UpdateStatus, stamping startTime on first activity and completedTime when it ends."""
    status = element.setdefault("status", {})
    status["state"] = state
    if state in ("Running", "Pending") and not status.get("startTime"):
        status["startTime"] = utc_now()
    if state in ENDED:
        status["completedTime"] = utc_now()
    if error is not None:
        status["error"] = error


def fleet_of_run(run_id: str) -> str:
    """The fleet id of an update run id."""
    return run_id.rsplit("/updateRuns/", 1)[0]


def gates_of_run(emulator: Emulator, run_id: str) -> list[Record]:
    """Gate records whose target is the run."""
    low = run_id.lower()
    return emulator.store.values(
        RESOURCES, lambda r: r["body"].get("type") == GATE_TYPE
        and r["body"]["properties"]["target"]["id"].lower() == low)


def _parse_time(value: str) -> float:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()


class Execution:
    """One started update run, driven by its own thread (plus one thread per group and member in flight)."""

    def __init__(self, engine: UpdateRunEngine, run_id: str) -> None:
        self.engine = engine
        self.emulator = engine.emulator
        self.run_id = run_id
        self.wake = threading.Event()
        self.cancelled = threading.Event()
        self.member_failed = threading.Event()
        self.thread = threading.Thread(target=self._main, name=f"updaterun-{run_id.rsplit('/', 1)[-1]}",
                                       daemon=True)

    # ---- stored state --------------------------------------------------------------------------

    def record(self) -> Record:
        """The run's stored record (raises _Gone once deleted)."""
        record = self.emulator.store.get(RESOURCES, self.run_id)
        if record is None:
            raise _Gone(self.run_id)
        return record

    def status(self) -> Status:
        """The run's status object."""
        status: Status = self.record()["body"]["properties"]["status"]
        return status

    def change(self, edit: Callable[[Status], None]) -> None:
        """Apply `edit` to the stored status atomically."""
        if self.cancelled.is_set():
            raise _Cancelled(self.run_id)
        updated = self.emulator.store.update(RESOURCES, self.run_id,
                                             lambda r: edit(r["body"]["properties"]["status"]))
        if updated is None:
            raise _Gone(self.run_id)

    def stop_requested(self) -> bool:
        """True once stop was asked for (or the execution must end without touching state)."""
        if self.cancelled.is_set():
            raise _Cancelled(self.run_id)
        return bool(self.record()["internal"].get("stopRequested"))

    def pause(self, seconds: float = POLL_SECONDS) -> None:
        """Sleep until woken (gate completed, skip, stop) or `seconds` pass."""
        self.wake.wait(seconds)
        self.wake.clear()

    # ---- the run -------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._execute()
        except (_Gone, _Cancelled):
            pass
        except Exception as exc:  # the run must end in a terminal state, never stay Running forever
            log.exception("update run %s crashed", self.run_id)
            with contextlib.suppress(_Gone, _Cancelled):
                self._finish("Failed", {"code": "InternalError",
                                        "message": f"The update run engine failed: {type(exc).__name__}: {exc}"})
        finally:
            self.engine._ended(self)
            self._relaunch_if_restarted()

    def _relaunch_if_restarted(self) -> None:
        # A start that arrived while this thread was wrapping up a stop found it still alive and only
        # woke it; the run is Running again and needs a fresh execution.
        if self.cancelled.is_set():
            return
        record = self.emulator.store.get(RESOURCES, self.run_id)
        if record is not None and record["body"]["properties"]["status"]["status"]["state"] == "Running" \
                and not record["internal"].get("stopRequested"):
            self.engine.launch(self.run_id)

    def _execute(self) -> None:
        for stage_index in range(len(self.status()["stages"])):
            outcome = self._stage(stage_index)
            if outcome == "stopped":
                self._finish_stopped()
                return
            if outcome == "failed":
                stage = self.status()["stages"][stage_index]
                error = stage["status"].get("error") or {}
                self._finish("Failed", {"code": "UpdateRunFailed", "message": f"Stage '{stage['name']}' failed: "
                                        f"{error.get('message', 'a member upgrade failed')}"})
                return
        self._finish("Completed")

    def _finish(self, state: str, error: dict[str, Any] | None = None) -> None:
        self.change(lambda s: set_state(s, state, error))
        self.emulator.store.update(RESOURCES, self.run_id, lambda r: r["internal"].update(stopRequested=False))

    def _finish_stopped(self) -> None:
        def stop_all(status: Status) -> None:
            for stage in status["stages"]:
                for group in stage["groups"]:
                    if group["status"]["state"] in ("Running", "Pending"):
                        set_state(group, "Stopped")
                if stage["status"]["state"] in ("Running", "Pending"):
                    set_state(stage, "Stopped")
            set_state(status, "Stopped")

        self.change(stop_all)
        self.emulator.store.update(RESOURCES, self.run_id, lambda r: r["internal"].update(stopRequested=False))

    # ---- stages ----------------------------------------------------------------------------------

    def _stage(self, si: int) -> str:
        stage = self.status()["stages"][si]
        if stage["status"]["state"] in DONE:
            return "done"
        if self.stop_requested():
            return "stopped"
        if any(g["status"]["state"] not in DONE for g in stage["beforeGates"]):
            self.change(lambda s: set_state(s["stages"][si], "Pending"))
            outcome = self._gates(si, None, "beforeGates", "Before")
            if outcome == "skipped":
                return "done"
            if outcome == "stopped":
                return "stopped"
        self.change(lambda s: set_state(s["stages"][si], "Running"))
        stage_slots = threading.Semaphore(int(stage.get("maxConcurrency") or 1))
        outcomes: dict[int, str] = {}

        def run_group(gi: int) -> None:
            try:
                outcomes[gi] = self._group(si, gi, stage_slots)
            except (_Gone, _Cancelled):
                outcomes[gi] = "cancelled"
            except Exception as exc:
                log.exception("group %d of stage %d of %s crashed", gi, si, self.run_id)
                self.member_failed.set()
                error = {"code": "InternalError", "message": f"{type(exc).__name__}: {exc}"}
                self.change(lambda s: set_state(s["stages"][si]["groups"][gi], "Failed", error))
                outcomes[gi] = "failed"

        threads = [threading.Thread(target=run_group, args=(gi,), daemon=True,
                                    name=f"{self.thread.name}-s{si}g{gi}") for gi in range(len(stage["groups"]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if "cancelled" in outcomes.values():
            raise _Cancelled(self.run_id)
        if "failed" in outcomes.values():
            groups = self.status()["stages"][si]["groups"]
            failed = [g for g in groups if g["status"]["state"] == "Failed"]
            message = "; ".join(f"group '{g['name']}' failed: {g['status'].get('error', {}).get('message', '')}"
                                for g in failed)
            self.change(lambda s: set_state(s["stages"][si], "Failed", {"code": "UpdateStageFailed",
                                                                         "message": message}))
            return "failed"
        if "stopped" in outcomes.values():
            return "stopped"
        outcome = self._gates(si, None, "afterGates", "After")
        if outcome == "stopped":
            return "stopped"
        if outcome != "skipped" and self._after_stage_wait(si) == "stopped":
            return "stopped"
        if self.status()["stages"][si]["status"]["state"] != "Skipped":
            self.change(lambda s: set_state(s["stages"][si], "Completed"))
        return "done"

    def _after_stage_wait(self, si: int) -> str:
        wait = self.status()["stages"][si]["afterStageWaitStatus"]
        if wait["status"]["state"] in DONE:
            return "done"
        seconds = int(wait.get("waitDurationInSeconds") or 0)
        if wait["status"]["state"] != "Running":
            self.change(lambda s: set_state(s["stages"][si]["afterStageWaitStatus"], "Running"))
        started = _parse_time(self.status()["stages"][si]["afterStageWaitStatus"]["status"]["startTime"])
        deadline = started + self.emulator.knobs.scaled(seconds)
        while True:
            if self.stop_requested():
                return "stopped"
            if self.status()["stages"][si]["afterStageWaitStatus"]["status"]["state"] == "Skipped":
                return "done"
            remaining = deadline - time.time()
            if remaining <= 0:
                self.change(lambda s: set_state(s["stages"][si]["afterStageWaitStatus"], "Completed"))
                return "done"
            self.pause(min(POLL_SECONDS, remaining))

    # ---- groups and members ------------------------------------------------------------------------

    def _group(self, si: int, gi: int, stage_slots: threading.Semaphore) -> str:
        group = self.status()["stages"][si]["groups"][gi]
        if group["status"]["state"] in DONE:
            return "done"
        if self.stop_requested():
            return "stopped"
        if any(g["status"]["state"] not in DONE for g in group["beforeGates"]):
            self.change(lambda s: set_state(s["stages"][si]["groups"][gi], "Pending"))
            outcome = self._gates(si, gi, "beforeGates", "Before")
            if outcome == "skipped":
                return "done"
            if outcome == "stopped":
                return "stopped"
        self.change(lambda s: set_state(s["stages"][si]["groups"][gi], "Running"))
        group_slots = threading.Semaphore(int(group.get("maxConcurrency") or 1))
        workers = []
        for mi in range(len(group["members"])):
            if self.status()["stages"][si]["groups"][gi]["members"][mi]["status"]["state"] in DONE:
                continue
            group_slots.acquire()
            stage_slots.acquire()
            current = self.status()["stages"][si]["groups"][gi]
            halt = self.stop_requested() or self.member_failed.is_set() or current["status"]["state"] == "Skipped"
            if halt or current["members"][mi]["status"]["state"] in DONE:
                stage_slots.release()
                group_slots.release()
                if halt:
                    break
                continue
            worker = threading.Thread(target=self._member_worker, args=(si, gi, mi, group_slots, stage_slots),
                                      name=f"{self.thread.name}-s{si}g{gi}m{mi}", daemon=True)
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join()
        group = self.status()["stages"][si]["groups"][gi]
        failed = [m for m in group["members"] if m["status"]["state"] == "Failed"]
        if failed:
            self.member_failed.set()
            message = "; ".join(f"member '{m['name']}' failed: {m['status'].get('error', {}).get('message', '')}"
                                for m in failed)
            self.change(lambda s: set_state(s["stages"][si]["groups"][gi], "Failed",
                                            {"code": "UpdateGroupFailed", "message": message}))
            return "failed"
        if group["status"]["state"] == "Skipped":
            return "done"
        if any(m["status"]["state"] not in DONE for m in group["members"]):
            # Stopped, or halted because a member of another group failed.
            self.change(lambda s: set_state(s["stages"][si]["groups"][gi], "Stopped"))
            return "stopped"
        outcome = self._gates(si, gi, "afterGates", "After")
        if outcome == "stopped":
            self.change(lambda s: set_state(s["stages"][si]["groups"][gi], "Stopped"))
            return "stopped"
        if self.status()["stages"][si]["groups"][gi]["status"]["state"] != "Skipped":
            self.change(lambda s: set_state(s["stages"][si]["groups"][gi], "Completed"))
        return "done"

    def _member_worker(self, si: int, gi: int, mi: int, group_slots: threading.Semaphore,
                       stage_slots: threading.Semaphore) -> None:
        try:
            self._upgrade_member(si, gi, mi)
        except (_Gone, _Cancelled):
            pass
        except Exception as exc:
            log.exception("member upgrade %d/%d/%d of %s crashed", si, gi, mi, self.run_id)
            error = {"code": "InternalError", "message": f"{type(exc).__name__}: {exc}"}
            self.member_failed.set()
            with contextlib.suppress(_Gone, _Cancelled):
                self.change(lambda s: set_state(s["stages"][si]["groups"][gi]["members"][mi], "Failed", error))
        finally:
            stage_slots.release()
            group_slots.release()
            self.wake.set()

    def _upgrade_member(self, si: int, gi: int, mi: int) -> None:
        record = self.record()
        update = record["body"]["properties"]["managedClusterUpdate"]
        status = record["body"]["properties"]["status"]
        member = status["stages"][si]["groups"][gi]["members"][mi]
        cluster_id = member["clusterResourceId"]
        # An upgrade redone after a restart says so in its final message.
        prefix = RESTART_MESSAGE + " " if member.get("message") == RESTART_MESSAGE else ""

        def start(s: Status) -> None:
            entry = s["stages"][si]["groups"][gi]["members"][mi]
            set_state(entry, "Running")
            entry["status"].pop("error", None)
            entry.pop("message", None)

        self.change(start)
        kind = update["upgrade"]["type"]
        version = update["upgrade"].get("kubernetesVersion")
        try:
            self._require_member(member["name"], cluster_id)
            aks = aks_of(self.emulator)
            if kind == "Full":
                self._await(si, gi, mi, aks.upgrade(cluster_id, version))
                message = f"Upgraded the control plane and nodes to Kubernetes {version}."
            elif kind == "ControlPlaneOnly":
                self._await(si, gi, mi, aks.upgrade_control_plane(cluster_id, version))
                message = f"Upgraded the control plane to Kubernetes {version}."
            else:
                image = self._node_image(update, status)
                pools = [p["name"] for p in aks.get(cluster_id)["properties"]["agentPoolProfiles"]]
                for pool in pools:
                    self._await(si, gi, mi, aks.upgrade_node_image(cluster_id, pool, image))
                message = f"Upgraded the node image of pools {', '.join(pools)}."
        except ArmError as exc:
            detail = exc.as_error_detail()
            failure = exc.message

            def fail(s: Status) -> None:
                entry = s["stages"][si]["groups"][gi]["members"][mi]
                set_state(entry, "Failed", detail)
                entry["message"] = prefix + failure

            self.change(fail)
            self.member_failed.set()  # as in Azure, a failed member ends its group: start no one else
            return

        def complete(s: Status) -> None:
            entry = s["stages"][si]["groups"][gi]["members"][mi]
            set_state(entry, "Completed")
            entry["message"] = prefix + message

        self.change(complete)

    def _require_member(self, name: str, cluster_id: str) -> None:
        member = self.emulator.store.get(RESOURCES, f"{fleet_of_run(self.run_id)}/members/{name}")
        if member is None or member["body"]["properties"]["clusterResourceId"].lower() != cluster_id.lower():
            raise ArmError(404, "MemberNotFound", f"Fleet member '{name}' no longer exists (or no longer points at "
                           f"'{cluster_id}').")

    def _node_image(self, update: dict[str, Any], status: Status) -> str | None:
        selection = (update.get("nodeImageSelection") or {}).get("type", "Latest")
        if selection == "Custom":
            return str(update["nodeImageSelection"]["customNodeImageVersions"][0]["version"])
        if selection == "Consistent":
            chosen = (status.get("nodeImageSelection") or {}).get("selectedNodeImageVersions") or []
            if chosen:
                return str(chosen[0]["version"])
        return None  # Latest: whatever is newest when this member's turn comes

    def _await(self, si: int, gi: int, mi: int, operation: Record) -> None:
        operation_id = self.emulator.operations.status_path(operation)
        self.change(lambda s: s["stages"][si]["groups"][gi]["members"][mi].update(operationId=operation_id))
        final = self.emulator.operations.wait(operation["name"], timeout=MEMBER_OPERATION_TIMEOUT)
        if final["status"] != "Succeeded":
            error = final.get("error") or {"code": "UpgradeFailed", "message": "The cluster operation failed."}
            raise ArmError(400, str(error.get("code", "UpgradeFailed")), str(error.get("message", "")))

    # ---- gates -------------------------------------------------------------------------------------

    def _element(self, status: Status, si: int, gi: int | None) -> dict[str, Any]:
        stage: dict[str, Any] = status["stages"][si]
        return stage if gi is None else stage["groups"][gi]

    def _gates(self, si: int, gi: int | None, key: str, timing: str) -> str:
        """Pass the gates of a stage/group: 'done', 'skipped' (the element was skipped) or 'stopped'."""
        for index in range(len(self._element(self.status(), si, gi)[key])):
            entry = self._element(self.status(), si, gi)[key][index]
            if entry["status"]["state"] in DONE:
                continue
            gate_id = entry.get("gateId")
            if not gate_id or self.emulator.store.get(RESOURCES, gate_id) is None:
                gate_id = self._create_gate(si, gi, entry.get("displayName"), timing)

            def pending(s: Status, gate_id: str = gate_id, index: int = index) -> None:
                gate_entry = self._element(s, si, gi)[key][index]
                gate_entry["gateId"] = gate_id
                set_state(gate_entry, "Pending")

            self.change(pending)
            while True:
                if self.stop_requested():
                    return "stopped"
                if self._element(self.status(), si, gi)["status"]["state"] == "Skipped":
                    self._skip_gate(gate_id)
                    self._set_gate_state(si, gi, key, index, "Skipped")
                    return "skipped"
                gate = self.emulator.store.get(RESOURCES, gate_id)
                if gate is None:
                    break  # deleted under us: it is created again on the next pass
                if gate["body"]["properties"]["state"] == "Completed":
                    self._set_gate_state(si, gi, key, index, "Completed")
                    break
                self.pause()
            if self._element(self.status(), si, gi)[key][index]["status"]["state"] not in DONE:
                return self._gates(si, gi, key, timing)
        return "done"

    def _set_gate_state(self, si: int, gi: int | None, key: str, index: int, state: str) -> None:
        self.change(lambda s: set_state(self._element(s, si, gi)[key][index], state))

    def _create_gate(self, si: int, gi: int | None, display_name: str | None, timing: str) -> str:
        status = self.status()
        stage = status["stages"][si]
        run_name = self.run_id.rsplit("/", 1)[-1]
        name = str(uuid.uuid4())
        gate_id = f"{fleet_of_run(self.run_id)}/gates/{name}"
        target: dict[str, Any] = {"name": run_name, "stage": stage["name"], "timing": timing}
        if gi is not None:
            target["group"] = stage["groups"][gi]["name"]
        body = {
            "id": gate_id,
            "name": name,
            "type": GATE_TYPE,
            "eTag": new_etag(),
            "systemData": system_data(None),
            "properties": {
                "provisioningState": "Succeeded",
                "displayName": display_name,
                "gateType": "Approval",
                "target": {"id": self.record()["body"]["id"], "updateRunProperties": target},
                "state": "Pending",
            },
        }
        self.emulator.store.put(RESOURCES, gate_id, {"body": body, "internal": {}})
        return gate_id

    def _skip_gate(self, gate_id: str) -> None:
        def skip(record: Record) -> None:
            if record["body"]["properties"]["state"] == "Pending":
                record["body"]["properties"]["state"] = "Skipped"
                record["body"]["eTag"] = new_etag()

        self.emulator.store.update(RESOURCES, gate_id, skip)


class UpdateRunEngine:
    """All executions of one emulator, plus the run-level transitions the API asks for."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._lock = threading.Lock()
        self._executions: dict[str, Execution] = {}

    def _live(self, run_id: str) -> Execution | None:
        execution = self._executions.get(run_id.lower())
        return execution if execution is not None and execution.thread.is_alive() else None

    def _ended(self, execution: Execution) -> None:
        with self._lock:
            if self._executions.get(execution.run_id.lower()) is execution:
                del self._executions[execution.run_id.lower()]

    def launch(self, run_id: str) -> None:
        """Make sure a thread executes the run (wakes the existing one)."""
        with self._lock:
            execution = self._live(run_id)
            if execution is not None:
                execution.wake.set()
                return
            execution = Execution(self, run_id)
            self._executions[run_id.lower()] = execution
            execution.thread.start()

    def wake(self, run_id: str) -> None:
        """Have the run look at its gates / skips / stop flag now."""
        with self._lock:
            execution = self._live(run_id)
        if execution is not None:
            execution.wake.set()

    def mark_started(self, run_id: str) -> None:
        """NotStarted/Stopped -> Running; a Consistent node image is chosen once, at the first start."""
        latest = aks_of(self.emulator).latest_node_image()

        def start(record: Record) -> None:
            status = record["body"]["properties"]["status"]
            set_state(status, "Running")
            status["status"].pop("completedTime", None)
            record["internal"]["stopRequested"] = False
            selection = (record["body"]["properties"]["managedClusterUpdate"].get("nodeImageSelection") or {})
            if selection.get("type") == "Consistent" and not status.get("nodeImageSelection"):
                status["nodeImageSelection"] = {"selectedNodeImageVersions": [{"version": latest}]}

        self.emulator.store.update(RESOURCES, run_id, start)

    def request_stop(self, run_id: str) -> None:
        """Running -> Stopping; the execution turns it Stopped before the next member starts."""

        def stopping(record: Record) -> None:
            set_state(record["body"]["properties"]["status"], "Stopping")
            record["internal"]["stopRequested"] = True

        self.emulator.store.update(RESOURCES, run_id, stopping)
        with self._lock:
            execution = self._live(run_id)
        if execution is not None:
            execution.wake.set()
        else:
            # Nothing executes it (e.g. it was never resumed): it is stopped now.
            Execution(self, run_id)._finish_stopped()

    def skip(self, run_id: str, targets: list[tuple[str, str]]) -> None:
        """Mark skip targets Skipped (400 for unknown targets or ones already running or finished)."""
        record = self.emulator.store.get(RESOURCES, run_id)
        assert record is not None
        status = record["body"]["properties"]["status"]
        gates_to_skip: list[str] = []
        for index, (kind, name) in enumerate(targets):
            self._skip_one(status, kind, name, f"targets[{index}]", gates_to_skip)
        self.emulator.store.update(RESOURCES, run_id, lambda r: r["body"]["properties"].update(status=status))
        for gate_id in gates_to_skip:
            Execution(self, run_id)._skip_gate(gate_id)
        self.wake(run_id)

    @staticmethod
    def _skip_one(status: Status, kind: str, name: str, prop: str, gates: list[str]) -> None:
        skippable = ("NotStarted", "Pending", "Stopped")

        def skip_element(element: dict[str, Any], what: str) -> None:
            state = element["status"]["state"]
            if state not in skippable:
                raise invalid_parameter(f"{prop}.name", f"{what} '{name}' is {state}; only targets that are "
                                        f"{', '.join(skippable)} can be skipped.")
            set_state(element, "Skipped")
            for key in ("beforeGates", "afterGates"):
                for gate in element.get(key, []):
                    if gate["status"]["state"] not in ENDED:
                        if gate.get("gateId"):
                            gates.append(gate["gateId"])
                        set_state(gate, "Skipped")

        def skip_group(group: dict[str, Any]) -> None:
            skip_element(group, "Group")
            for member in group["members"]:
                if member["status"]["state"] == "NotStarted":
                    set_state(member, "Skipped")

        for stage in status["stages"]:
            if kind == "Stage" and stage["name"] == name:
                skip_element(stage, "Stage")
                for group in stage["groups"]:
                    if group["status"]["state"] in skippable:
                        skip_group(group)
                set_state(stage["afterStageWaitStatus"], "Skipped")
                return
            if kind == "AfterStageWait" and stage["name"] == name:
                wait = stage["afterStageWaitStatus"]
                if wait["status"]["state"] not in ("NotStarted", "Running"):
                    raise invalid_parameter(f"{prop}.name", f"The after-stage wait of stage '{name}' is "
                                            f"{wait['status']['state']} and cannot be skipped.")
                set_state(wait, "Skipped")
                return
            for group in stage["groups"]:
                if kind == "Group" and group["name"] == name:
                    skip_group(group)
                    return
                for member in group["members"]:
                    if kind == "Member" and member["name"] == name:
                        if member["status"]["state"] != "NotStarted":
                            raise invalid_parameter(f"{prop}.name", f"Member '{name}' is {member['status']['state']}"
                                                    "; only members that have not started can be skipped.")
                        set_state(member, "Skipped")
                        return
        raise invalid_parameter(f"{prop}.name", f"The update run has no {kind.lower()} named '{name}'.")

    def forget_under(self, resource_id: str) -> None:
        """End (without touching state) the executions of runs at or below `resource_id` (being deleted)."""
        low = resource_id.lower().rstrip("/")
        with self._lock:
            doomed = [e for key, e in self._executions.items() if key == low or key.startswith(low + "/")]
        for execution in doomed:
            execution.cancelled.set()
            execution.wake.set()

    def resume_all(self) -> None:
        """After a restart: Stopping runs become Stopped; Running runs continue, redoing interrupted members."""
        runs = self.emulator.store.values(RESOURCES, lambda r: r["body"].get("type") == RUN_TYPE
                                          and r["body"]["properties"]["status"]["status"]["state"] in ACTIVE)
        for record in runs:
            run_id = record["body"]["id"]
            if record["body"]["properties"]["status"]["status"]["state"] == "Stopping":
                Execution(self, run_id)._finish_stopped()
                continue

            def redo_interrupted(stored: Record) -> None:
                for stage in stored["body"]["properties"]["status"]["stages"]:
                    for group in stage["groups"]:
                        for member in group["members"]:
                            if member["status"]["state"] == "Running":
                                member["status"] = {"state": "NotStarted"}
                                member["message"] = RESTART_MESSAGE

            self.emulator.store.update(RESOURCES, run_id, redo_interrupted)
            log.warning("resuming update run %s after a restart", run_id)
            self.launch(run_id)

    def shutdown(self) -> None:
        """Let every execution end without changing stored state (the next start resumes them)."""
        with self._lock:
            executions = list(self._executions.values())
        for execution in executions:
            execution.cancelled.set()
            execution.wake.set()


def engine_of(emulator: Emulator) -> UpdateRunEngine:
    """The update-run engine of an emulator (created on first use)."""
    engine = emulator.services.get(SERVICE)
    if engine is None:
        engine = emulator.services.setdefault(SERVICE, UpdateRunEngine(emulator))
    assert isinstance(engine, UpdateRunEngine)
    return engine
