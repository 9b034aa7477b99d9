"""The command line: run a server (`serve`, `stdio`) or manage memories by hand beside one.

Memory commands work on the repository directly, under the same OS write lock a running server uses, so
they are safe while servers run. Human output by default, `--json` for scripts; errors go to stderr with
an exit code per error kind.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any, Final

from memory_mcp import __version__, model_commands, views
from memory_mcp.auth import commands as auth_commands
from memory_mcp.command import handler, progress
from memory_mcp.config import Settings, add_flags, load_settings
from memory_mcp.core import Locator, MemoryService
from memory_mcp.errors import (
    AlreadyExists,
    Busy,
    Conflict,
    Forbidden,
    InvalidInput,
    MemoryMcpError,
    NotFound,
    Unavailable,
)
from memory_mcp.migrate import commands as migrate_commands
from memory_mcp.supervisor import Supervisor

EXIT_CODES: Final = {
    InvalidInput: 2,
    NotFound: 3,
    AlreadyExists: 4,
    Conflict: 4,
    Busy: 5,
    Unavailable: 5,
    Forbidden: 6,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        settings = load_settings(vars(args), defaults={"log_level": args.quiet_level})
        _configure_logging(settings.log_level)
        return args.handler(args, settings)
    except MemoryMcpError as exc:
        print(f"error: {exc}{_next_step(exc)}", file=sys.stderr)
        return next((code for kind, code in EXIT_CODES.items() if isinstance(exc, kind)), 1)
    except KeyboardInterrupt:
        return 130


def _next_step(exc: MemoryMcpError) -> str:
    """What a person at the shell can do next, in this CLI's own terms."""
    if isinstance(exc, AlreadyExists) and exc.replaceable:
        return "; use --replace to overwrite it, or choose another name"
    if isinstance(exc, NotFound) and exc.findable:
        return "; `memory-mcp list` or `memory-mcp recall QUERY` finds memories"
    return ""


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


# ------------------------------------------------------------------ servers


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from memory_mcp.server.token_file import served_tokens

    rules = served_tokens(settings)  # before anything starts: a refusal must not leave work behind
    supervisor = Supervisor(settings)
    # Start-up (repository, model, index) runs while the MCP SDK, Starlette and uvicorn are imported and the
    # app is built, about a second of the main thread's.
    supervisor.start()
    from memory_mcp.server.http_app import build_http_app, http_auth
    from memory_mcp.server.http_serve import serve
    from memory_mcp.server.mcp_app import build_mcp_server

    verifier, auth = http_auth(settings, rules)
    app = build_http_app(supervisor, build_mcp_server(supervisor, verifier, auth), verifier)
    logging.getLogger(__name__).info("serving MCP on http://%s/mcp, the web UI on /ui", settings.bind)
    serve(app, settings)
    return 0


def _stdio(args: argparse.Namespace, settings: Settings) -> int:
    supervisor = Supervisor(settings)
    supervisor.start()  # while the MCP SDK is imported (see `_serve`)
    from memory_mcp.server.mcp_app import build_mcp_server

    build_mcp_server(supervisor).run("stdio")
    return 0


# ------------------------------------------------------------------ memory commands


