"""The migration commands: `import serena|reference|server-memory|jsonl`, `export` and `verify-import`.

`register` adds them to the main parser with its shared options; each prints text or `--json`, shows
progress on stderr for long runs, and raises the usual errors, which the CLI maps to exit codes.
`verify-import` exits with 1 when any memory misses.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memory_mcp.command import Action, handler, progress
from memory_mcp.core import MemoryService, Scope
from memory_mcp.errors import InvalidInput
from memory_mcp.migrate import jsonl, reference, serena, server_memory, verify
from memory_mcp.migrate.plan import Batch, Owns, apply, classify, same_id, same_source, view


def register(
    sub: argparse._SubParsersAction, common: argparse.ArgumentParser, output: argparse.ArgumentParser
) -> None:
    """Add `import ...`, `export` and `verify-import` to the main parser's commands."""

    def command(into: argparse._SubParsersAction, name: str, help_text: str, action: Action, show, **kw):
        parser = into.add_parser(name, parents=[common, output], help=help_text, description=help_text)
        parser.set_defaults(handler=handler(action, show, **kw), quiet_level="WARNING")
        return parser

    imports = sub.add_parser(
        "import",
        help="import memories from Serena, the reference server, server-memory or JSONL",
        description="Import memories in one commit per run; each source has its own --help.",
    )
    kinds = imports.add_subparsers(title="sources", metavar="SOURCE", required=True)

    found = command(
        kinds, "serena", "import Serena's memory files", _importer(_serena, same_source), _show_plan
    )
    found.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="memories or project folders (default: ~/.serena/memories, global/ included)",
    )
    found.add_argument("--scope", help="one scope for all (default: global for ~/.serena, else the repo)")
    _dry_run(found)

    ref = command(
        kinds,
        "reference",
        "check and index, in place, a repository of the Rust memory-mcp",
        _reference,
        _show_reference,
        repo=lambda args: reference.check_path(args.path),
    )
    ref.add_argument("path", type=Path, metavar="PATH", help="the repository's folder")

    graph = command(
        kinds,
        "server-memory",
        "import the knowledge-graph server's memory.jsonl",
        _importer(_graph, same_source),
        _show_plan,
    )
    graph.add_argument("file", type=Path, metavar="FILE")
    graph.add_argument("--scope", help="scope of the memories (default global)")
    _dry_run(graph)

    back = command(
        kinds, "jsonl", "import an export, keeping ids and times", _importer(_jsonl, same_id), _show_plan
    )
    back.add_argument("file", type=Path, metavar="FILE")
    _dry_run(back)

    out = command(sub, "export", "write every memory as JSON lines", _export, _show_export)
    out.add_argument("--output", type=Path, metavar="FILE", help="write here, atomically (default: stdout)")

    check = command(
        sub,
        "verify-import",
        "check that imported memories are identical and found by recall",
        _verify,
        _show_verify,
    )
    check.add_argument(
        "sources",
        nargs="+",
        type=Path,
        metavar="SOURCE",
        help="Serena memories folders, an export file, or a server-memory memory.jsonl",
    )
    check.add_argument("--scope", help="the --scope given to the import, if any")


def _dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")


# ------------------------------------------------------------------ imports


