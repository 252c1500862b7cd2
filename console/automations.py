"""Approvers are told when a stage waits: a Prefect automation, made from code and kept idempotent.

`fleetflow automations apply --fleet FILE` creates (or updates, or leaves alone) one automation per fleet.
A staged-upgrade run that pauses at an approval gate first emits `fleetflow.approval.waiting` (about the
flow run, related to its fleet, carrying the health summary and the run's link); the automation fires on
that event for its fleet only and sends it through the Prefect notification block the spec names
(`upgrade_health.notification_block`). A gate the auto-approve policy completes never pauses, so it
notifies no one.

Why an event of fleetflow's own rather than Prefect's `prefect.flow-run.Paused`: the Paused event names the
run's tags as they were when it started (Prefect caches a run's related resources for minutes), and the
tag naming the fleet's update run is added later, so Paused cannot be told apart per fleet.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from uuid import UUID

from prefect.automations import Automation
from prefect.client.orchestration import get_client
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
from prefect.exceptions import ObjectNotFound

from console.approvals import prefect_api
from tasks.spec import FleetSpec
from tasks.upgrade_health import WAITING_EVENT, fleet_resource_id

AUTOMATION_PREFIX = "fleetflow-approval-waiting"


class AutomationError(RuntimeError):
    """The automation cannot be applied: no notification block in the spec, or the block is not there."""


def automation_name(spec: FleetSpec) -> str:
    """The name of the fleet's approval-waiting automation."""
    return f"{AUTOMATION_PREFIX}-{spec.name}"


def _templates(spec: FleetSpec) -> tuple[str, str]:
    subject = (f"fleetflow: fleet {spec.name} waits for an approval of stage {{{{ event.payload.next_stage }}}} "
               "(update run {{ event.payload.update_run }})")
    body = "\n".join([
        f"Staged upgrade {{{{ event.payload.flow_run_name }}}} of fleet {spec.name} waits for an approval of stage "
        "{{ event.payload.next_stage }} (update run {{ event.payload.update_run }}).",
        "",
        "{{ event.payload.health }}",
        "",
        "Run (approval report and Resume form): {{ event.payload.run_url or (flow_run|ui_url) }}",
        "From a terminal: fleetflow approve {{ event.payload.flow_run_id }} --comment ... | "
        "fleetflow reject {{ event.payload.flow_run_id }} --reason ...",
    ])
    return subject, body


def desired_automation(spec: FleetSpec, block_document_id: UUID) -> Automation:
    """The automation: a staged-upgrade run of this fleet is pausing at a gate -> one notification."""
    subject, body = _templates(spec)
    return Automation(
        name=automation_name(spec),
        description=f"Tell the approvers of fleet {spec.name} that a staged-upgrade stage waits for them "
                    "(made by fleetflow automations apply).",
        enabled=True,
        trigger=EventTrigger(
            expect={WAITING_EVENT},
            match={"prefect.resource.id": "prefect.flow-run.*"},
            match_related={"prefect.resource.role": "fleet", "prefect.resource.id": fleet_resource_id(spec)},
            for_each={"prefect.resource.id"},
            posture=Posture.Reactive,
            threshold=1,
            within=timedelta(0),
        ),
        actions=[SendNotification(block_document_id=block_document_id, subject=subject, body=body)],
    )


def _fingerprint(automation: Any) -> str:
    """What makes two automations the same (ids the server assigns left out)."""
    data = automation.model_dump(mode="json", include={"name", "description", "enabled", "trigger", "actions"})
    data["trigger"].pop("id", None)
    return json.dumps(data, sort_keys=True, default=str)


def _notification_block_id(reference: str) -> UUID:
    slug, _, name = reference.partition("/")
    with get_client(sync_client=True) as client:
        try:
            document = client.read_block_document_by_name(name=name, block_type_slug=slug)
        except ObjectNotFound:
            raise AutomationError(f"no {slug} block named {name!r} on this Prefect server; create it (Prefect UI: "
                                  "Blocks, or Python: e.g. CustomWebhookNotificationBlock(...).save(name)) or fix "
                                  "upgrade_health.notification_block") from None
    capabilities = document.block_schema.capabilities if document.block_schema else []
    if "notify" not in capabilities:
        raise AutomationError(f"block {reference} cannot send notifications; name a notification block (Custom "
                              "Webhook, Slack Webhook, Microsoft Teams Webhook, Email, ...)")
    return document.id


def apply_automation(spec: FleetSpec) -> str:
    """Create, update or leave alone the fleet's automation (idempotent); returns what was done."""
    reference = spec.upgrade_health.notification_block
    if not reference:
        raise AutomationError(f"fleet {spec.name} names no notification block; set upgrade_health."
                              "notification_block (e.g. custom-webhook/approvers) in the spec")
    with prefect_api():
        desired = desired_automation(spec, _notification_block_id(reference))
        name = desired.name
        with get_client(sync_client=True) as client:
            existing = client.read_automations_by_name(name=name)
            core = AutomationCore(**desired.model_dump(exclude={"id"}))
            if not existing:
                created = client.create_automation(automation=core)
                return f"created automation {name} ({created}): notifies {reference} when a stage waits"
            first, *duplicates = existing
            for duplicate in duplicates:
                client.delete_automation(duplicate.id)
            if _fingerprint(first) == _fingerprint(desired) and not duplicates:
                return f"automation {name} ({first.id}) is up to date"
            client.update_automation(automation_id=first.id, automation=core)
            return f"updated automation {name} ({first.id}): notifies {reference} when a stage waits"