def _remember(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    content = args.content if args.content is not None else sys.stdin.read()
    result = service.remember(
        name=args.name,
        content=content,
        scope=args.scope,
        tags=args.tag,
        source=args.source,
        replace_existing=args.replace,
    )
    return views.saved(result, "replaced" if result.replaced else "created")


def _show_saved(result: dict[str, Any]) -> str:
    lines = [
        f"{result['status']} {result['name']!r} in scope {result['scope']!r} (version {result['version'][:12]})"
    ]
    similar = result.get("similar", [])
    lines += [f"  similar: {s['name']!r} in {s['scope']!r} ({s['similarity']:.2f})" for s in similar]
    if similar:
        lines.append(
            "  to keep one copy, merge them with `memory-mcp remember NAME --replace`, then "
            "`memory-mcp forget` the other"
        )
    return "\n".join(lines)


def _recall(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    hits = service.recall(
        args.query, scope=args.scope, tags=args.tag, limit=args.limit, min_score=args.min_score
    )
    return {"hits": [views.hit(h) for h in hits], "count": len(hits)}


def _show_hits(result: dict[str, Any]) -> str:
    if not result["hits"]:
        return "no matching memories"
    blocks = []
    for rank, h in enumerate(result["hits"], 1):
        head = f"{rank}. {h['name']} [{h['scope']}] score {h['score']:.3f} ({h['match_type']})"
        blocks.append(head + "\n   " + h["snippet"].replace("\n", "\n   "))
    return "\n".join(blocks)


def _read(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    return views.memory(service.read(Locator(args.name, args.scope, args.id)))


def _show_memory(m: dict[str, Any]) -> str:
    meta = [
        f"name: {m['name']}",
        f"scope: {m['scope']}",
        f"tags: {', '.join(m['tags'])}",
        f"id: {m['id']}",
        f"updated: {m['updated_at']}",
        f"version: {m['version']}",
    ]
    if m["source"]:
        meta.append(f"source: {m['source']}")
    return "\n".join(meta) + "\n\n" + m["content"]


def _list(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    fields = views.check_fields(args.fields.split(",") if args.fields else None)
    return views.page(
        service.list(scope=args.scope, tags=args.tag, limit=args.limit, cursor=args.cursor), fields
    )


def _show_page(page: dict[str, Any]) -> str:
    rows = [
        "\t".join(str(v) if not isinstance(v, list) else ",".join(v) for v in m.values())
        for m in page["memories"]
    ]
    if page["next_cursor"]:
        rows.append(f"(more: --cursor {page['next_cursor']})")
    return "\n".join(rows) or "no memories"


def _changes(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    return views.changes(
        service.changes(since=args.since, cursor=args.cursor, scope=args.scope, limit=args.limit)
    )


def _show_changes(result: dict[str, Any]) -> str:
    rows = []
    for c in result["changes"]:
        moved = f" (from {c['from_name']} [{c['from_scope']}])" if "from_name" in c else ""
        rows.append(f"{c['time']} {c['kind']:9} {c['name']} [{c['scope']}]{moved} by {c['author']}")
        rows.append(f"    {c['snippet']}")
    if result["next_cursor"]:
        rows.append(f"(more: --cursor {result['next_cursor']})")
    rows.append(f"(next time: --cursor {result['cursor']})")
    return "\n".join(rows)


def _forget(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    return views.saved(service.forget(Locator(args.name, args.scope, args.id)), "deleted")


def _reindex(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    done = service.reindex(progress("indexing") if args.progress else None, reembed=args.reembed)
    seconds = round(time.perf_counter() - started, 3)
    return {"memories": done.memories, "seconds": seconds, "unreadable": done.unreadable}


def _show_reindex(result: dict[str, Any]) -> str:
    lines = [f"indexed {result['memories']} memories in {result['seconds']:.2f}s"]
    lines += [f"  unreadable: {path}: {why}" for path, why in result["unreadable"].items()]
    return "\n".join(lines)


def _repair(service: MemoryService, args: argparse.Namespace) -> dict[str, Any]:
    if not args.duplicate_ids:
        raise InvalidInput("say what to repair: --duplicate-ids")
    repaired = service.repair_duplicate_ids()
    return {
        "commit": repaired.commit,
        "new_ids": [{"path": e.path, "old_id": e.memory.id, "new_id": new} for e, new in repaired.renamed],
    }


def _show_repair(result: dict[str, Any]) -> str:
    if result["commit"] is None:
        return "no memories share an id"
    lines = [f"gave {len(result['new_ids'])} memories a new id (commit {result['commit'][:12]})"]
    lines += [f"  {r['path']}: {r['old_id']} -> {r['new_id']}" for r in result["new_ids"]]
    return "\n".join(lines)


def _sync(args: argparse.Namespace, settings: Settings) -> int:
    from memory_mcp.bootstrap import build_store

    _, syncer = build_store(settings)
    if syncer is None:
        raise Unavailable("no git remote is configured (--remote-url / MEMORY_MCP_REMOTE_URL)")
    report = syncer.sync(pull=args.pull, push=args.push, allow_unrelated=args.allow_unrelated_histories)
    result = views.sync_report(report)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"pulled {report.pulled}, pushed {report.pushed}, {report.ahead} waiting to push")
        for conflict in report.conflicts:
            print(f"  conflict: {conflict.name!r} in {conflict.scope!r}: {conflict.resolution}")
        for refused in report.refused:
            print(f"  refused: {refused}", file=sys.stderr)
        for error in report.errors:
            print(f"  error: {error}", file=sys.stderr)
    return 0 if report.ok else 1


# ------------------------------------------------------------------ parser


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_flags(common.add_argument_group("repository and model (flags override MEMORY_MCP_* variables)"), "repo")

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON instead of text")
    output.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="show indexing progress on stderr",
    )

    parser = argparse.ArgumentParser(
        prog="memory-mcp", description="Long-term memory for AI agents over MCP."
    )
    parser.add_argument("--version", action="version", version=f"memory-mcp {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    serve = sub.add_parser("serve", parents=[common], help="serve MCP over streamable HTTP at /mcp")
    add_flags(serve, "serve")
    serve.set_defaults(handler=_serve, quiet_level="INFO")

    sync = sub.add_parser("sync", parents=[common], help="sync the repository with its git remote now")
    sync.add_argument("--no-pull", dest="pull", action="store_false", help="only push")
    sync.add_argument("--no-push", dest="push", action="store_false", help="only pull")
    sync.add_argument(
        "--allow-unrelated-histories",
        action="store_true",
        help="merge a remote whose history shares no commit with ours (after a rewrite)",
    )
    sync.add_argument("--json", action="store_true", help="print JSON instead of text")
    sync.set_defaults(handler=_sync, quiet_level="WARNING")

    stdio = sub.add_parser("stdio", parents=[common], help="serve MCP over stdin/stdout (logs go to stderr)")
    stdio.set_defaults(handler=_stdio, quiet_level="INFO")

    def memory_command(name: str, help_text: str, action, show) -> argparse.ArgumentParser:
        command = sub.add_parser(name, parents=[common, output], help=help_text, description=help_text)
        command.set_defaults(handler=handler(action, show), quiet_level="WARNING")
        return command

    remember = memory_command("remember", "store a new memory", _remember, _show_saved)
    remember.add_argument("name")
    remember.add_argument("--content", help="the text (default: read from stdin)")
    remember.add_argument("--scope", help="global (default), a path like org/project, or project:<name>")
    remember.add_argument("--tag", action="append", help="a tag, repeatable")
    remember.add_argument("--source", help="where the memory came from")
    remember.add_argument("--replace", action="store_true", help="overwrite a memory of the same name")

    recall = memory_command("recall", "search memories by meaning and keywords", _recall, _show_hits)
    recall.add_argument("query")
    recall.add_argument(
        "--scope", help="omitted: global only; a path: that subtree and global; all: everything"
    )
    recall.add_argument("--tag", action="append", help="only memories with this tag, repeatable")
    recall.add_argument("--limit", type=int, default=5)
    recall.add_argument("--min-score", type=float, help="minimum cosine similarity")

    read = memory_command("read", "print one memory", _read, _show_memory)
    read.add_argument("name", nargs="?")
    read.add_argument("--scope")
    read.add_argument("--id", help="read by id instead of name")

    listing = memory_command("list", "list memories by scope and name", _list, _show_page)
    listing.add_argument("--scope", help="omitted or all: everything; global; or a path (that subtree)")
    listing.add_argument("--tag", action="append", help="only memories with this tag, repeatable")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--cursor", help="continue after a previous page")
    listing.add_argument("--fields", help=f"comma-separated, from: {','.join(views.LIST_FIELDS)}")

    changed = memory_command(
        "changes",
        "memories created, edited, moved or forgotten since a time or commit",
        _changes,
        _show_changes,
    )
    changed.add_argument("--since", help="a time (2026-01-31T09:00:00Z) or a commit id; default: all history")
    changed.add_argument("--cursor", help="continue a previous answer (its next page, or what came after it)")
    changed.add_argument("--scope", help="omitted or all: everything; global; or a path (that subtree)")
    changed.add_argument("--limit", type=int, default=50)

    forget = memory_command("forget", "delete a memory (history keeps it)", _forget, _show_saved)
    forget.add_argument("name", nargs="?")
    forget.add_argument("--scope")
    forget.add_argument("--id", help="delete by id instead of name")

    reindex = memory_command(
        "reindex", "rebuild the search indexes from the repository", _reindex, _show_reindex
    )
    reindex.add_argument(
        "--reembed", action="store_true", help="ignore cached vectors and embed everything again"
    )
    repair = memory_command(
        "repair", "fix what older versions left in the repository", _repair, _show_repair
    )
    repair.add_argument(
        "--duplicate-ids",
        action="store_true",
        help="memories sharing an id: the newest keeps it, the others get new ids (nothing is deleted)",
    )
    auth_commands.register(sub)
    migrate_commands.register(sub, common, output)
    model_commands.register(sub)
    return parser


if __name__ == "__main__":
    sys.exit(main())
