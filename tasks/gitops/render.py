"""Rendering the Git tree for one cluster: Flux-style ${VAR} substitution, then YAML documents to objects.

`<path>/fleet/` holds objects applied once for the whole fleet (on the fleet cluster), `<path>/regional/`
objects applied on every cluster. `${VAR}` and `${VAR:=default}` are replaced from the spec's variables;
an unknown variable is an error naming its file and line, and `$${VAR}` stays a literal `${VAR}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from tasks.retry import FleetflowError
from tasks.spec import ClusterSpec, FleetSpec

FLEET_FOLDER = "fleet"
REGIONAL_FOLDER = "regional"
MANIFEST_SUFFIXES = (".yaml", ".yml")
_VARIABLE = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)(?::=([^}]*))?\}")


class RenderError(FleetflowError):
    """A manifest that cannot be rendered: names the file, line or document, and the cluster."""


@dataclass(frozen=True)
class RenderedObject:
    """One Kubernetes object rendered for a cluster, with the file it came from."""

    source: str
    manifest: dict[str, Any] = field(hash=False, compare=False)

    @property
    def api_version(self) -> str:
        """apiVersion of the object."""
        return str(self.manifest["apiVersion"])

    @property
    def kind(self) -> str:
        """kind of the object."""
        return str(self.manifest["kind"])

    @property
    def name(self) -> str:
        """metadata.name."""
        return str(self.manifest["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        """metadata.namespace, if namespaced."""
        namespace = self.manifest["metadata"].get("namespace")
        return str(namespace) if namespace else None

    @property
    def key(self) -> str:
        """Identity of the object in an inventory: group/Kind/namespace/name."""
        group = self.api_version.rpartition("/")[0]
        return f"{group}/{self.kind}/{self.namespace or ''}/{self.name}"


def cluster_variables(spec: FleetSpec, cluster: ClusterSpec, subscription_id: str, tenant_id: str) -> dict[str, str]:
    """Every ${VAR} a manifest may use for this cluster; the spec's own gitops.variables come last and win."""
    group_id = f"/subscriptions/{subscription_id}/resourceGroups/{spec.resource_group_name}"
    variables = {
        "FLEET_NAME": spec.name,
        "FLEET_LOCATION": spec.location,
        "SUFFIX": spec.stable_suffix,
        "SUBSCRIPTION_ID": subscription_id,
        "TENANT_ID": tenant_id,
        "RESOURCE_GROUP": spec.resource_group_name,
        "RESOURCE_GROUP_ID": group_id,
        "REGION": cluster.region,
        "CLUSTER_NAME": cluster.name,
        "UPDATE_GROUP": cluster.update_group,
        "REGISTRY_NAME": spec.registry_name,
        "KEY_VAULT_NAME": spec.key_vault_name,
        "STORAGE_ACCOUNT_NAME": cluster.storage_account_name,
    }
    return {**variables, **(spec.gitops.variables if spec.gitops else {})}


def substitute(text: str, variables: dict[str, str], source: str, cluster: str) -> str:
    """Replace ${VAR} and ${VAR:=default}; an unknown variable without a default is an error naming file and line."""
    lines = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        def replace(match: re.Match[str], number: int = number) -> str:
            escaped, name, default = match.groups()
            if escaped:
                return match.group(0)[1:]
            if name in variables:
                return variables[name]
            if default is not None:
                return default
            known = ", ".join(sorted(variables))
            raise RenderError(f"{source}:{number}: unknown variable ${{{name}}} for cluster {cluster} (known: "
                              f"{known}); add it to gitops.variables or give a default as ${{{name}:=value}}",
                              operation="render", resource_id=f"{source}:{number}")

        lines.append(_VARIABLE.sub(replace, line))
    return "".join(lines)


def _objects_of(text: str, source: str, cluster: str) -> list[RenderedObject]:
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise RenderError(f"{source}: not valid YAML for cluster {cluster}: {error}", operation="render",
                          resource_id=source) from error
    objects = []
    for index, document in enumerate(documents):
        if document is None:
            continue
        where = f"{source} document {index + 1}"
        if not isinstance(document, dict):
            raise RenderError(f"{where}: not a Kubernetes object (a mapping with apiVersion, kind and metadata)",
                              operation="render", resource_id=source)
        missing = [key for key in ("apiVersion", "kind") if not document.get(key)]
        metadata = document.get("metadata")
        if not isinstance(metadata, dict) or not metadata.get("name"):
            missing.append("metadata.name")
        if missing:
            raise RenderError(f"{where}: missing {', '.join(missing)}", operation="render", resource_id=source)
        if document["kind"] == "Secret" and document["apiVersion"] == "v1":
            raise RenderError(f"{where}: Secret {document['metadata']['name']} puts a secret in Git; map it to a "
                              "Prefect Secret block under gitops.key_vault_secrets instead",
                              operation="render", resource_id=source)
        objects.append(RenderedObject(source, document))
    return objects


def render_cluster(files: dict[str, bytes], folder: str, variables: dict[str, str], cluster: str,
                   fleet_wide: bool) -> list[RenderedObject]:
    """The objects for one cluster: regional/ always, fleet/ when this is the fleet cluster; sorted by file."""
    base = folder.strip("/")
    prefixes = [f"{base}/{REGIONAL_FOLDER}/"] + ([f"{base}/{FLEET_FOLDER}/"] if fleet_wide else [])
    objects: list[RenderedObject] = []
    seen: dict[str, str] = {}
    for path in sorted(files):
        if not path.startswith(tuple(prefixes)) or not path.endswith(MANIFEST_SUFFIXES):
            continue
        try:
            text = files[path].decode("utf-8")
        except UnicodeDecodeError as error:
            raise RenderError(f"{path}: not UTF-8 text", operation="render", resource_id=path) from error
        for rendered in _objects_of(substitute(text, variables, path, cluster), path, cluster):
            if rendered.key in seen:
                raise RenderError(f"{path}: {rendered.kind} {rendered.name} is also declared in {seen[rendered.key]}",
                                  operation="render", resource_id=path)
            seen[rendered.key] = path
            objects.append(rendered)
    return objects
