"""Deployment shape, resources, storage and network policy."""

from __future__ import annotations

import ipaddress

import k8s_manifests as km


def test_one_replica_replaced_not_rolled(rendered) -> None:
    """One writer per repository on a ReadWriteOnce volume: the old pod stops before the new one starts."""
    deployment = km.one(rendered, "Deployment", "memory-mcp")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert km.pod_spec(deployment)["terminationGracePeriodSeconds"] >= 30


def test_server_resources(rendered) -> None:
    resources = km.server_container(rendered)["resources"]
    assert resources["requests"] == {"cpu": "250m", "memory": "512Mi"}
    assert resources["limits"] == {"cpu": "1", "memory": "1Gi"}


def test_tmp_is_a_bounded_empty_dir(rendered) -> None:
    for where, spec in km.pod_specs(rendered):
        (tmp,) = [v for v in spec["volumes"] if v["name"] == "tmp"]
        assert tmp["emptyDir"]["sizeLimit"], where


def test_base_claim_uses_the_default_storage_class(base) -> None:
    claim = km.one(base, "PersistentVolumeClaim", "memory-mcp-data")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]


def test_argocd_never_prunes_or_deletes_the_data(rendered) -> None:
    for kind, name in (("PersistentVolumeClaim", "memory-mcp-data"), ("Namespace", km.NAMESPACE)):
        options = km.one(rendered, kind, name)["metadata"]["annotations"]["argocd.argoproj.io/sync-options"]
        assert {"Prune=false", "Delete=false"} <= set(options.split(",")), kind


def test_server_network_policy_admits_only_http_and_emits_only_dns_and_https(rendered) -> None:
    policy = km.one(rendered, "NetworkPolicy", "memory-mcp")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= km.pod_labels(_server(rendered)).items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]

    (ingress,) = policy["ingress"]
    assert ingress["ports"] == [{"port": km.PORT, "protocol": "TCP"}]

    ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP")}
    for rule in policy["egress"]:
        if {p["port"] for p in rule["ports"]} != {443}:
            assert {p["port"] for p in rule["ports"]} == {53}
            continue
        # The public internet only: nothing in the cluster, on the nodes or at a metadata endpoint.
        assert all(set(peer) == {"ipBlock"} for peer in rule["to"])
        blocks = [peer["ipBlock"] for peer in rule["to"]]
        for private in ("10.1.2.3", "172.20.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "fd00::1"):
            assert not any(_allows(block, private) for block in blocks), private
        for public in ("140.82.112.3", "2606:50c0:8000::154"):  # github.com's kind of address
            assert any(_allows(block, public) for block in blocks), public


def test_bootstrap_network_policy_admits_nothing(rendered) -> None:
    policy = km.one(rendered, "NetworkPolicy", "memory-mcp-bootstrap")["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= km.pod_labels(_bootstrap(rendered)).items()
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["ingress"] == []
    ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP")}


def test_server_policy_does_not_select_the_bootstrap_pod_and_back(rendered) -> None:
    def selector(name):
        return km.one(rendered, "NetworkPolicy", name)["spec"]["podSelector"]["matchLabels"].items()

    assert not selector("memory-mcp") <= km.pod_labels(_bootstrap(rendered)).items()
    assert not selector("memory-mcp-bootstrap") <= km.pod_labels(_server(rendered)).items()


def _server(objects):
    return km.one(objects, "Deployment", "memory-mcp")


def _bootstrap(objects):
    return km.one(objects, "CronJob", "memory-mcp-token-bootstrap")


def _allows(block: dict, address: str) -> bool:
    ip = ipaddress.ip_address(address)
    network = ipaddress.ip_network(block["cidr"])
    if ip.version != network.version or ip not in network:
        return False
    return not any(ip in ipaddress.ip_network(excluded) for excluded in block.get("except", []))
