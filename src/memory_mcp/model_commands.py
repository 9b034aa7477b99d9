"""`memory-mcp model status | fetch | verify`: the embedding model every other command uses.

With `--model`/`MEMORY_MCP_MODEL` that file is the model; without, the pinned default (see
`core.default_model`), which `fetch` downloads ahead of time (a server's first start would otherwise).
"""

from __future__ import annotations

import argparse
import json
import sys

from memory_mcp.bootstrap import default_model
from memory_mcp.config import Settings
from memory_mcp.errors import NotFound
from memory_mcp.files import file_sha256
from memory_mcp.progress import DownloadMeter


def register(sub: argparse._SubParsersAction) -> None:
    """Add `model` and its actions; they take only the flags that decide which model is used."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", help="where the default model is kept (MEMORY_MCP_CACHE_DIR)")
    common.add_argument(
        "--model", help="GGUF embedding model file (MEMORY_MCP_MODEL); default: the pinned one"
    )
    common.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (MEMORY_MCP_LOG_LEVEL)")
    model = sub.add_parser("model", help="the embedding model: status, fetch, verify", description=__doc__)
    actions = model.add_subparsers(title="actions", metavar="ACTION", required=True)

    status = actions.add_parser(
        "status", parents=[common], help="which model is used, and whether the default is in the cache"
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.set_defaults(handler=_status, quiet_level="WARNING")
    fetch = actions.add_parser("fetch", parents=[common], help="download the default model now, if missing")
    fetch.set_defaults(handler=_fetch, quiet_level="WARNING")
    verify = actions.add_parser(
        "verify",
        parents=[common],
        help="hash the cached default model against its pin (a mismatching file is deleted; exit 1)",
    )
    verify.set_defaults(handler=_verify, quiet_level="WARNING")


def _status(args: argparse.Namespace, settings: Settings) -> int:
    if settings.model is not None:
        result: dict[str, object] = {"source": "configured", "path": str(settings.model)}
        result["state"] = "present" if settings.model.is_file() else "missing"
    else:
        result = {"source": "default", **default_model(settings).status()}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n".join(f"{key}: {value}" for key, value in result.items() if value is not None))
    return 0


def _fetch(args: argparse.Namespace, settings: Settings) -> int:
    if settings.model is not None:
        print(f"a model file is configured ({settings.model}); nothing to fetch", file=sys.stderr)
        return 0
    print(default_model(settings).ensure(DownloadMeter()))
    return 0


def _verify(args: argparse.Namespace, settings: Settings) -> int:
    if settings.model is not None:
        if not settings.model.is_file():
            raise NotFound(f"no model file at {settings.model}")
        print(f"{settings.model}: sha256 {file_sha256(settings.model)} (configured file: no pin to compare)")
        return 0
    cache = default_model(settings)
    if cache.verify():
        print(f"{cache.path}: sha256 {cache.pin.sha256} matches the pin")
        return 0
    print(
        f"error: {cache.path} did not match sha256 {cache.pin.sha256} and was deleted; "
        "`memory-mcp model fetch` downloads it again",
        file=sys.stderr,
    )
    return 1
