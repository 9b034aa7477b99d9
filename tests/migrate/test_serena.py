"""Importing Serena's memories: names, scopes, skips, byte-for-byte content, one commit, idempotency."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from memory_mcp.errors import InvalidInput
from memory_mcp.migrate import serena
from memory_mcp.migrate.names import printable
from tests.migrate.conftest import GLOBAL_FILES, LONG_NAME, PROJECTS, SKIPPED, Run, commits, git, run_json


def test_home_memories_become_global_with_reported_names(home: Path) -> None:
    batch = serena.read([])
    assert {c.memory.scope.path for c in batch.candidates} == {""}
    by_origin = {c.origin: c.memory.name for c in batch.candidates}
    assert by_origin["~/.serena/memories/global/coding_style.md"] == "coding_style"
    assert by_origin["~/.serena/memories/coding_style.md"] == "coding_style-2"
    assert by_origin["~/.serena/memories/global/My-Notes.md"] == "My-Notes"
    assert by_origin["~/.serena/memories/global/My Notes.md"] == "My-Notes-2"
    deep = "~/.serena/memories/global/topics/rust/async/pitfalls.md"
    assert by_origin[deep] == "topics/rust-async/pitfalls"
    assert by_origin["~/.serena/memories/global/.hidden-insight.md"] == "hidden-insight"
    assert by_origin["~/.serena/memories/global/bad\\xff name.md"] == "bad-name"
    assert by_origin["~/.serena/memories/global/line\\x0abreak.md"] == "line-break"
    assert by_origin[f"~/.serena/memories/global/{LONG_NAME}.md"] == LONG_NAME[:64]
    assert by_origin["~/.serena/memories/global/...md"].startswith("x-")
    assert by_origin["~/.serena/memories/global/user_preferences.md"] == "user_preferences"
    skipped = {Path(s.origin).name: s.reason for s in batch.skipped}
    assert set(skipped) == set(SKIPPED), "notes.txt is not a memory; every .md problem is reported"
    for file, reason in SKIPPED.items():
        assert reason in skipped[file]


def test_content_is_kept_byte_for_byte_with_source_and_tag(home: Path) -> None:
    batch = serena.read([])
    for candidate in batch.candidates:
        relative = candidate.memory.source.removeprefix("serena:~/.serena/memories/")
        original = next(data for name, data in GLOBAL_FILES.items() if printable(name) == relative)
        assert candidate.memory.content.encode() == original
        assert candidate.memory.tags == ("serena",)
    crlf = next(c for c in batch.candidates if c.memory.name == "crlf")
    assert crlf.memory.content.startswith("\ufeff# Windows notes\r\n")


def test_project_folders_become_scopes(home: Path) -> None:
    batch = serena.read([home / "src" / "shop-api", home / "work" / "Data Pipeline" / ".serena" / "memories"])
    found = sorted((str(c.memory.scope), c.memory.name) for c in batch.candidates)
    assert found == [
        ("Data-Pipeline", "project_overview"),
        ("Data-Pipeline", "task_completion"),
        ("shop-api", "conventions/naming"),
        ("shop-api", "project_overview"),
        ("shop-api", "suggested_commands"),
    ]
    assert batch.sources == [
        "~/src/shop-api/.serena/memories -> shop-api",
        "~/work/Data Pipeline/.serena/memories -> Data-Pipeline",
    ]
    overridden = serena.read([home / "src" / "shop-api"], "acme/shop")
    assert {str(c.memory.scope) for c in overridden.candidates} == {"acme/shop"}


def test_folders_that_are_not_serena_memories_are_refused(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "notes"
    elsewhere.mkdir()
    with pytest.raises(InvalidInput, match="--scope"):
        serena.read([elsewhere])
    with pytest.raises(InvalidInput, match="not a folder of Serena memories"):
        serena.read([tmp_path / "missing"])
    assert serena.read([elsewhere], "notes").candidates == []


def test_import_dry_run_then_once_then_nothing(cli: Run, home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    projects = [str(home / project) for project in PROJECTS]
    planned = run_json(cli, "import", "serena", "--dry-run")
    assert planned["dry_run"] and planned["commit"] is None and len(planned["created"]) == 12
    assert commits(repo) == 0, "a dry run writes nothing"

    shown = cli("import", "serena", "--dry-run")
    assert shown.returncode == 0 and shown.stdout.startswith("dry run, nothing written: would create 12")
    assert "  renamed  ~/.serena/memories/global/My Notes.md -> global: My-Notes-2" in shown.stdout
    assert "  skipped  ~/.serena/memories/global/latin1.md: not UTF-8" in shown.stdout

    first = cli("import", "serena")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("imported from serena: 12 created, 0 replaced, 0 unchanged, 4 skipped")
    both = run_json(cli, "import", "serena", *projects)
    assert len(both["created"]) == 5 and both["commit"]
    assert commits(repo) == 2, "one commit per import run"
    log = git(repo, "log", "-1", "--format=%B")
    assert log.startswith("chore: import 5 memories from serena\n\ncreated: 5, replaced: 0, unchanged: 0")
    assert "source: ~/src/shop-api/.serena/memories -> shop-api" in log

    again = run_json(cli, "import", "serena", *projects)
    assert again["commit"] is None and len(again["unchanged"]) == 5 and not again["created"]
    assert run_json(cli, "import", "serena")["commit"] is None
    assert commits(repo) == 2, "a second run changes nothing"
    assert git(repo, "status", "--porcelain") == ""

    memory = run_json(cli, "read", "crlf")
    assert memory["content"] == GLOBAL_FILES["global/crlf.md"].decode()
    assert memory["source"] == "serena:~/.serena/memories/global/crlf.md" and memory["tags"] == ["serena"]


def test_changed_files_replace_their_memories_keeping_ids(cli: Run, home: Path, tmp_path: Path) -> None:
    project = home / "src" / "shop-api"
    run_json(cli, "import", "serena", str(project))
    before = run_json(cli, "read", "suggested_commands", "--scope", "shop-api")
    file = project / ".serena" / "memories" / "suggested_commands.md"
    file.write_text("# Shop API commands\nRun `just test` now; make is gone.\n")
    os.utime(file, (1_700_000_000, 1_700_000_000))

    planned = run_json(cli, "import", "serena", str(project), "--dry-run")
    assert [m["name"] for m in planned["replaced"]] == ["suggested_commands"]
    assert len(planned["unchanged"]) == 2
    assert run_json(cli, "read", "suggested_commands", "--scope", "shop-api")["content"] == before["content"]

    done = run_json(cli, "import", "serena", str(project))
    after = run_json(cli, "read", "suggested_commands", "--scope", "shop-api")
    assert done["commit"] and after["content"].startswith("# Shop API commands\nRun `just test`")
    assert after["id"] == before["id"] and after["created_at"] == before["created_at"]
    assert after["updated_at"] == "2023-11-14T22:13:20.000Z", "the file's modification time"
    assert commits(tmp_path / "repo") == 2


def test_memories_from_elsewhere_are_never_overwritten(cli: Run, home: Path, tmp_path: Path) -> None:
    mine = cli("remember", "project_overview", "--scope", "shop-api", "--content", "Written by hand.")
    assert mine.returncode == 0, mine.stderr
    planned = run_json(cli, "import", "serena", str(home / "src" / "shop-api"), "--dry-run")
    assert [c["name"] for c in planned["conflicts"]] == ["project_overview"]
    refused = cli("import", "serena", str(home / "src" / "shop-api"))
    assert refused.returncode == 4 and "nothing was imported" in refused.stderr
    assert commits(tmp_path / "repo") == 1
    moved = run_json(cli, "import", "serena", str(home / "src" / "shop-api"), "--scope", "shop-api/serena")
    assert len(moved["created"]) == 3


def test_verify_import_passes_then_reports_misses(cli: Run, home: Path) -> None:
    projects = [str(home / project) for project in PROJECTS]
    run_json(cli, "import", "serena")
    run_json(cli, "import", "serena", *projects)
    sources = [str(home / ".serena" / "memories"), *projects]
    passed = cli("verify-import", *sources)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.splitlines()[0].split() == ["scope", "memories", "readable", "identical", "top-5"]
    assert passed.stdout.splitlines()[1].split() == ["Data-Pipeline", "2", "2", "2", "2"]
    assert "all found: 17 memories checked" in passed.stdout
    report = run_json(cli, "verify-import", *sources)
    assert report["ok"] and len(report["skipped"]) == 4 and report["misses"] == []

    cli("remember", "project_overview", "--scope", "shop-api", "--replace", "--content", "Edited since.")
    cli("forget", "task_completion", "--scope", "Data-Pipeline")
    failed = cli("verify-import", *sources, "--json")
    assert failed.returncode == 1
    misses = {(m["scope"], m["name"]): m["problem"] for m in json.loads(failed.stdout)["misses"]}
    assert misses == {
        ("shop-api", "project_overview"): "content differs",
        ("Data-Pipeline", "task_completion"): "missing",
    }
    shown = cli("verify-import", *sources)
    assert shown.returncode == 1 and "2 of 17 missed" in shown.stdout


def test_command_help_and_bad_paths(cli: Run, tmp_path: Path) -> None:
    for command in (
        ("import", "serena"),
        ("import", "reference"),
        ("import", "server-memory"),
        ("import", "jsonl"),
        ("export",),
        ("verify-import",),
    ):
        shown = cli(*command, "--help")
        assert shown.returncode == 0 and "usage: memory-mcp" in shown.stdout, command
        assert "--json" in shown.stdout, command
    assert cli("import").returncode == 2
    missing = cli("import", "serena", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a folder of Serena memories" in missing.stderr
