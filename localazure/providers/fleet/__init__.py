"""Local Azure Kubernetes Fleet Manager: fleets, members, update strategies, update runs and gates.

`provider` is listed by `localazure.composition`; it serves the `fleets` type of
Microsoft.ContainerService at every api-version Azure has published (2022-06-02-preview to 2026-06-01, the
version of azure-mgmt-containerservicefleet 4.x), answering all in the newest shape. Auto-upgrade profiles
(`autoupgrade.py`) are recorded, never triggered.

Behaviour worth knowing when driving it with the SDK:

- Writes are long-running operations as the SDK expects (PUT 200/201 + Azure-AsyncOperation; DELETE
  and the start/stop/skip POSTs 202 + Location). PATCH of fleets, members and gates answers 200 at once.
- Fleets are hubless (a hubProfile is refused with 400). A member needs an existing managed cluster
  (400 ClusterNotFound otherwise) that is in no other fleet (409 MemberAlreadyExists), and the caller
  needs `managedClusters/join/action` on it (Owner/Contributor have it).
- Update runs: `updateStrategyId` (snapshotted into `strategy`), an inline `strategy`, or neither (one
  stage and group named `default` with every member). Every strategy group must match the group of
  a member (400 naming the property). kubernetesVersion is required for Full / ControlPlaneOnly and
  must be absent for NodeImageOnly (400 InvalidParameter naming
  `properties.managedClusterUpdate.upgrade.kubernetesVersion`). A run can be replaced by PUT until it
  starts (then 409), and deleted unless Running / Stopping / Pending (409 UpdateRunInProgress).
- Execution (engine.py): stages in order, groups of a stage in parallel, members of a group one at a
  time or up to maxConcurrency; Full calls the AKS service's `upgrade` (control plane, pools, latest
  node image), ControlPlaneOnly `upgrade_control_plane`, NodeImageOnly `upgrade_node_image` per pool
  (Latest: newest at the member's turn; Consistent: one version chosen at start, shown in
  `status.nodeImageSelection`; Custom: the given version). Member `operationId` is the AKS operation.
  A failed member fails its group, stage and run at once; nothing new starts. After-stage waits
  last `afterStageWaitInSeconds` x the `time_scale` knob.
- Gates: when the run reaches a stage's/group's before- or after-gate, a `fleets/gates/{guid}`
  resource appears with state Pending, and the run's gate status (`stages[i].beforeGates[j]`, ...)
  turns Pending with `gateId` set. While waiting on before-gates the stage/group state is Pending
  (the run stays Running). PATCH `{"properties": {"state": "Completed"}}` lets it go on; any other
  state is 400. Skipping the gated stage/group marks the gate Skipped.
- Stop: the run becomes Stopping at once (the stop LRO returns that) and Stopped once member upgrades
  already in flight end; start resumes it. Skip targets (Member, Group, Stage, AfterStageWait by
  name) must not have started yet (an after-stage wait may be running); others are 400.
- Restarts: runs that were Running continue; a member whose upgrade was cut off is upgraded again
  (its message says so); Stopping runs become Stopped. Forced failures: the AKS fail rules, e.g.
  knob `fail=aks.upgrade:<cluster name>` or `aks.nodeimage:*<cluster name>*`.
"""

from localazure.providers.fleet.provider import provider

__all__ = ["provider"]
