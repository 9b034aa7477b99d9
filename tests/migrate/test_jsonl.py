"""Export to JSONL and import it back, losing nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory_mcp.errors import InvalidInput
from memory_mcp.migrate import jsonl
from tests.migrate.conftest import PROJECTS, Run, commits, run_json

AWKWARD = 'Line one\u2028still line one\r\nTabs\tand "quotes" and a NEL\x85 and emoji 🦀\n'


def test_export_import_export_is_identical(cli: Run, home: Path, tmp_path: Path) -> None:
    run_json(cli, "import", "serena")
    run_json(cli, "import", "serena", *(str(home / project) for project in PROJECTS))
    added = cli(
        "remember", "awkward/text", "--scope", "org/team", "--tag", "edge", "--source", "test", stdin=AWKWARD
    )
    assert added.returncode == 0, added.stderr

    first = tmp_path / "first.jsonl"
    written = run_json(cli, "export", "--output", str(first))
    assert written == {"output": str(first), "memories": 18}
    records = [json.loads(line) for line in first.read_text(encoding="utf-8").split("\n") if line]
    assert list(records[0]) == list(jsonl.FIELDS)
    order = [("" if r["scope"] == "global" else r["scope"], r["name"]) for r in records]
    assert order == sorted(order), "global first, then by scope path and name"
    assert next(r for r in records if r["name"] == "awkward/text")["content"] == AWKWARD

    empty = tmp_path / "restored"
    restored = run_json(cli, "import", "jsonl", str(first), repo=empty)
    assert len(restored["created"]) == 18 and commits(empty) == 1
    again = cli("export", repo=empty)
    assert again.returncode == 0 and again.stdout.encode() == first.read_bytes()
    assert again.stderr == ""

    twice = run_json(cli, "import", "jsonl", str(first), repo=empty)
    assert twice["commit"] is None and len(twice["unchanged"]) == 18 and commits(empty) == 1
    checked = run_json(cli, "verify-import", str(first), repo=empty)
    assert checked["ok"] and checked["checked"] == 18


def test_same_id_replaces_other_ids_conflict(cli: Run, tmp_path: Path) -> None:
    cli("remember", "deploy", "--content", "Deploy with Argo CD from the main branch.")
    file = tmp_path / "export.jsonl"
    run_json(cli, "export", "--output", str(file))
    record = json.loads(file.read_text())
    file.write_text(json.dumps({**record, "content": "Deploy with Flux now."}) + "\n")
    replaced = run_json(cli, "import", "jsonl", str(file))
    assert [m["name"] for m in replaced["replaced"]] == ["deploy"]
    assert run_json(cli, "read", "deploy")["id"] == record["id"]

    file.write_text(json.dumps({**record, "id": "another-id", "content": "Another deploy memory."}) + "\n")
    refused = cli("import", "jsonl", str(file))
    assert refused.returncode == 4 and "came from no source" in refused.stderr


GOOD = {
    "id": "1",
    "name": "ok",
    "scope": "global",
    "tags": [],
    "content": "c",
    "source": "",
    "created_at": "2025-01-01T00:00:00.000Z",
    "updated_at": "2025-01-01T00:00:00.000Z",
}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("not json", "Expecting value"),
        ('["a list"]', "not a JSON object"),
        ('{"name": "x"}', "missing field(s) id, scope, tags, content, source, created_at, updated_at"),
        (json.dumps({**GOOD, "name": "../x"}), "must not start with '.'"),
        (json.dumps({**GOOD, "tags": "a,b"}), "tags must be a list"),
        (json.dumps({**GOOD, "created_at": "yesterday"}), "not an RFC 3339 time"),
        (json.dumps({**GOOD, "created_at": "2025-01-01T00:00:00"}), "with a zone"),
        (json.dumps({**GOOD, "id": "x\ny"}), "id must be a printable string"),
        (json.dumps(GOOD), "repeats the memory of line 1"),
    ],
)
def test_bad_lines_refuse_the_whole_file(tmp_path: Path, line: str, problem: str) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    with pytest.raises(InvalidInput) as raised:
        jsonl.read(file)
    assert "bad.jsonl line 2" in str(raised.value) and problem in str(raised.value)


def test_export_to_a_missing_folder_fails_cleanly(cli: Run, tmp_path: Path) -> None:
    failed = cli("export", "--output", str(tmp_path / "missing" / "out.jsonl"))
    assert failed.returncode == 2 and failed.stderr.startswith("error: cannot write")


def test_bad_file_writes_nothing(cli: Run, tmp_path: Path) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_bytes(b'{"id": "1"}\n')
    refused = cli("import", "jsonl", str(file))
    assert refused.returncode == 2 and "line 1: missing field(s)" in refused.stderr
    assert commits(tmp_path / "repo") == 0
