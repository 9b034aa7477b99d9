"""nix/check-image.py, the image check `nix flake check` runs, against synthetic docker archives: it accepts
an image that keeps image-config.nix's contract and names each broken promise in one that does not."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

APP = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-memory-mcp-0.1.0"
MODEL = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-bge-small-en-v1.5-q8_0.gguf"


@pytest.fixture(scope="module")
def contract(nix_eval) -> dict[str, Any]:
    settings = nix_eval(
        f'import ./nix/image-config.nix {{ entrypoint = "{APP}/bin/memory-mcp"; modelPath = "{MODEL}"; '
        'caBundle = "/nix/store/cccccccccccccccccccccccccccccccc-nss-cacert/etc/ssl/certs/ca-bundle.crt"; '
        'version = "0.1.0"; revision = "abc"; }'
    )
    return {
        "config": settings["config"],
        "uid": settings["uid"],
        "gid": settings["gid"],
        "paths": [APP, MODEL],
        "passwd": settings["passwd"],
    }


def layer(entries: list[tuple[str, str, dict[str, Any]]]) -> bytes:
    """A layer tar from (name, kind, attributes) with kind file/dir/symlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, kind, attrs in entries:
            info = tarfile.TarInfo(name)
            info.uid, info.gid = attrs.get("uid", 0), attrs.get("gid", 0)
            info.mode = attrs.get("mode", 0o755 if kind == "dir" else 0o644)
            data = attrs.get("data", b"")
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, attrs["target"]
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if kind == "file" else None)
    return buffer.getvalue()


def good_layers(contract: dict[str, Any]) -> list[list[tuple[str, str, dict[str, Any]]]]:
    owner = {"uid": contract["uid"], "gid": contract["gid"]}
    store = [
        ("nix", "dir", {}),
        ("nix/store", "dir", {}),
        (APP.lstrip("/"), "dir", {}),
        (APP.lstrip("/") + "/bin", "dir", {}),
        (APP.lstrip("/") + "/bin/memory-mcp", "file", {"data": b"\x7fELF"}),
        (MODEL.lstrip("/"), "file", {"data": b"GGUF"}),
    ]
    custom = [
        (".", "dir", {}),
        ("./etc", "dir", {}),
        ("./etc/passwd", "file", {"data": contract["passwd"].encode() + b"\n"}),
        ("./etc/ssl", "dir", {}),
        ("./etc/ssl/certs", "dir", {}),
        ("./etc/ssl/certs/ca-bundle.crt", "symlink", {"target": "/nix/store/c/ca-bundle.crt"}),
        ("./tmp", "dir", {"mode": 0o1777}),
        ("./data", "dir", owner),
        ("./data/repo", "dir", owner),
        ("./data/cache", "dir", owner),
    ]
    return [store, custom]


def write_archive(
    path: Path, config: dict[str, Any], layers: list[list[tuple[str, str, dict[str, Any]]]]
) -> Path:
    with tarfile.open(path, "w:gz") as archive:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))

        names = []
        for index, entries in enumerate(layers):
            names.append(f"{index:064x}/layer.tar")
            add(names[-1], layer(entries))
        add("config.json", json.dumps({"architecture": "amd64", "os": "linux", "config": config}).encode())
        add(
            "manifest.json",
            json.dumps(
                [{"Config": "config.json", "RepoTags": ["memory-mcp:0.1.0"], "Layers": names}]
            ).encode(),
        )
    return path


def check(
    tmp_path: Path, contract: dict[str, Any], archive: Path, repo_root: Path
) -> subprocess.CompletedProcess[str]:
    expected = tmp_path / "expected.json"
    expected.write_text(json.dumps({key: contract[key] for key in ("config", "uid", "gid", "paths")}))
    return subprocess.run(
        [sys.executable, repo_root / "nix" / "check-image.py", archive, expected],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_faithful_image_passes(tmp_path: Path, contract: dict[str, Any], repo_root: Path) -> None:
    archive = write_archive(tmp_path / "image.tar.gz", contract["config"], good_layers(contract))
    result = check(tmp_path, contract, archive, repo_root)
    assert result.returncode == 0, result.stderr
    assert "keeps its contract" in result.stdout


@pytest.mark.parametrize(
    ("breakage", "complaint"),
    [
        ("root-user", "config User is '0:0'"),
        ("no-model", "bge-small-en-v1.5-q8_0.gguf is not in the image"),
        ("root-owned-data", "/data belongs to 0:0"),
        ("no-sticky-tmp", "/tmp must be a world-writable sticky directory"),
        ("no-passwd-entry", "/etc/passwd has no entry for 10001:10001"),
        ("env-without-model", "config Env lacks ['MEMORY_MCP_MODEL="),
    ],
)
def test_each_broken_promise_is_named(
    tmp_path: Path, contract: dict[str, Any], repo_root: Path, breakage: str, complaint: str
) -> None:
    config = json.loads(json.dumps(contract["config"]))
    layers = good_layers(contract)
    store, custom = layers
    if breakage == "root-user":
        config["User"] = "0:0"
    elif breakage == "no-model":
        layers[0] = [entry for entry in store if "bge-small" not in entry[0]]
    elif breakage == "root-owned-data":
        layers[1] = [(n, k, {}) if n == "./data" else (n, k, a) for n, k, a in custom]
    elif breakage == "no-sticky-tmp":
        layers[1] = [(n, k, {"mode": 0o755}) if n == "./tmp" else (n, k, a) for n, k, a in custom]
    elif breakage == "no-passwd-entry":
        layers[1] = [
            (n, k, {"data": b"root:x:0:0::/:/bin/false\n"}) if n == "./etc/passwd" else (n, k, a)
            for n, k, a in custom
        ]
    elif breakage == "env-without-model":
        config["Env"] = [e for e in config["Env"] if not e.startswith("MEMORY_MCP_MODEL=")]
    archive = write_archive(tmp_path / "image.tar.gz", config, layers)
    result = check(tmp_path, contract, archive, repo_root)
    assert result.returncode == 1
    assert complaint in result.stderr, result.stderr
