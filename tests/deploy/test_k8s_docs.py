"""docs/operations.md stays true to the manifests: the files, objects, Secrets and client entry it shows
exist and fit, and any manifest it embeds is valid and as locked down as the deployed pods."""

from __future__ import annotations

import json
import re

import k8s_manifests as km
import yaml

DOC = km.ROOT / "docs" / "operations.md"


def doc() -> str:
    return DOC.read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", doc(), flags=re.DOTALL)


def test_every_deploy_path_in_the_doc_exists() -> None:
    paths = set(re.findall(r"deploy/[\w./-]+[\w/]", doc()))
    assert paths
    for path in paths:
        assert (km.ROOT / path).exists(), path


def test_every_object_the_doc_names_exists(goddess) -> None:
    names = {(o["kind"].lower(), o["metadata"]["name"]) for o in goddess}
    # A Job is started from the CronJob of the same name.
    names |= {("job", name) for kind, name in names if kind == "cronjob"}
    referenced = set(re.findall(r"\b(deployment|cronjob|job|pvc|secret)/([a-z0-9-]+)", doc()))
    referenced |= {("pvc", n) for n in re.findall(r"delete pvc\s+([a-z0-9-]+)", doc())}
    assert ("cronjob", "memory-mcp-token-bootstrap") in referenced
    for kind, name in referenced:
        kind = {"pvc": "persistentvolumeclaim"}.get(kind, kind)
        assert kind == "secret" or (kind, name) in names, f"{kind}/{name}"


def test_secrets_the_doc_creates_are_the_ones_the_pod_mounts(goddess) -> None:
    created = dict(re.findall(r"create secret generic ([a-z0-9-]+)[^\n]*--from-file=([\w.]+)", doc()))
    spec = km.pod_spec(km.one(goddess, "Deployment", "memory-mcp"))
    secrets = [v["secret"] for v in spec["volumes"] if "secret" in v]
    mounted = {secret["secretName"]: secret["items"][0]["key"] for secret in secrets}
    assert created == mounted


def test_the_claude_json_entry_reaches_the_route_with_a_bearer_token(goddess) -> None:
    (entry,) = [json.loads(block) for block in code_blocks("json") if '"mcpServers"' in block]
    (server,) = entry["mcpServers"].values()
    assert server["type"] == "http"
    host = km.one(goddess, "HTTPRoute", "memory-mcp")["spec"]["hostnames"][0]
    assert server["url"] == f"https://{host}/mcp"
    assert server["headers"]["Authorization"].startswith("Bearer ")


def test_embedded_manifests_are_valid_and_locked_down() -> None:
    manifests = re.findall(r"<<'EOF'\n(.*?)\nEOF", doc(), flags=re.DOTALL)
    documents = [obj for text in manifests for obj in yaml.safe_load_all(text)]
    objects = [obj for obj in documents if isinstance(obj, dict) and "kind" in obj]
    assert objects, "the doc shows the one-off reindex pod"
    for obj in objects:
        obj = json.loads(json.dumps(obj).replace("<the deployed tag>", "0.1.0"))
        km.validate(obj)
    for where, spec in km.pod_specs(objects):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == km.UID, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        for container in km.containers(spec):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert container["image"].startswith(km.IMAGE + ":"), where
