"""The manifests and the server agree: probe paths are routes the HTTP app really serves, the port the
server binds (read with the server's own settings code) is the one the Service and probes use, and every
MEMORY_MCP_* variable is one the server knows."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import k8s_manifests as km
import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from memory_mcp import cli
from memory_mcp.config import ENV_PREFIX, Settings, load_settings, options
from memory_mcp.server.http_app import build_http_app
from memory_mcp.server.mcp_app import build_mcp_server
from memory_mcp.supervisor import Supervisor


@pytest.fixture(scope="module")
def app():
    """The real HTTP app, built the way `memory-mcp serve` builds it, but never started."""
    supervisor = Supervisor(Settings())
    return build_http_app(supervisor, build_mcp_server(supervisor))


def served_paths(app) -> set[str]:
    return {route.path for route in app.routes if isinstance(route, Route)}


def server_settings(objects) -> Settings:
    """What the server would make of the container's args and environment, through the CLI parser."""
    container = km.server_container(objects)
    args = cli._parser().parse_args(container.get("args", []))
    assert args.handler is cli._serve, f"the container must run `memory-mcp serve`: {container.get('args')}"
    return load_settings(vars(args), km.env_of(container))


def probes(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {kind: container[kind] for kind in ("startupProbe", "readinessProbe", "livenessProbe")}


def test_the_http_app_serves_the_probe_endpoints(app) -> None:
    assert {"/healthz", "/readyz", "/mcp"} <= served_paths(app)
    client = TestClient(app, base_url="http://10.1.2.3:8080")  # a kubelet probes the pod IP
    assert client.get("/healthz").status_code == 200
    # Not started (no repository, no model): not ready, as a pod is until start-up is done.
    assert client.get("/readyz").status_code == 503


def test_probe_paths_are_served_and_split_readiness_from_liveness(rendered, app) -> None:
    container = km.server_container(rendered)
    found = probes(container)
    for kind, probe in found.items():
        assert probe["httpGet"]["path"] in served_paths(app), kind
    # The reference server points readiness at /healthz, so it takes traffic before its index is built.
    assert found["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert found["startupProbe"]["httpGet"]["path"] == "/readyz"
    # Liveness must not depend on readiness: a slow remote or a long re-index must not kill the pod.
    assert found["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_startup_probe_allows_minutes_for_model_and_index(rendered) -> None:
    startup = km.server_container(rendered)["startupProbe"]
    budget = startup["periodSeconds"] * startup["failureThreshold"]
    assert 180 <= budget <= 900, f"startup budget {budget}s"
    liveness = km.server_container(rendered)["livenessProbe"]
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 30


def test_bind_port_is_the_container_port_the_probes_and_the_service(rendered) -> None:
    settings = server_settings(rendered)
    assert settings.port == km.PORT
    assert not settings.is_loopback(), "a loopback bind is unreachable from the kubelet and the Service"
    container = km.server_container(rendered)
    ports = {p["name"]: p for p in container["ports"]}
    assert ports["http"]["containerPort"] == settings.port and ports["http"]["protocol"] == "TCP"
    for kind, probe in probes(container).items():
        assert probe["httpGet"]["port"] in ("http", settings.port), kind
    service = km.one(rendered, "Service", "memory-mcp")
    assert service["spec"]["type"] == "ClusterIP"
    (port,) = service["spec"]["ports"]
    assert port["port"] == km.PORT and port["targetPort"] in ("http", settings.port)
    deployment = km.one(rendered, "Deployment", "memory-mcp")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_every_memory_mcp_variable_is_one_the_server_reads(rendered) -> None:
    known = {option.variable for option in options().values()}
    for where, spec in km.pod_specs(rendered):
        for container in km.containers(spec):
            for entry in container.get("env", []):
                if entry["name"].startswith(ENV_PREFIX):
                    assert entry["name"] in known, f"{where}: unknown variable {entry['name']}"


def test_model_comes_from_the_image(rendered) -> None:
    """The image bakes in MEMORY_MCP_MODEL (read-only /nix/store); the manifests never override it."""
    for where, spec in km.pod_specs(rendered):
        for container in km.containers(spec):
            assert "MEMORY_MCP_MODEL" not in {e["name"] for e in container.get("env", [])}, where


def test_repository_and_cache_live_on_the_persistent_volume(rendered) -> None:
    settings = server_settings(rendered)
    spec = km.pod_spec(km.one(rendered, "Deployment", "memory-mcp"))
    mounts = {m["mountPath"]: m["name"] for m in km.server_container(rendered)["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}

    def volume_of(path) -> dict[str, Any]:
        path = PurePosixPath(path)
        mount = max((PurePosixPath(m) for m in mounts if path.is_relative_to(m)), key=lambda m: len(m.parts))
        return volumes[mounts[str(mount)]]

    for path in (settings.repo_path, settings.cache_dir):
        claim = volume_of(path).get("persistentVolumeClaim", {})
        assert claim.get("claimName") == "memory-mcp-data", path
    assert "emptyDir" in volume_of("/tmp/x")
    assert str(settings.repo_path) == "/data/repo" and str(settings.cache_dir) == "/data/cache"


def test_token_files_are_where_the_secrets_are_mounted(rendered) -> None:
    container = km.server_container(rendered)
    env = km.env_of(container)
    spec = km.pod_spec(km.one(rendered, "Deployment", "memory-mcp"))
    volumes = {v["name"]: v for v in spec["volumes"]}
    by_secret = {}
    for mount in container["volumeMounts"]:
        secret = volumes[mount["name"]].get("secret")
        if secret:
            for item in secret["items"]:
                path = PurePosixPath(mount["mountPath"]) / item["path"]
                by_secret[(secret["secretName"], item["key"])] = str(path)
    assert env["MEMORY_MCP_TOKENS_FILE"] == by_secret[(km.HTTP_TOKENS_SECRET, "tokens.toml")]
    assert env["MEMORY_MCP_GITHUB_TOKEN_FILE"] == by_secret[(km.GITHUB_TOKEN_SECRET, "token")]
    # The server's documented default, so the variable could be dropped without changing anything.
    assert env["MEMORY_MCP_GITHUB_TOKEN_FILE"] == "/var/run/secrets/memory-mcp/github/token"


def test_model_threads_match_the_cpu_limit(rendered) -> None:
    """llama.cpp would size its pool from the node's cores; threads beyond the CPU limit only throttle."""
    container = km.server_container(rendered)
    settings = server_settings(rendered)
    limit = container["resources"]["limits"]["cpu"]
    cores = int(limit[:-1]) / 1000 if limit.endswith("m") else float(limit)
    assert settings.threads == max(1, int(cores))


def test_nothing_writes_to_the_read_only_root(rendered) -> None:
    for where, spec in km.pod_specs(rendered):
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in km.containers(spec):
            mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
            assert "emptyDir" in mounts["/tmp"], where
            assert km.env_of(container)["HOME"] == "/tmp", where
