"""The Nix flake, proven offline: every Nix file parses, the flake's outputs have the promised names for both
systems and are wired to the right files (tests/packaging/offline-flake.nix evaluates the real flake.nix against
stand-in inputs), and the image contract and the model pin hold. Building needs nixpkgs, which only the release
workflow fetches; everything here runs with Debian's nix-bin and no network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from memory_mcp.core.default_model import builtin_pin

SYSTEMS = ["x86_64-linux", "aarch64-linux"]
REQUIRED = [
    "flake.nix",
    "flake.lock",
    "nix/default.nix",
    "nix/python.nix",
    "nix/package.nix",
    "nix/image.nix",
    "nix/image-config.nix",
    "nix/model.nix",
    "nix/checks.nix",
    "nix/shell.nix",
    "nix/systems.nix",
    "nix/check-image.py",
    "nix/standalone.nix",
    "nix/native-build.nix",
]
SKIP_DIRS = {".git", ".venv", "node_modules", "build", "dist", "result", ".hypothesis", ".pytest_cache"}
OFFLINE = Path(__file__).with_name("offline-flake.nix")
# ../shared/REFERENCE.md §3: the pinned default model.
MODEL_URL = (
    "https://huggingface.co/CompendiumLabs/bge-small-en-v1.5-gguf/resolve/main/bge-small-en-v1.5-q8_0.gguf"
)
MODEL_SHA256 = "ec38e8da142596baa913124ae50550de284b6916bf59577ef2f0cb9660c2f514"


def nix_files(root: Path) -> list[Path]:
    found = []
    for path in root.rglob("*.nix"):
        if not SKIP_DIRS.intersection(path.relative_to(root).parts[:-1]):
            found.append(path)
    return sorted(found)


def evaluate_offline(nix_eval, root: Path) -> dict[str, Any]:
    return nix_eval(f"import {OFFLINE} {{ root = {root}; }}")


@pytest.fixture(scope="module")
def flake(nix_eval, repo_root: Path) -> dict[str, Any]:
    return evaluate_offline(nix_eval, repo_root)


def test_the_packaging_files_exist(repo_root: Path) -> None:
    missing = [name for name in REQUIRED if not (repo_root / name).is_file()]
    assert not missing, f"missing: {missing}"


def test_every_nix_file_parses(nix_instantiate: str, repo_root: Path) -> None:
    files = nix_files(repo_root)
    assert repo_root / "flake.nix" in files and len(files) >= 10, files
    failures = {}
    for path in files:
        result = subprocess.run(
            [nix_instantiate, "--parse", str(path)], capture_output=True, text=True, timeout=60
        )
        if result.returncode != 0:
            failures[str(path.relative_to(repo_root))] = result.stderr.strip()
    assert not failures, failures


def test_flake_outputs_have_the_promised_names_for_both_systems(flake: dict[str, Any]) -> None:
    assert flake["systems"] == SYSTEMS
    assert set(flake["outputs"]) == {"packages", "apps", "devShells", "checks", "formatter"}
    for output in ("packages", "apps", "devShells", "checks", "formatter"):
        assert sorted(flake[output]) == sorted(SYSTEMS), output
    for system in SYSTEMS:
        assert set(flake["packages"][system]) == {"memory-mcp", "default", "model", "image", "standalone"}
        assert set(flake["apps"][system]) == {"memory-mcp", "default"}
        assert set(flake["devShells"][system]) == {"default"}
        assert {"tests", "zero-config", "image"} <= set(flake["checks"][system])


def test_outputs_are_wired_to_the_right_files(flake: dict[str, Any]) -> None:
    for system in SYSTEMS:
        packages = flake["packages"][system]
        assert packages["memory-mcp"]["file"] == packages["default"]["file"] == "package.nix"
        assert packages["image"]["file"] == "image.nix"
        assert packages["standalone"]["file"] == "standalone.nix"
        assert packages["model"]["file"] == "fetchurl:bge-small-en-v1.5-q8_0.gguf"
        assert flake["devShells"][system]["default"]["file"] == "shell.nix"
        assert flake["formatter"][system]["file"] == "nixfmt-tree"
        for app in flake["apps"][system].values():
            assert app["type"] == "app"
            assert app["program"].endswith("-package.nix/bin/memory-mcp")
            assert len(app["description"]) > 20


def test_every_call_gets_exactly_the_arguments_its_file_takes(flake: dict[str, Any]) -> None:
    """The stand-in nixpkgs throws on a missing or unexpected argument; this pins what each file gets."""
    wiring = flake["wiring"]
    assert set(wiring["outputs"]) >= {
        "memory-mcp",
        "model",
        "image",
        "checks",
        "devShell",
        "venv",
        "testVenv",
    }
    assert set(wiring["environments"]["args"]) == {
        "pyproject-nix",
        "uv2nix",
        "pyproject-build-systems",
        "root",
    }
    assert {"venv", "testVenv", "devVenv", "pythonSet", "version"} <= set(
        wiring["environments"]["attributes"]
    )
    assert set(wiring["memory-mcp"]["args"]) == {"venv", "model", "version"}
    assert "makeBinaryWrapper" in wiring["memory-mcp"]["fromNixpkgs"]  # a compiled wrapper: no shell needed
    assert set(wiring["image"]["args"]) == {"settings", "version"}
    assert set(wiring["standalone"]["args"]) == {"root", "model", "testVenv", "version"}
    assert {"imageSettings", "image", "model", "app", "testVenv", "root"} <= set(wiring["checks"]["args"])
    assert {"tests", "zero-config", "image"} <= set(wiring["checks"]["attributes"])
    assert {"uv", "kubectl", "kustomize", "skopeo"} <= set(wiring["devShell"]["fromNixpkgs"])
    assert "devVenv" in wiring["devShell"]["args"]


def test_image_runs_the_packaged_program_with_the_pinned_model(flake: dict[str, Any]) -> None:
    settings = flake["wiring"]["imageSettings"]
    store = "/nix/store/00000000000000000000000000000000-"
    assert settings["Entrypoint"] == [f"{store}package.nix/bin/memory-mcp"]
    assert settings["User"] == "10001:10001"
    env = dict(item.split("=", 1) for item in settings["Env"])
    assert env["MEMORY_MCP_MODEL"] == f"{store}fetchurl:bge-small-en-v1.5-q8_0.gguf"
    assert env["SSL_CERT_FILE"] == f"{store}cacert/etc/ssl/certs/ca-bundle.crt"
    assert settings["revision"] == "0" * 40


def test_offline_evaluation_notices_broken_wiring(nix_eval, repo_root: Path, tmp_path: Path) -> None:
    """The offline proof is only worth something if it fails when the files stop fitting together."""
    shutil.copy(repo_root / "flake.nix", tmp_path / "flake.nix")
    shutil.copytree(repo_root / "nix", tmp_path / "nix")
    default = tmp_path / "nix" / "default.nix"
    text = default.read_text()
    assert "    inherit model;\n  };\n" in text
    default.write_text(text.replace("    inherit model;\n  };\n", "    colour = 1;\n  };\n", 1))
    with pytest.raises(AssertionError, match="nothing provides model"):
        evaluate_offline(nix_eval, tmp_path)


def test_inputs_follow_one_nixpkgs_on_a_current_branch(flake: dict[str, Any]) -> None:
    inputs = flake["inputs"]
    assert set(inputs) == {"nixpkgs", "pyproject-nix", "uv2nix", "pyproject-build-systems"}
    assert re.fullmatch(r"github:NixOS/nixpkgs/(nixos-\d\d\.\d\d|nixos-unstable)", inputs["nixpkgs"]["url"])
    assert inputs["pyproject-nix"]["inputs"] == {"nixpkgs": {"follows": "nixpkgs"}}
    assert inputs["uv2nix"]["inputs"] == {
        "nixpkgs": {"follows": "nixpkgs"},
        "pyproject-nix": {"follows": "pyproject-nix"},
    }
    assert inputs["pyproject-build-systems"]["inputs"] == {
        "nixpkgs": {"follows": "nixpkgs"},
        "pyproject-nix": {"follows": "pyproject-nix"},
        "uv2nix": {"follows": "uv2nix"},
    }


def test_image_contract(nix_eval) -> None:
    settings = nix_eval(
        'import ./nix/image-config.nix { entrypoint = "/nix/store/x-memory-mcp/bin/memory-mcp"; '
        'modelPath = "/nix/store/y-model.gguf"; caBundle = "/nix/store/z-cacert/ca-bundle.crt"; '
        'version = "1.2.3"; revision = "abc"; }'
    )
    config = settings["config"]
    assert config["User"] == "10001:10001" and (settings["uid"], settings["gid"]) == (10001, 10001)
    assert config["Entrypoint"] == ["/nix/store/x-memory-mcp/bin/memory-mcp"]
    assert config["Cmd"] == ["serve", "--bind", "0.0.0.0:8080"]
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    assert config["Volumes"] == {"/data": {}}
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["MEMORY_MCP_MODEL"] == "/nix/store/y-model.gguf"
    assert env["MEMORY_MCP_REPO_PATH"] == "/data/repo" and env["MEMORY_MCP_CACHE_DIR"] == "/data/cache"
    assert env["SSL_CERT_FILE"] == "/nix/store/z-cacert/ca-bundle.crt"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.source"] == "https://github.com/butterflyskies/memory-mcp"
    assert labels["org.opencontainers.image.version"] == "1.2.3"
    assert labels["org.opencontainers.image.revision"] == "abc"
    assert settings["passwd"].split(":")[2:4] == ["10001", "10001"]


def test_model_is_pinned_to_the_reference_file(nix_eval) -> None:
    model = nix_eval("import ./nix/model.nix")
    assert model == {"name": "bge-small-en-v1.5-q8_0.gguf", "url": MODEL_URL, "sha256": MODEL_SHA256}


def test_nix_and_python_read_one_model_pin(nix_eval) -> None:
    """The file the image bakes in is the file a non-Nix first start downloads."""
    pin = builtin_pin()
    assert nix_eval("import ./nix/model.nix") == {"name": pin.name, "url": pin.url, "sha256": pin.sha256}
    assert nix_eval("builtins.fromJSON (builtins.readFile ./src/memory_mcp/default-model.json)") == vars(pin)


def test_the_program_defaults_to_the_baked_in_model(repo_root: Path) -> None:
    """`nix run .#memory-mcp` needs no configuration, and an explicit MEMORY_MCP_MODEL still wins."""
    package = (repo_root / "nix" / "package.nix").read_text()
    assert re.search(r"--set-default MEMORY_MCP_MODEL \$\{model\}", package)
    assert "--set MEMORY_MCP_MODEL" not in package
