"""Render the kustomizations under deploy/ with the real kubectl, and validate what comes out.

Core kinds are checked with `kubernetes-validate` in strict mode (unknown fields are errors), offline.
The custom kinds (Gateway API HTTPRoute, Argo CD Application) are checked with `jsonschema` against the
schemas vendored in `schemas/` (see schemas/README.md), made just as strict here.
"""

from __future__ import annotations

import copy
import functools
import json
import shutil
import subprocess
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import referencing
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAYS = K8S / "overlays"
ARGOCD = DEPLOY / "argocd"
SCHEMAS = Path(__file__).resolve().parent / "schemas"

NAMESPACE = "memory-mcp"
UID = 10001
"""The numeric user the image runs as (a Nix image has no /etc/passwd to name it)."""
PORT = 8080
IMAGE = "ghcr.io/butterflyskies/memory-mcp"
GITHUB_TOKEN_SECRET = "memory-mcp-github-token"
HTTP_TOKENS_SECRET = "memory-mcp-http-tokens"

K8S_VERSIONS = ("1.29", kubernetes_validate.latest_version())
"""The oldest Kubernetes these manifests claim to support, and the newest the validator knows."""

CRD_SCHEMAS = {
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): "httproute-gateway.networking.k8s.io-v1.json",
    ("argoproj.io/v1alpha1", "Application"): "application-argoproj.io-v1alpha1.json",
}
OBJECT_META_REF = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta#"
K8S_DEFINITIONS = "https://kubernetes.io/api/_definitions.json"


# ------------------------------------------------------------------ rendering


def kustomize_command() -> list[str]:
    """`kubectl kustomize` (kubectl has kustomize built in), else a standalone `kustomize build`."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    raise RuntimeError(
        "neither kubectl nor kustomize is on PATH: the deployment tests render deploy/k8s with "
        "`kubectl kustomize`. Install kubectl 1.27 or newer (it embeds kustomize v5; Debian 12's "
        "kubernetes-client package is too old), or a standalone kustomize v5, and run the tests again."
    )


@functools.cache
def render(directory: Path) -> tuple[dict[str, Any], ...]:
    """Every object a kustomization renders to, in order."""
    result = subprocess.run(
        [*kustomize_command(), str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"kustomize failed for {directory.relative_to(ROOT)}:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def overlay_dirs() -> list[Path]:
    return sorted(p.parent for p in OVERLAYS.glob("*/kustomization.yaml"))


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def one(objects, kind: str, name: str | None = None) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def of_kind(objects, kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of a Deployment, Job or CronJob."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    """The labels its pods get."""
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["metadata"]["labels"]


def pod_specs(objects) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload; a bare Pod counts too, so none escapes the checks."""
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Pod":
            yield where, obj["spec"]
        elif obj["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"):
            yield where, pod_spec(obj)


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """Plain `value` entries only; a variable set twice is an error kubectl would not report."""
    names = [e["name"] for e in container.get("env", [])]
    assert len(names) == len(set(names)), f"duplicate env names in {container['name']}: {names}"
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [i for i in items if i["name"] == name]
    assert len(found) == 1, f"expected one item named {name}, found {len(found)}"
    return found[0]


def server_container(objects) -> dict[str, Any]:
    return named(pod_spec(one(objects, "Deployment", "memory-mcp"))["containers"], "memory-mcp")


# ------------------------------------------------------------------ validation


def validate(obj: dict[str, Any]) -> None:
    """Raise if `obj` is not valid for its kind (strict: unknown fields are errors)."""
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CRD_SCHEMAS:
        _crd_validator(*key).validate(obj)
        return
    for version in K8S_VERSIONS:
        # SchemaNotFoundError for a kind it does not know: nothing is ever let through unchecked.
        kubernetes_validate.validate(obj, version, strict=True)


@functools.cache
def _k8s_definitions() -> referencing.Resource:
    latest = kubernetes_validate.latest_version()
    folder = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{latest}-local-strict"
    path = folder / "_definitions.json"
    return referencing.Resource.from_contents(json.loads(path.read_text()))


@functools.cache
def crd_schema(api_version: str, kind: str) -> dict[str, Any]:
    """The vendored schema, made strict: what kubernetes-validate's strict mode does for core kinds."""
    schema = json.loads((SCHEMAS / CRD_SCHEMAS[(api_version, kind)]).read_text())
    schema.pop("$comment", None)
    return _strict(schema)


def _crd_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    registry = referencing.Registry().with_resource(K8S_DEFINITIONS, _k8s_definitions())
    return jsonschema.Draft202012Validator(crd_schema(api_version, kind), registry=registry)


def _strict(node: Any) -> Any:
    """Copy of a schema node where objects with declared properties reject others, `nullable` allows
    null, and metadata refers to Kubernetes' own (strict) ObjectMeta schema."""
    if isinstance(node, list):
        return [_strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = copy.copy(node)
    if out.get("$ref") == OBJECT_META_REF:
        out["$ref"] = f"{K8S_DEFINITIONS}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    if "properties" in out:
        out["properties"] = {name: _strict(sub) for name, sub in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), (dict, list)):
            out[key] = _strict(out[key])
    for key in ("oneOf", "anyOf", "allOf"):
        if key in out:
            out[key] = [_strict(sub) for sub in out[key]]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out
