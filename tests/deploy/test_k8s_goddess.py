"""The `goddess` overlay and the Argo CD Application that deploys it."""

from __future__ import annotations

import re

import k8s_manifests as km

GODDESS = km.OVERLAYS / "goddess"
HOST = "memories.svc.echoes"


def _seconds(duration: str) -> int:
    """A Gateway API duration (`1h`, `90s`, `1h30m`) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"([0-9]+)(ms|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return int(sum(int(n) * units[u] for n, u in parts))


def test_image_is_pinned_by_kustomize(goddess) -> None:
    images = km.load_yaml(GODDESS / "kustomization.yaml")["images"]
    (image,) = images
    assert image["name"] == km.IMAGE and "newName" not in image
    tag = image["newTag"]
    assert tag and tag != "latest"
    for where, spec in km.pod_specs(goddess):
        for container in km.containers(spec):
            assert container["image"] == f"{km.IMAGE}:{tag}", where


def test_storage_is_ceph_block(goddess) -> None:
    claim = km.one(goddess, "PersistentVolumeClaim", "memory-mcp-data")
    assert claim["spec"]["storageClassName"] == "ceph-block"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_route_attaches_to_the_external_gateway_for_the_host(goddess) -> None:
    route = km.one(goddess, "HTTPRoute", "memory-mcp")
    (parent,) = route["spec"]["parentRefs"]
    assert parent["name"] == "gw-ext" and parent["sectionName"] == "https"
    assert parent.get("kind", "Gateway") == "Gateway"
    assert parent.get("group", "gateway.networking.k8s.io") == "gateway.networking.k8s.io"
    assert route["spec"]["hostnames"] == [HOST]


def test_route_sends_everything_to_the_service_with_long_timeouts(goddess) -> None:
    route = km.one(goddess, "HTTPRoute", "memory-mcp")
    service = km.one(goddess, "Service", "memory-mcp")
    (rule,) = route["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "PathPrefix", "value": "/"}}]
    (backend,) = rule["backendRefs"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"] == service["spec"]["ports"][0]["port"] == km.PORT
    # An MCP call may wait minutes (start-up, big recalls) and a stream stays open: no 15-60 s default.
    request = _seconds(rule["timeouts"]["request"])
    assert request >= 600
    assert _seconds(rule["timeouts"]["backendRequest"]) <= request


def test_server_accepts_the_gateways_host_name(goddess) -> None:
    env = km.env_of(km.server_container(goddess))
    hosts = env["MEMORY_MCP_ALLOWED_HOST"].split(",")
    assert HOST in hosts
    route = km.one(goddess, "HTTPRoute", "memory-mcp")
    assert set(route["spec"]["hostnames"]) <= set(hosts)
    # And in-cluster callers, by the Service's names in this namespace.
    assert f"memory-mcp.{km.NAMESPACE}.svc" in hosts


def test_server_syncs_with_an_https_remote(goddess) -> None:
    env = km.env_of(km.server_container(goddess))
    assert env["MEMORY_MCP_REMOTE_URL"].startswith("https://")
    assert "@" not in env["MEMORY_MCP_REMOTE_URL"], "credentials never go in the URL"
    assert env["MEMORY_MCP_BRANCH"] == "main"


def test_application_syncs_the_goddess_overlay(application) -> None:
    spec = application["spec"]
    assert application["metadata"]["namespace"] == "argocd"
    assert (km.ROOT / spec["source"]["path"]).resolve() == GODDESS
    assert spec["source"]["repoURL"].startswith("https://")
    assert spec["source"]["targetRevision"] == "main"
    assert spec["destination"] == {"server": "https://kubernetes.default.svc", "namespace": km.NAMESPACE}


def test_application_destination_matches_the_overlays_namespace(application, goddess) -> None:
    namespaces = {o["metadata"].get("namespace") for o in goddess if o["kind"] != "Namespace"}
    assert namespaces == {application["spec"]["destination"]["namespace"]}


def test_application_sync_policy(application) -> None:
    policy = application["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert "CreateNamespace=true" in policy["syncOptions"]
    retry = policy["retry"]
    assert retry["limit"] > 0 and retry["backoff"]["duration"] and retry["backoff"]["maxDuration"]
    assert "resources-finalizer.argocd.argoproj.io" in application["metadata"]["finalizers"]


def test_image_updater_follows_the_overlays_image() -> None:
    annotations = km.load_yaml(km.ARGOCD / "image-updater.yaml")["metadata"]["annotations"]
    prefix = "argocd-image-updater.argoproj.io/"
    alias, image = annotations[prefix + "image-list"].split("=")
    assert image == km.IMAGE
    (overlay_image,) = km.load_yaml(GODDESS / "kustomization.yaml")["images"]
    assert annotations[f"{prefix}{alias}.kustomize.image-name"] == overlay_image["name"]
    allowed = annotations[f"{prefix}{alias}.allow-tags"]
    assert allowed.startswith("regexp:")
    pattern = re.compile(allowed.removeprefix("regexp:"))
    assert pattern.match(overlay_image["newTag"]), "today's tag must be one the updater would pick"
    assert not pattern.match("latest") and not pattern.match("0.2.0-rc1")
    assert annotations[prefix + "write-back-method"] == "git"
    assert annotations[prefix + "write-back-target"] == "kustomization"
