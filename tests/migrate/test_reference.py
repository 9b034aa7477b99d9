"""A Rust memory-mcp repository opens in place: checked, indexed with progress, problems reported."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.migrate.conftest import Run, commits, run_json

LONG = "n" * 70


def rust_file(memory_id: str, name: str, scope: str, content: str) -> str:
    """A memory file as the Rust server's serde_yaml writes it (nanosecond times, tagged scopes)."""
    return (
        f"---\nid: {memory_id}\nname: {name}\ntags:\n- imported\nscope:\n{scope}\n"
        f"created_at: 2025-03-01T10:00:00.123456789Z\nupdated_at: 2025-03-02T11:30:00Z\n---\n\n{content}"
    )


def make_rust_repo(root: Path) -> Path:
    repo = root / "rust-repo"
    files = {
        "global/editor-prefs.md": rust_file(
            "5b0f3a52-8f0c-4c1e-9a55-1f2b3c4d5e6f",
            "editor-prefs",
            "  type: Root",
            "Helix with the gruvbox theme.\n",
        ),
        "global/legacy.md": rust_file(
            "9a8b7c6d-5e4f-4a3b-2c1d-0e9f8a7b6c5d",
            "legacy",
            "  type: Global",
            "Written by v0.7 with the legacy Global tag.\n",
        ),
        f"projects/acme/{LONG}.md": rust_file(
            "0d6b7e9a-2c44-4b8f-b1a0-7e6f5d4c3b2a",
            LONG,
            "  type: Path\n  name: acme",
            "No length limit there.\n",
        ),
        "projects/acme/broken.md": "---\nid: [unclosed\n---\n\nbroken frontmatter\n",
        "README.md": "not a memory: outside global/ and projects/\n",
    }
    for i in range(110):
        files[f"projects/webapp/note-{i:03d}.md"] = rust_file(
            f"00000000-0000-4000-8000-{i:012d}",
            f"note-{i:03d}",
            "  type: Project\n  name: webapp",
            f"Webapp note {i}: the edge cache key includes the locale.\n",
        )
    return committed(repo, files)


def committed(repo: Path, files: dict[str, str]) -> Path:
    """A new repository at `repo` whose one commit holds these files, as another tool would write them."""
    for path, text in files.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    author = ["-c", "user.name=ref", "-c", "user.email=ref@x"]
    subprocess.run(["git", "-C", str(repo), *author, "commit", "-qm", "ref"], check=True)
    return repo


def test_reference_repo_is_checked_and_indexed_in_place(cli: Run, tmp_path: Path) -> None:
    repo = make_rust_repo(tmp_path)
    done = cli("import", "reference", str(repo), "--json")
    assert done.returncode == 0, done.stderr
    assert "indexing 113/113" in done.stderr, "indexing a large repository shows progress"
    report = json.loads(done.stdout)
    assert report["memories"] == 113 and report["branch"] == "main"
    assert report["scopes"] == {"acme": 1, "global": 2, "webapp": 110}
    assert list(report["unreadable"]) == ["projects/acme/broken.md"]
    assert "not valid YAML" in report["unreadable"]["projects/acme/broken.md"]
    assert [(m["scope"], m["name"][:5]) for m in report["nonconforming"]] == [("acme", "nnnnn")]
    assert commits(repo) == 1, "nothing is committed to the reference repository"

    shown = cli("import", "reference", str(repo))
    assert shown.returncode == 0 and "113 memories" in shown.stdout
    assert "  unreadable  projects/acme/broken.md: frontmatter is not valid YAML" in shown.stdout
    assert f"MEMORY_MCP_REPO_PATH={repo}" in shown.stdout
    legacy = run_json(cli, "read", "legacy", repo=repo)
    assert legacy["created_at"] == "2025-03-01T10:00:00.123Z"


def test_folders_that_are_not_repositories_are_left_alone(cli: Run, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    refused = cli("import", "reference", str(plain))
    assert refused.returncode == 2 and "not a git repository" in refused.stderr
    assert not (plain / ".git").exists()
    subprocess.run(["git", "init", "-q", "-b", "trunk", str(plain)], check=True)
    empty = cli("import", "reference", str(plain))
    assert empty.returncode == 2 and "no commits on branch 'main'" in empty.stderr


def test_duplicate_ids_are_reported_and_repaired(cli: Run, tmp_path: Path) -> None:
    """Older merges could leave one id at two paths (a move on one replica, an edit on another)."""
    shared = "11111111-2222-4333-8444-555555555555"
    moved = rust_file(shared, "moved-name", "  type: Root", "The old text at the new name.\n")
    edited = rust_file(shared, "old-name", "  type: Root", "The edited text at the old name.\n")
    files = {
        "global/moved-name.md": moved,
        "global/old-name.md": edited.replace("2025-03-02T11:30:00Z", "2025-03-05T09:00:00Z"),
    }
    repo = committed(tmp_path / "dup-repo", files)

    report = run_json(cli, "import", "reference", str(repo))
    assert report["duplicate_ids"] == [
        {"id": shared, "keeps": "global/old-name.md", "others": ["global/moved-name.md"]}
    ], "the newer updated_at keeps the id"
    assert "repair --duplicate-ids" in cli("import", "reference", str(repo)).stdout

    repaired = run_json(cli, "repair", "--duplicate-ids", repo=repo)
    (change,) = repaired["new_ids"]
    assert (change["path"], change["old_id"]) == ("global/moved-name.md", shared)
    assert commits(repo) == 2, "one repair commit"
    assert run_json(cli, "read", "--id", shared, repo=repo)["name"] == "old-name"
    assert run_json(cli, "read", "--id", change["new_id"], repo=repo)["name"] == "moved-name"
    assert run_json(cli, "import", "reference", str(repo))["duplicate_ids"] == []
    again = run_json(cli, "repair", "--duplicate-ids", repo=repo)
    assert again == {"commit": None, "new_ids": []} and commits(repo) == 2
