"""Helpers for the packaging tests: the repository root and Nix evaluation without a Nix store or network.

Debian's `nix-bin` provides `nix-instantiate`, which parses and evaluates Nix expressions offline. These tests
fail, never skip, without it: a packaging change that nobody can check is not checked.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def nix_instantiate() -> str:
    found = shutil.which("nix-instantiate")
    if found is None:
        pytest.fail("nix-instantiate is not installed; on Debian/Ubuntu: apt-get install -y nix-bin")
    return found


class NixEval:
    """`nix-instantiate --eval --strict --json` of an expression, from the repository root."""

    def __init__(self, program: str) -> None:
        self.program = program

    def __call__(self, expression: str) -> Any:
        result = subprocess.run(
            [self.program, "--eval", "--strict", "--json", "--readonly-mode", "-E", expression],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if result.returncode != 0:
            raise AssertionError(
                f"nix-instantiate failed ({result.returncode}):\n{result.stderr}\nexpression:\n{expression}"
            )
        return json.loads(result.stdout)


@pytest.fixture(scope="session")
def nix_eval(nix_instantiate: str) -> NixEval:
    return NixEval(nix_instantiate)


@pytest.fixture(scope="session")
def dev():
    """scripts/dev.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
