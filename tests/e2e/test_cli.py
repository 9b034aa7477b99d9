"""The command line, run as a user would."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import run_cli, server_env


@pytest.fixture
def cli(tmp_path: Path, model_path: Path):
    env = server_env(tmp_path, model_path)
    env.pop("MEMORY_MCP_LOG_LEVEL")

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run_cli(env, *args, stdin=stdin)

    return run


def test_every_command_has_help(cli) -> None:
    for command in ("serve", "stdio", "remember", "recall", "read", "list", "forget", "reindex", "model"):
        shown = cli(command, "--help")
        assert shown.returncode == 0 and "usage: memory-mcp" in shown.stdout, command
    assert "--json" in cli("recall", "--help").stdout
    assert cli("--version").stdout.startswith("memory-mcp ")
    assert cli().returncode == 2


def test_manage_memories(cli) -> None:
    created = cli(
        "remember",
        "garden/tomatoes",
        "--scope",
        "home",
        "--tag",
        "garden",
        "--json",
        stdin="Water the tomatoes every other morning; feed them weekly in July.",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["status"] == "created"
    assert created.stderr == "", "memory commands are quiet unless something is wrong"

    cli("remember", "bikes", "--content", "The bike shed key hangs by the back door.")
    found = cli("recall", "how often should I water plants", "--scope", "home")
    assert found.returncode == 0 and found.stdout.startswith("1. garden/tomatoes [home]")

    listed = json.loads(cli("list", "--json", "--fields", "name,scope,tags").stdout)
    assert listed["memories"] == [
        {"name": "bikes", "scope": "global", "tags": []},
        {"name": "garden/tomatoes", "scope": "home", "tags": ["garden"]},
    ]
    shown = cli("read", "garden/tomatoes", "--scope", "home")
    assert "scope: home" in shown.stdout and shown.stdout.rstrip().endswith("feed them weekly in July.")

    reindexed = json.loads(cli("reindex", "--json").stdout)
    assert reindexed["memories"] == 2 and reindexed["unreadable"] == {}
    assert cli("forget", "bikes").returncode == 0
    assert [m["name"] for m in json.loads(cli("list", "--json").stdout)["memories"]] == ["garden/tomatoes"]


def test_near_duplicates_are_pointed_out_in_command_terms(cli) -> None:
    text = "CoreDNS serves the internal zone on 10.0.0.53."
    cli("remember", "dns", "--content", text)
    twin = cli("remember", "dns-2", "--content", text)
    assert twin.returncode == 0 and "similar: 'dns' in 'global'" in twin.stdout
    assert "memory-mcp forget" in twin.stdout and "edit" not in twin.stdout, "the hint names CLI commands"
    data = json.loads(cli("remember", "dns-3", "--json", "--content", text).stdout)
    assert {s["name"] for s in data["similar"]} == {"dns", "dns-2"} and "hint" not in data


def test_errors_have_exit_codes(cli) -> None:
    cli("remember", "dup", "--content", "first")
    missing = cli("read", "nothing-here")
    assert missing.returncode == 3 and missing.stderr.startswith("error: no memory named 'nothing-here'")
    duplicate = cli("remember", "dup", "--content", "second")
    assert duplicate.returncode == 4 and "already exists" in duplicate.stderr
    assert "use --replace to overwrite it" in duplicate.stderr and "replace=true" not in duplicate.stderr
    invalid = cli("remember", "../x", "--content", "x")
    assert invalid.returncode == 2 and "must not start with '.'" in invalid.stderr
    missing_model = cli("list", "--model", "/nonexistent/model.gguf")
    assert missing_model.returncode == 5 and "MEMORY_MCP_MODEL" in missing_model.stderr
    bad_bind = cli("serve", "--bind", "nonsense")
    assert bad_bind.returncode == 2 and "bind address" in bad_bind.stderr
