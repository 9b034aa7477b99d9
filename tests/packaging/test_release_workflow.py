"""The release workflow (.github/workflows/release.yml) cannot run here; this reads it and checks that it does
what the release needs: flake check, image build, skopeo push to ghcr.io, SBOM and provenance attestations,
the executable built, smoke-tested and attached to the release, with only the permissions each job needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture(scope="module")
def workflow(repo_root: Path) -> dict[str, Any]:
    return yaml.safe_load((repo_root / ".github" / "workflows" / "release.yml").read_text())


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job["steps"]


def runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def uses(job: dict[str, Any]) -> list[str]:
    return [step["uses"].split("@")[0] for step in steps(job) if "uses" in step]


def test_triggers(workflow: dict[str, Any]) -> None:
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    assert "pull_request" in triggers and "workflow_dispatch" in triggers
    assert workflow["permissions"] == {"contents": "read"}


def test_nix_job_checks_builds_pushes_and_attests(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["nix"]
    systems = {entry["system"] for entry in job["strategy"]["matrix"]["include"]}
    assert systems == {"x86_64-linux", "aarch64-linux"}
    script = runs(job)
    assert "nix flake check" in script
    assert "nix run .#memory-mcp" in script
    assert "nix build .#image" in script
    assert "skopeo copy" in script and "docker://$IMAGE" in script and "ghcr.io" in script
    assert {"actions/attest-build-provenance", "actions/attest-sbom", "anchore/sbom-action"} <= set(uses(job))
    assert job["permissions"] == {
        "contents": "read",
        "packages": "write",
        "id-token": "write",
        "attestations": "write",
    }
    pushes = [step for step in steps(job) if "skopeo copy" in step.get("run", "")]
    assert all(step.get("if") == "env.PUBLISH == 'true'" for step in pushes)


def test_executable_is_built_smoke_tested_and_released(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["standalone"]
    script = runs(job)
    assert "scripts/build-standalone.py" in script
    assert "tests/packaging/test_standalone.py" in script and "MEMORY_MCP_TEST_MODEL" in script
    assert any(step.get("env", {}).get("MEMORY_MCP_STANDALONE") for step in steps(job))
    assert "sha256sum --check" in script
    release = workflow["jobs"]["release"]
    assert set(release["needs"]) >= {"nix", "standalone"}
    assert release["permissions"] == {"contents": "write"}
    assert "gh release create" in runs(release)


def test_multi_arch_index_is_attested(workflow: dict[str, Any]) -> None:
    job = workflow["jobs"]["manifest"]
    assert "imagetools create" in runs(job)
    assert "actions/attest-build-provenance" in uses(job)
