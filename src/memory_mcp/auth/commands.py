"""`memory-mcp auth login | status | logout`: the GitHub token that git sync pushes and pulls with.

Only the `stdout` store ever prints a token; everything else shows at most its last 4 characters, and messages
go to stderr so that stdout stays clean for piping. A token is never taken from the command line (it would
show in `ps` and shell history): `--with-token` reads it from stdin.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from typing import Final

from memory_mcp.auth import device_flow
from memory_mcp.auth.stores import STORES, open_store
from memory_mcp.auth.github_token import TOKEN_ENV, GitHubToken, resolve_github_token, token_sources
from memory_mcp.config import Settings, add_flags, kubernetes_environment, options
from memory_mcp.errors import InvalidInput, MemoryMcpError, NotFound

MAX_STDIN_TOKEN: Final = 64 * 1024


def register(sub: argparse._SubParsersAction) -> None:
    """Add `auth` and its actions to the top-level subcommands. They take `--log-level` but not the repository
    and model flags of the other commands: no auth action touches the repository."""
    common = argparse.ArgumentParser(add_help=False)
    add_flags(common, "auth")
    auth = sub.add_parser(
        "auth",
        help="GitHub token for git sync: login, status, logout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = auth.add_subparsers(title="actions", metavar="ACTION", required=True)

    login = actions.add_parser(
        "login",
        parents=[common],
        help="get a GitHub token (device flow or --with-token) and store it",
        description="Get a GitHub token with the OAuth device flow, or read one from stdin, and store it.",
    )
    login.add_argument(
        "--with-token",
        action="store_true",
        help="read a personal access token from stdin instead of running the device flow",
    )
    add_flags(login, "login")
    _store_arguments(login, STORES)
    login.add_argument("--poll-interval-scale", type=float, default=1.0, help=argparse.SUPPRESS)  # tests only
    login.set_defaults(handler=_login, quiet_level="WARNING")

    status = actions.add_parser(
        "status",
        parents=[common],
        help="show which token git sync would use (last 4 characters only)",
        description="Show where the token comes from: env MEMORY_MCP_GITHUB_TOKEN, then the file store, then "
        "the mounted secret file (MEMORY_MCP_GITHUB_TOKEN_FILE). Exits 3 when there is none.",
    )
    status.add_argument("--json", action="store_true", help="print JSON instead of text")
    status.set_defaults(handler=_status, quiet_level="WARNING")

    logout = actions.add_parser(
        "logout",
        parents=[common],
        help="remove the token from a store",
        description="Remove the stored GitHub token from the file or Kubernetes store.",
    )
    _store_arguments(logout, ("file", "k8s-secret"))
    add_flags(logout, "logout")
    logout.set_defaults(handler=_logout, quiet_level="WARNING")


def _store_arguments(parser: argparse.ArgumentParser, choices: tuple[str, ...]) -> None:
    parser.add_argument(
        "--store", choices=choices, default="file", help="where the token lives (default file)"
    )


def _login(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(args.store, settings, kubernetes_environment())  # fail before the user approves anything
    if args.with_token:
        token = _token_from_stdin()
    else:
        if not settings.github_client_id:
            raise InvalidInput(
                f"the device flow needs the client id of a GitHub OAuth app with device flow enabled: pass "
                f"--client-id or set {options()['github_client_id'].variable} (or pipe a token into "
                "--with-token)"
            )
        if args.poll_interval_scale <= 0:
            raise InvalidInput("--poll-interval-scale must be positive")
        scale = args.poll_interval_scale
        token = device_flow.login(
            settings.github_url,
            settings.github_client_id,
            announce=_announce,
            sleep=lambda seconds: time.sleep(seconds * scale),
        )
    where = store.save(token)
    if where:
        _say(f"Stored the GitHub token ending in {token.last4 or '(too short to show)'} in {where}.")
        if (settings.github_token or "").strip():
            _say(f"Note: {TOKEN_ENV} is set and takes precedence over stored tokens.")
    return 0


def _token_from_stdin() -> GitHubToken:
    if sys.stdin is None:
        raise InvalidInput("--with-token reads the token from stdin, but there is no stdin")
    if sys.stdin.isatty():
        text = getpass.getpass("Paste a GitHub token (input is hidden): ")
    else:
        text = sys.stdin.read(MAX_STDIN_TOKEN + 1)
    if not text.strip():
        raise InvalidInput(
            "--with-token read nothing from stdin; pipe the token in: … | memory-mcp auth login --with-token"
        )
    if len(text) > MAX_STDIN_TOKEN:
        raise InvalidInput("--with-token read more than a token from stdin")
    return GitHubToken(text)


def _announce(code: device_flow.DeviceCode) -> None:
    _say(f"First copy your one-time code: {code.user_code}")
    _say(f"Then open {code.verification_uri} in a browser and enter it. Waiting for approval…")


def _status(args: argparse.Namespace, settings: Settings) -> int:
    resolved = resolve_github_token(settings)
    if resolved is None:
        searched = [location for _, location in token_sources(settings)]
        if args.json:
            print(json.dumps({"found": False, "searched": searched}, indent=2))
        raise NotFound(f"no GitHub token in {', '.join(searched)}; run `memory-mcp auth login`")
    last4 = resolved.token.last4
    if args.json:
        report = {"found": True, "source": resolved.source, "location": resolved.location, "last4": last4}
        print(json.dumps(report, indent=2))
    else:
        print(f"GitHub token from {resolved.description}, ending in {last4 or '(too short to show)'}")
    return 0


def _logout(args: argparse.Namespace, settings: Settings) -> int:
    store = open_store(args.store, settings, kubernetes_environment())
    removed = store.remove()
    _say(f"Removed the GitHub token from {store.where}." if removed else f"No token stored in {store.where}.")
    try:
        remaining = resolve_github_token(settings)
    except MemoryMcpError:
        remaining = None  # logout worked; a broken other source is for `auth status` to report
    if remaining is not None:
        _say(f"Note: git sync still has a token, from {remaining.description}.")
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr)
