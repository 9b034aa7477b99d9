"""Pod security (the "restricted" standard and then some), service accounts and the bootstrap RBAC, on
the rendered base and every overlay."""

from __future__ import annotations

import k8s_manifests as km


def test_namespace_enforces_the_restricted_pod_security_standard(rendered) -> None:
    labels = km.one(rendered, "Namespace")["metadata"]["labels"]
    for mode in ("enforce", "warn", "audit"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"


def test_there_are_exactly_two_pod_templates(rendered) -> None:
    """The server and the token bootstrap; a new workload must be added to these tests deliberately."""
    assert sorted(name for name, _ in km.pod_specs(rendered)) == [
        "CronJob/memory-mcp-token-bootstrap",
        "Deployment/memory-mcp",
    ]


def test_every_pod_runs_as_the_images_numeric_non_root_user(rendered) -> None:
    for where, spec in km.pod_specs(rendered):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] == km.UID and pod["runAsGroup"] == km.UID, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec.get("hostNetwork", False) is False and spec.get("hostPID", False) is False, where
        assert spec.get("hostIPC", False) is False, where
        assert spec.get("enableServiceLinks") is False, where
        for container in km.containers(spec):
            sc = container["securityContext"]
            at = f"{where} container {container['name']}"
            assert sc["runAsNonRoot"] is True, at
            # Numeric ids, equal to the pod's and the image's: a name could not be checked for non-root.
            assert sc["runAsUser"] == km.UID and sc["runAsGroup"] == km.UID, at
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["readOnlyRootFilesystem"] is True, at
            assert sc.get("privileged", False) is False, at
            assert sc["capabilities"] == {"drop": ["ALL"]}, at
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, at


def test_no_pod_uses_host_paths_or_probes_that_need_a_shell(rendered) -> None:
    """The image has no shell: probes are HTTP, never `exec`."""
    for where, spec in km.pod_specs(rendered):
        for volume in spec.get("volumes", []):
            assert "hostPath" not in volume, f"{where}: {volume['name']}"
        for container in km.containers(spec):
            for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                if kind in container:
                    assert set(container[kind]) & {"exec", "tcpSocket", "grpc"} == set(), f"{where} {kind}"
            assert "command" not in container, f"{where}: keep the image's entrypoint (memory-mcp)"


def test_every_container_uses_the_project_image(rendered) -> None:
    for where, spec in km.pod_specs(rendered):
        for container in km.containers(spec):
            assert container["image"].split(":")[0].split("@")[0] == km.IMAGE, where


def test_every_container_has_requests_and_limits(rendered) -> None:
    for where, spec in km.pod_specs(rendered):
        for container in km.containers(spec):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{where}: {kind}"


def test_runtime_service_account_has_no_token_and_no_rights(rendered) -> None:
    account = km.one(rendered, "ServiceAccount", "memory-mcp")
    assert account["automountServiceAccountToken"] is False
    spec = km.pod_spec(km.one(rendered, "Deployment", "memory-mcp"))
    assert spec["serviceAccountName"] == "memory-mcp"
    assert spec["automountServiceAccountToken"] is False
    for binding in [*km.of_kind(rendered, "RoleBinding"), *km.of_kind(rendered, "ClusterRoleBinding")]:
        for subject in binding["subjects"]:
            assert (subject["kind"], subject["name"]) != ("ServiceAccount", "memory-mcp"), binding


def test_bootstrap_account_gets_a_token_only_in_the_bootstrap_pod(rendered) -> None:
    assert km.one(rendered, "ServiceAccount", "memory-mcp-bootstrap")["automountServiceAccountToken"] is False
    spec = km.pod_spec(km.one(rendered, "CronJob", "memory-mcp-token-bootstrap"))
    assert spec["serviceAccountName"] == "memory-mcp-bootstrap"
    assert spec["automountServiceAccountToken"] is True


def test_bootstrap_role_reaches_only_the_git_token_secret(rendered) -> None:
    assert not km.of_kind(rendered, "ClusterRole") and not km.of_kind(rendered, "ClusterRoleBinding")
    role = km.one(rendered, "Role", "memory-mcp-bootstrap")
    granted: set[str] = set()
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""] and rule["resources"] == ["secrets"], rule
        assert "*" not in rule["verbs"]
        if rule["verbs"] == ["create"]:
            # `create` cannot be limited by name in Kubernetes RBAC; a resourceNames list would only
            # make the rule deny every create. Alone, it grants no read of any Secret.
            assert "resourceNames" not in rule
        else:
            assert rule["resourceNames"] == [km.GITHUB_TOKEN_SECRET], rule
            assert set(rule["verbs"]) <= {"get", "update", "patch"}, rule
        granted.update(rule["verbs"])
    assert granted == {"create", "get", "update", "patch"}


def test_bootstrap_role_is_bound_to_the_bootstrap_account_only(rendered) -> None:
    binding = km.one(rendered, "RoleBinding", "memory-mcp-bootstrap")
    role = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "memory-mcp-bootstrap"}
    assert binding["roleRef"] == role
    account = {"kind": "ServiceAccount", "name": "memory-mcp-bootstrap", "namespace": km.NAMESPACE}
    assert binding["subjects"] == [account]


def test_bootstrap_job_runs_the_device_flow_into_the_k8s_secret_store(rendered) -> None:
    cron = km.one(rendered, "CronJob", "memory-mcp-token-bootstrap")
    assert cron["spec"]["suspend"] is True, "a template only: started by hand with kubectl create job --from"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    assert 0 < job["activeDeadlineSeconds"] <= 3600
    container = km.named(km.pod_spec(cron)["containers"], "auth-login")
    args = container["args"]
    assert args[:4] == ["auth", "login", "--store", "k8s-secret"]
    namespace = args[args.index("--namespace") + 1]
    assert namespace == "$(POD_NAMESPACE)"
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    # The same image as the server, so the auth code matches the server reading the token.
    server_image = km.server_container(rendered)["image"]
    assert container["image"] == server_image


def test_secrets_are_mounted_read_only_and_not_world_readable(rendered) -> None:
    spec = km.pod_spec(km.one(rendered, "Deployment", "memory-mcp"))
    assert spec["securityContext"]["fsGroup"] == km.UID, "secret files are root-owned: readable via fsGroup"
    secrets = {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}
    assert {s["secretName"] for s in secrets.values()} == {km.GITHUB_TOKEN_SECRET, km.HTTP_TOKENS_SECRET}
    for secret in secrets.values():
        assert secret["defaultMode"] & 0o007 == 0, "no access for others"
        assert secret["defaultMode"] & 0o040, "group-readable, or uid 10001 cannot read it"
    mounts = {m["name"]: m for m in km.server_container(rendered)["volumeMounts"]}
    for name in secrets:
        assert mounts[name]["readOnly"] is True
    # The server refuses to start on a non-loopback address without HTTP tokens: wait for the Secret.
    http = next(s for s in secrets.values() if s["secretName"] == km.HTTP_TOKENS_SECRET)
    assert http["optional"] is False
    # The git token arrives later (bootstrap Job); the server must be able to start before it.
    github = next(s for s in secrets.values() if s["secretName"] == km.GITHUB_TOKEN_SECRET)
    assert github["optional"] is True


def test_git_token_is_never_an_environment_variable(rendered) -> None:
    for where, spec in km.pod_specs(rendered):
        for container in km.containers(spec):
            for entry in container.get("env", []):
                assert entry["name"] != "MEMORY_MCP_GITHUB_TOKEN", where
                assert "secretKeyRef" not in entry.get("valueFrom", {}), f"{where}: {entry['name']}"
            assert "envFrom" not in container, where
