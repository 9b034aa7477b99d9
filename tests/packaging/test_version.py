"""The version a running server reports (`--version`, `/version`, the MCP handshake) is a constant in the
package, so that no start pays for reading the installed metadata: it must be the one pyproject.toml and
uv.lock give the package, which the Nix build and the standalone executable are labelled with."""

from __future__ import annotations

import tomllib
from pathlib import Path

import memory_mcp


def test_the_package_s_version_is_pyproject_s_and_the_lock_s(repo_root: Path) -> None:
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    locked = tomllib.loads((repo_root / "uv.lock").read_text())["package"]
    ours = [package["version"] for package in locked if package["name"] == project["name"]]
    assert memory_mcp.__version__ == project["version"]
    assert ours == [project["version"]]