def _importer(read: Callable[[argparse.Namespace], Batch], owns: Owns) -> Action:
    def action(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
        plan = classify(service, read(args), owns)
        shown = progress("embedding") if args.progress else None
        commit = None if args.dry_run else apply(service, plan, shown)
        return view(plan, commit=commit, dry_run=args.dry_run)

    return action


def _serena(args: argparse.Namespace) -> Batch:
    return serena.read(args.paths, args.scope)


def _graph(args: argparse.Namespace) -> Batch:
    return server_memory.read(args.file, Scope.parse(args.scope))


def _jsonl(args: argparse.Namespace) -> Batch:
    return jsonl.read(args.file)


def _show_plan(result: dict[str, Any]) -> str:
    n = {key: len(result[key]) for key in ("created", "replaced", "unchanged", "skipped", "conflicts")}
    if result["dry_run"]:
        lines = [
            (
                f"dry run, nothing written: would create {n['created']}, replace {n['replaced']}, "
                f"leave {n['unchanged']} unchanged, skip {n['skipped']}; {n['conflicts']} conflicts"
            )
        ]
        lines += [f"  create   {m['scope']}: {m['name']}  <- {m['origin']}" for m in result["created"]]
        lines += [f"  replace  {m['scope']}: {m['name']}  <- {m['origin']}" for m in result["replaced"]]
    else:
        done = f"commit {result['commit'][:12]}" if result["commit"] else "nothing to commit"
        lines = [
            (
                f"imported from {result['kind']}: {n['created']} created, {n['replaced']} replaced, "
                f"{n['unchanged']} unchanged, {n['skipped']} skipped ({done})"
            )
        ]
    lines += [f"  source   {source}" for source in result["sources"]]
    lines += [f"  renamed  {m['origin']} -> {m['scope']}: {m['name']}" for m in result["renamed"]]
    lines += [f"  skipped  {s['origin']}: {s['reason']}" for s in result["skipped"]]
    lines += [f"  conflict {m['origin']}: {m['reason']}" for m in result["conflicts"]]
    return "\n".join(lines)


def _reference(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    return reference.summarise(service)


def _show_reference(result: dict[str, Any]) -> str:
    commit = (result["commit"] or "")[:12]
    lines = [f"{result['path']} (branch {result['branch']} at {commit}): {result['memories']} memories"]
    lines += [f"  {count:6d}  {scope}" for scope, count in result["scopes"].items()]
    lines += [f"  unreadable  {path}: {why}" for path, why in result["unreadable"].items()]
    lines += [
        f"  name our rules refuse on write  {m['scope']}: {m['name']}: {m['reason']}"
        for m in result["nonconforming"]
    ]
    lines += [
        f"  id shared by several memories  {d['id']}: {d['keeps']} keeps it; {', '.join(d['others'])}"
        for d in result["duplicate_ids"]
    ]
    if result["duplicate_ids"]:
        lines.append("give the others new ids with `memory-mcp repair --duplicate-ids`")
    lines.append(
        f"indexed in place: serve it with MEMORY_MCP_REPO_PATH={result['path']}, or merge it into "
        "another repository with `export --repo-path` and `import jsonl`"
    )
    return "\n".join(lines)


# ------------------------------------------------------------------ export and verification


def _export(service: MemoryService, args: argparse.Namespace) -> dict[str, Any] | None:
    """To stdout (UTF-8 whatever the locale), or to a file that appears only once it is complete."""
    if args.output is None:
        sys.stdout.reconfigure(encoding="utf-8", newline="\n")
        jsonl.export(service, sys.stdout)
        return None
    target = args.output.expanduser()
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="\n") as out:
            count = jsonl.export(service, out)
        os.replace(partial, target)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InvalidInput(f"cannot write {target}: {exc.strerror}") from exc
    return {"output": str(target), "memories": count}


def _show_export(result: dict[str, Any]) -> str:
    return f"exported {result['memories']} memories to {result['output']}"


def _verify(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    batches = verify.read_sources(args.sources, args.scope)
    return verify.verify(service, batches, progress("verifying") if args.progress else None)


def _show_verify(result: dict[str, Any]) -> str:
    head = ("scope", "memories", "readable", "identical", f"top-{verify.TOP}")
    rows = [head, *((r["scope"], *(r[stage] for stage in verify.STAGES)) for r in result["scopes"])]
    width = max(len(str(row[0])) for row in rows)
    lines = [f"{row[0]:<{width}}  " + "  ".join(f"{v:>9}" for v in row[1:]) for row in rows]
    lines += [f"miss  {m['scope']}: {m['name']} ({m['origin']}): {m['problem']}" for m in result["misses"]]
    lines += [f"skipped  {s['origin']}: {s['reason']}" for s in result["skipped"]]
    verdict = "all found" if result["ok"] else f"{len(result['misses'])} of {result['checked']} missed"
    lines.append(f"{verdict}: {result['checked']} memories checked")
    return "\n".join(lines)
