"""The k8s-secret store, driven by the real `kubernetes` client against a loopback Kubernetes Secrets API."""

from __future__ import annotations

import base64
import os
import socket

from kubernetes import config
from kubernetes.client import CoreV1Api

from memory_mcp.auth.stores import SECRET_NAME

SECRET = f"/api/v1/namespaces/memory-mcp/secrets/{SECRET_NAME}"
COLLECTION = "/api/v1/namespaces/memory-mcp/secrets"
MANAGED = {"app.kubernetes.io/managed-by": "memory-mcp"}


def login(run, token: str, *extra: str):
    return run("auth", "login", "--with-token", "--store", "k8s-secret", *extra, stdin=token + "\n")


def test_login_creates_a_labelled_secret(kubernetes, run, token: str, no_leak) -> None:
    result = login(run, token)
    assert result.code == 0, result.err
    assert kubernetes.requests == [("POST", COLLECTION)]
    stored = kubernetes.secrets[("memory-mcp", SECRET_NAME)]
    assert stored["metadata"]["labels"] == MANAGED and stored["type"] == "Opaque"
    assert kubernetes.value("memory-mcp", SECRET_NAME) == token
    assert f"Secret memory-mcp/{SECRET_NAME}" in result.err and token[-4:] in result.err
    no_leak(token, result.out, result.err)
    # Read it back over the API with the same client library, as a pod's tooling would.
    api = CoreV1Api(config.new_client_from_config(config_file=os.environ["KUBECONFIG"], persist_config=False))
    secret = api.read_namespaced_secret(SECRET_NAME, "memory-mcp")
    assert base64.b64decode(secret.data["token"]).decode() == token


def test_login_again_patches_only_our_key_and_label(kubernetes, run, token: str) -> None:
    kubernetes.seed(
        "memory-mcp",
        SECRET_NAME,
        {"token": "old-token-value-0000", "note": "kept"},
        annotations={"argocd.argoproj.io/sync-options": "Prune=false"},
    )
    result = login(run, token)
    assert result.code == 0, result.err
    assert kubernetes.requests == [("POST", COLLECTION), ("PATCH", SECRET)]
    stored = kubernetes.secrets[("memory-mcp", SECRET_NAME)]
    assert kubernetes.value("memory-mcp", SECRET_NAME) == token
    assert kubernetes.value("memory-mcp", SECRET_NAME, "note") == "kept"
    assert stored["metadata"]["annotations"] == {"argocd.argoproj.io/sync-options": "Prune=false"}
    assert stored["metadata"]["labels"] == MANAGED


def test_namespace_from_flag_or_environment(kubernetes, run, token: str, monkeypatch) -> None:
    assert login(run, token, "--namespace", "team-a").code == 0
    assert kubernetes.value("team-a", SECRET_NAME) == token
    kubernetes.secrets.clear()
    monkeypatch.setenv("MEMORY_MCP_K8S_NAMESPACE", "team-a")
    assert login(run, token).code == 0
    assert kubernetes.value("team-a", SECRET_NAME) == token


def test_missing_namespace_is_not_found(kubernetes, run, token: str) -> None:
    result = login(run, token, "--namespace", "nowhere")
    assert result.code == 3
    assert 'namespaces "nowhere" not found' in result.err


def test_invalid_namespace_is_refused_before_any_request(kubernetes, run, token: str) -> None:
    result = login(run, token, "--namespace", "Not_A_Namespace")
    assert result.code == 2
    assert kubernetes.requests == []


def test_logout_deletes_the_secret_then_finds_nothing(kubernetes, run, token: str, no_leak) -> None:
    assert login(run, token).code == 0
    result = run("auth", "logout", "--store", "k8s-secret")
    assert result.code == 0, result.err
    assert "Removed" in result.err
    assert kubernetes.requests[1:] == [("GET", SECRET), ("DELETE", SECRET)]
    assert kubernetes.secrets == {}
    again = run("auth", "logout", "--store", "k8s-secret")
    assert again.code == 0 and "No token stored" in again.err
    no_leak(token, result.out, result.err, again.out, again.err)


def test_logout_deletes_a_secret_made_by_hand(kubernetes, run) -> None:
    kubernetes.seed("memory-mcp", SECRET_NAME, {"token": "made-with-kubectl-0000"})  # no labels
    assert run("auth", "logout", "--store", "k8s-secret").code == 0
    assert kubernetes.secrets == {}


def test_logout_leaves_a_secret_another_tool_manages(kubernetes, run) -> None:
    kubernetes.seed(
        "memory-mcp",
        SECRET_NAME,
        {"token": "synced-from-vault-0000"},
        labels={"app.kubernetes.io/managed-by": "external-secrets"},
    )
    result = run("auth", "logout", "--store", "k8s-secret")
    assert result.code == 4
    assert "managed by external-secrets" in result.err
    assert ("memory-mcp", SECRET_NAME) in kubernetes.secrets


def test_rejected_credentials_are_unavailable(kubernetes, kubeconfig, run, token: str) -> None:
    kubeconfig(kubernetes.url, "wrong-bearer")
    result = login(run, token)
    assert result.code == 5
    assert "Unauthorized" in result.err and kubernetes.secrets == {}


def test_unreachable_api_server_is_unavailable(kubeconfig, run, token: str, no_leak) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    kubeconfig(f"http://127.0.0.1:{port}", "some-bearer")
    result = login(run, token)
    assert result.code == 5
    assert "cannot store the token" in result.err
    no_leak(token, result.out, result.err)


def test_no_kubernetes_configuration_fails_before_reading_the_token(run, token: str) -> None:
    result = login(run, token)  # KUBECONFIG names a missing file, and there is no in-cluster service account
    assert result.code == 5
    assert "no usable Kubernetes configuration" in result.err
