"""Every kustomization renders, every rendered object is valid for its kind, and the validation really
is strict (a misspelt field fails it)."""

from __future__ import annotations

import copy

import jsonschema
import k8s_manifests as km
import kubernetes_validate
import pytest

BASE_KINDS = {
    ("Namespace", "memory-mcp"),
    ("ServiceAccount", "memory-mcp"),
    ("ServiceAccount", "memory-mcp-bootstrap"),
    ("Role", "memory-mcp-bootstrap"),
    ("RoleBinding", "memory-mcp-bootstrap"),
    ("PersistentVolumeClaim", "memory-mcp-data"),
    ("Service", "memory-mcp"),
    ("Deployment", "memory-mcp"),
    ("NetworkPolicy", "memory-mcp"),
    ("NetworkPolicy", "memory-mcp-bootstrap"),
    ("CronJob", "memory-mcp-token-bootstrap"),
}


def test_there_is_at_least_one_overlay() -> None:
    assert [p.name for p in km.overlay_dirs()], "deploy/k8s/overlays holds no kustomization"
    assert "goddess" in [p.name for p in km.overlay_dirs()]


def test_base_renders_exactly_the_expected_objects(base) -> None:
    assert {(o["kind"], o["metadata"]["name"]) for o in base} == BASE_KINDS
    assert len(base) == len(BASE_KINDS)


def test_overlays_keep_every_base_object(overlay) -> None:
    assert BASE_KINDS <= {(o["kind"], o["metadata"]["name"]) for o in overlay}


def test_every_rendered_object_is_valid(rendered) -> None:
    for obj in rendered:
        try:
            km.validate(obj)
        except (jsonschema.ValidationError, kubernetes_validate.ValidationError) as exc:
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            pytest.fail(f"{where}: {'.'.join(map(str, exc.path))}: {exc.message}")


def test_argocd_application_is_valid(application) -> None:
    km.validate(application)


def test_argocd_application_with_image_updater_is_valid(application) -> None:
    km.validate(_merge(application, km.load_yaml(km.ARGOCD / "image-updater.yaml")))


def test_every_object_lives_in_the_namespace_and_carries_the_common_labels(rendered) -> None:
    for obj in rendered:
        meta = obj["metadata"]
        where = f"{obj['kind']}/{meta['name']}"
        if obj["kind"] != "Namespace":
            assert meta.get("namespace") == km.NAMESPACE, where
        assert meta["labels"]["app.kubernetes.io/name"] == "memory-mcp", where
        assert meta["labels"]["app.kubernetes.io/part-of"] == "memory-mcp", where


def test_no_secret_is_ever_rendered(rendered) -> None:
    """Tokens never live in git: Secrets are made in the cluster (bootstrap Job or kubectl)."""
    assert not km.of_kind(rendered, "Secret")
    assert not km.of_kind(rendered, "ConfigMap")


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        ("Deployment", lambda o: _server(o)["securityContext"].update(readOnlyRootFs=True)),
        ("Deployment", lambda o: _server(o)["startupProbe"]["httpGet"].update(port=[8080])),
        ("NetworkPolicy", lambda o: o["spec"]["ingress"][0].update(port=8080)),
        ("HTTPRoute", lambda o: o["spec"]["rules"][0].update(timeout={"request": "1h"})),
        ("HTTPRoute", lambda o: o["spec"]["rules"][0]["timeouts"].update(request="one hour")),
        ("HTTPRoute", lambda o: o["metadata"].update(label={"a": "b"})),
    ],
)
def test_validation_rejects_a_broken_object(goddess, kind, mutate) -> None:
    broken = copy.deepcopy(km.of_kind(goddess, kind)[0])
    mutate(broken)
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        km.validate(broken)


def test_validation_rejects_a_broken_application(application) -> None:
    broken = copy.deepcopy(application)
    broken["spec"]["syncPolicy"]["automated"]["selfheal"] = True
    with pytest.raises(jsonschema.ValidationError):
        km.validate(broken)


def test_validation_refuses_unknown_kinds() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        km.validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_vendored_schemas_say_where_they_came_from() -> None:
    for name in km.CRD_SCHEMAS.values():
        text = (km.SCHEMAS / name).read_text()
        assert '"$comment": "Vendored from npm @kubernetes-models/' in text, name
    readme = (km.SCHEMAS / "README.md").read_text()
    for name in km.CRD_SCHEMAS.values():
        assert name in readme


def _server(deployment):
    return km.named(km.pod_spec(deployment)["containers"], "memory-mcp")


def _merge(target, patch):
    """RFC 7396 JSON merge patch, as `kubectl patch --type merge` applies it."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge(out.get(key), value)
    return out
