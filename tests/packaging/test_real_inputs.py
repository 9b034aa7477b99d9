"""nix/python.nix with the real flake inputs, offline: uv2nix reads uv.lock and builds the package set that
the image and the checks install, for both systems and the pinned nixpkgs' Python
(tests/packaging/real-inputs.nix).
A lock change that Nix cannot build from (a package with no wheel for a platform, a lost sdist, a wrong
build system) fails here instead of on a user's machine.

The inputs come from `shared/nix-inputs` beside the repository (CI copies it there), or MEMORY_MCP_NIX_INPUTS;
they are read only by these tests, never by the product.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("real-inputs.nix")
INPUTS_ENV = "MEMORY_MCP_NIX_INPUTS"
SYSTEMS = {"x86_64-linux": "x86_64", "aarch64-linux": "aarch64"}
# python3 of nixos-26.05 (flake.lock's nixpkgs), which is not available offline to read it from.
PINNED_PYTHON = "3.13.9"
SOURCE_BUILDS = {"llama-cpp-python", "hnswlib"}
FLAKE_INPUTS = {
    "pyproject-nix": "pyproject.nix",
    "uv2nix": "uv2nix",
    "pyproject-build-systems": "build-system-pkgs",
}
ELSEWHERE = re.compile(r"sys_platform == '(win32|darwin|emscripten)'")
"""Markers under which a locked package is installed on other platforms only."""


def find_inputs() -> Path:
    given = os.environ.get(INPUTS_ENV)
    candidates = [Path(given)] if given else [p / "shared" / "nix-inputs" for p in ROOT.parents]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    pytest.fail(
        f"no shared/nix-inputs beside the repository (or {INPUTS_ENV}): the real flake inputs are needed"
    )


@pytest.fixture(scope="session")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("nix-inputs")
    archives = sorted(find_inputs().glob("*.tar.gz"))
    for archive in archives:
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="tar")
    unpacked = {p.name for p in folder.iterdir()}
    assert {"pyproject.nix", "uv2nix", "build-system-pkgs", "nixpkgs.lib"} <= unpacked, unpacked
    return folder


@pytest.fixture(scope="session")
def lock() -> dict[str, Any]:
    return tomllib.loads((ROOT / "uv.lock").read_text())


def evaluate(nix_instantiate: str, inputs: Path, system: str, python: str = PINNED_PYTHON) -> dict[str, Any]:
    expression = (
        f'import {HARNESS} {{ inputs = {inputs}; root = {ROOT}; system = "{system}"; '
        f'pythonVersion = "{python}"; }}'
    )
    result = subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "--readonly-mode", "-E", expression],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module", params=sorted(SYSTEMS))
def evaluated(request, nix_instantiate: str, inputs: Path) -> tuple[str, dict[str, Any]]:
    return request.param, evaluate(nix_instantiate, inputs, request.param)


def test_the_inputs_are_flake_locks_revisions(inputs: Path, nix_instantiate: str) -> None:
    nodes = json.loads((ROOT / "flake.lock").read_text())["nodes"]
    nix_hash = Path(nix_instantiate).with_name("nix-hash")
    for node, folder in FLAKE_INPUTS.items():
        result = subprocess.run(
            [nix_hash, "--type", "sha256", inputs / folder], capture_output=True, text=True, check=True
        )
        sri = "sha256-" + base64.b64encode(bytes.fromhex(result.stdout.strip())).decode()
        assert sri == nodes[node]["locked"]["narHash"], f"{folder} is not flake.lock's {node}"


def test_every_locked_package_is_a_wheel_or_one_of_the_two_source_builds(evaluated, lock) -> None:
    system, result = evaluated
    cpu = SYSTEMS[system]
    packages = {d["name"]: d for d in result["all"]}
    locked = {p["name"]: p for p in lock["package"]}
    for name, drv in packages.items():
        if name == "memory-mcp":
            continue
        if name in SOURCE_BUILDS:
            assert drv["format"] == "pyproject", name
            continue
        assert drv["format"] == "wheel" and drv["src"].endswith(".whl"), f"{name} on {system}: {drv}"
        tags = drv["src"].rsplit("/", 1)[1].removesuffix(".whl").split("-")[-3:]
        assert tags[2] == "any" or cpu in tags[2], f"{name}: {tags} is not for {system}"
        assert tags[1] in ("none", "abi3") or tags[1] == "cp" + PINNED_PYTHON.replace(".", "")[:3], tags
    # Only the build systems (from pyproject-build-systems) come from outside the lock.
    assert set(packages) - set(locked) <= {
        "calver",
        "flit-core",
        "hatch-vcs",
        "hatchling",
        "pathspec",
        "pybind11",
        "scikit-build-core",
        "setuptools-scm",
        "tomli",
        "trove-classifiers",
        "vcs-versioning",
        "wheel",
    }
    for name in set(locked) - set(packages):
        uses = [
            d.get("marker", "")
            for p in lock["package"]
            for d in [*p.get("dependencies", []), *sum(p.get("optional-dependencies", {}).values(), [])]
            if d["name"] == name
        ]
        assert uses and all(ELSEWHERE.search(marker) for marker in uses), f"{name} is locked but not in Nix"
    for name in locked.keys() & packages.keys() - {"memory-mcp"}:
        versions = {p["version"] for p in lock["package"] if p["name"] == name}
        assert packages[name]["version"] in versions, name


def test_the_source_builds_are_the_locked_sdists_with_dev_py_flags(evaluated, lock, dev) -> None:
    system, result = evaluated
    packages = {d["name"]: d for d in result["all"]}
    flags = dev.portable_build_variables(SYSTEMS[system])
    for name in SOURCE_BUILDS:
        (locked,) = (p for p in lock["package"] if p["name"] == name)
        drv = packages[name]
        assert (drv["version"], drv["src"], drv["srcHash"]) == (
            locked["version"],
            locked["sdist"]["url"],
            locked["sdist"]["hash"],
        )
        assert drv["env"] == flags[name]
    llama = packages["llama-cpp-python"]
    assert {"cmake", "ninja", "scikit-build-core"} <= set(llama["nativeBuildInputs"])
    assert {"setuptools", "pybind11", "numpy"} <= set(packages["hnswlib"]["nativeBuildInputs"])
    assert llama["version"] == "0.3.36"


def test_build_systems_are_wheels_too(evaluated) -> None:
    """overlays.wheel: hatchling (memory-mcp's own), trove-classifiers and the rest are wheels, not sdists."""
    _, result = evaluated
    packages = {d["name"]: d for d in result["all"]}
    assert {"hatchling", "trove-classifiers", "pluggy"} <= set(packages["memory-mcp"]["nativeBuildInputs"])
    for name in ("hatchling", "trove-classifiers", "calver", "scikit-build-core", "setuptools", "pybind11"):
        assert packages[name]["format"] == "wheel", name


def test_the_runtime_environment_is_the_lock_s_default_dependencies(evaluated, lock) -> None:
    _, result = evaluated
    runtime = {d["name"] for d in result["runtime"]}
    assert {"memory-mcp", "llama-cpp-python", "hnswlib", "mcp", "pygit2", "numpy", "uvicorn"} <= runtime
    assert not runtime & {"pytest", "hypothesis", "pyinstaller", "gguf"}, "test tools stay out of the image"
    assert result["version"] == lock_version(lock)


def lock_version(lock: dict[str, Any]) -> str:
    return next(p["version"] for p in lock["package"] if p["name"] == "memory-mcp")


def test_a_python_the_lock_does_not_support_fails_the_evaluation(nix_instantiate: str, inputs: Path) -> None:
    """The harness notices what Nix would: uv.lock's requires-python is >= 3.11."""
    with pytest.raises(AssertionError, match="assert"):
        evaluate(nix_instantiate, inputs, "x86_64-linux", python="3.10.14")
