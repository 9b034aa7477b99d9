"""A memory command's life, shared by every command that works on the repository (the CLI's and the
importers'): build the service, run the action, close it, print JSON or the human form, and show progress
on stderr for long runs."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from memory_mcp.bootstrap import build_service
from memory_mcp.config import Settings
from memory_mcp.core import MemoryService, Progress

PROGRESS_FROM: Final = 100
"""Runs shorter than this many steps finish before anyone could read a progress line."""

Action = Callable[[MemoryService, argparse.Namespace], dict[str, Any] | None]
Handler = Callable[[argparse.Namespace, Settings], int]


def handler(
    action: Action,
    show: Callable[[dict[str, Any]], str],
    repo: Callable[[argparse.Namespace], Path] | None = None,
) -> Handler:
    """A command that runs `action` on the service (over `repo(args)` instead of the configured repository if
    given) and prints its result: exit 0, or 1 when the result says `"ok": false`; None prints nothing."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        if repo is not None:
            settings = replace(settings, repo_path=repo(args))
        service = build_service(settings, progress("indexing") if args.progress else None)
        try:
            result = action(service, args)
        finally:
            service.close()
        if result is None:
            return 0
        print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else show(result))
        return 0 if result.get("ok", True) else 1

    return run


def progress(label: str) -> Progress:
    """`label done/total` on one stderr line, rewritten in place."""

    def report(done: int, total: int) -> None:
        if total >= PROGRESS_FROM:
            print(f"\r{label} {done}/{total}", end="" if done < total else "\n", file=sys.stderr, flush=True)

    return report
