"""flake.lock: valid JSON in Nix's format 7, every input reachable from the root pinned to a revision and a
content hash, and consistent with flake.nix's inputs and their `follows`."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="module")
def lock(repo_root: Path) -> dict[str, Any]:
    return json.loads((repo_root / "flake.lock").read_text())


@pytest.fixture(scope="module")
def flake_inputs(nix_eval) -> dict[str, Any]:
    return nix_eval("(import ./flake.nix).inputs")


def reachable(lock: dict[str, Any]) -> set[str]:
    """Node names reachable from the root, resolving `follows` paths the way Nix does."""
    nodes = lock["nodes"]

    def resolve(path: list[str]) -> str:
        node = lock["root"]
        for name in path:
            target = nodes[node]["inputs"][name]
            node = target if isinstance(target, str) else resolve(target)
        return node

    seen: set[str] = set()
    todo = [lock["root"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for target in nodes[name].get("inputs", {}).values():
            todo.append(target if isinstance(target, str) else resolve(target))
    return seen


def test_lock_is_format_7_with_a_root(lock: dict[str, Any]) -> None:
    assert lock["version"] == 7
    assert lock["root"] in lock["nodes"]


def test_every_reachable_input_is_pinned(lock: dict[str, Any]) -> None:
    names = reachable(lock) - {lock["root"]}
    assert names, "the lock pins nothing"
    assert names == set(lock["nodes"]) - {lock["root"]}, "the lock holds nodes nothing uses"
    for name in sorted(names):
        locked = lock["nodes"][name]["locked"]
        assert locked["type"] == "github", name
        assert locked["owner"] and locked["repo"], name
        assert re.fullmatch(r"[0-9a-f]{40}", locked["rev"]), f"{name}: rev {locked.get('rev')!r}"
        algorithm, _, digest = locked["narHash"].partition("-")
        assert algorithm == "sha256" and len(base64.b64decode(digest, validate=True)) == 32, name
        if "lastModified" in locked:
            assert isinstance(locked["lastModified"], int) and locked["lastModified"] > 1_700_000_000, name


def test_lock_matches_flake_inputs(lock: dict[str, Any], flake_inputs: dict[str, Any]) -> None:
    root_inputs = lock["nodes"][lock["root"]]["inputs"]
    assert set(root_inputs) == set(flake_inputs)
    for name, spec in flake_inputs.items():
        node = lock["nodes"][root_inputs[name]]
        kind, _, rest = spec["url"].partition(":")
        assert kind == "github", spec["url"]
        owner, repo, *ref = rest.split("/")
        original = node["original"]
        assert (original["type"], original["owner"], original["repo"]) == ("github", owner, repo), name
        assert original.get("ref") == (ref[0] if ref else None), name
        assert (node["locked"]["owner"].lower(), node["locked"]["repo"]) == (owner.lower(), repo), name
        follows = {key: [value["follows"]] for key, value in spec.get("inputs", {}).items()}
        assert node.get("inputs", {}) == follows, (
            f"{name}: lock inputs {node.get('inputs')} but flake follows {follows}"
        )


def test_one_nixpkgs_for_everything(lock: dict[str, Any]) -> None:
    nixpkgs = [
        name for name, node in lock["nodes"].items() if node.get("locked", {}).get("repo") == "nixpkgs"
    ]
    assert nixpkgs == ["nixpkgs"], nixpkgs
