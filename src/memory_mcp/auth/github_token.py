"""The token type that will not print itself, and the one place that decides which token git sync uses."""

from __future__ import annotations

import hmac
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from memory_mcp.config import DEFAULT_MOUNTED_TOKEN, Settings, options
from memory_mcp.errors import InvalidInput, Unavailable

log = logging.getLogger(__name__)

TOKEN_ENV: Final = options()["github_token"].variable
FILE_STORE_NAME: Final = "github-token"
MAX_TOKEN_FILE: Final = 64 * 1024

Source = Literal["env", "file", "mounted"]


class GitHubToken:
    """A GitHub token whose repr and str show only its last 4 characters (none for short ones).

    Reprs end up in logs, exception messages, pytest output and dataclass reprs; redacting here makes every one
    of those safe. Call `reveal()` only where the value leaves the process on purpose (git, a store, stdout).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        value = value.strip()
        if not value or not value.isascii() or not value.isprintable() or any(c.isspace() for c in value):
            # Never echo the rejected text: it may be a real token with a stray character.
            raise InvalidInput("a GitHub token must be one line of printable ASCII without spaces")
        self._value = value

    def reveal(self) -> str:
        return self._value

    @property
    def last4(self) -> str:
        """The last 4 characters, or "" when the token is too short for 4 to be a safe hint."""
        return self._value[-4:] if len(self._value) >= 16 else ""

    def __repr__(self) -> str:
        return f"GitHubToken('****{self.last4}')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, GitHubToken):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # no dict keys or sets of secrets

    def __reduce__(self) -> None:
        raise TypeError(
            "GitHubToken cannot be pickled: tokens never go to caches or other processes that way"
        )


@dataclass(frozen=True)
class ResolvedToken:
    """A token plus where it came from, so `auth status` and the sync engine's errors can say which source won."""

    token: GitHubToken
    source: Source
    location: str
    """The environment variable's name, or the file's path."""

    @property
    def description(self) -> str:
        kinds = {"env": "environment variable", "file": "token file", "mounted": "mounted secret"}
        return f"{kinds[self.source]} {self.location}"


def file_store_path(settings: Settings) -> Path:
    return settings.config_dir / FILE_STORE_NAME


def mounted_token_path(settings: Settings) -> Path:
    return settings.github_token_file or DEFAULT_MOUNTED_TOKEN


def token_sources(settings: Settings) -> list[tuple[Source, str]]:
    """Every place looked at, in resolution order (for `auth status` to list when nothing is found)."""
    return [
        ("env", TOKEN_ENV),
        ("file", str(file_store_path(settings))),
        ("mounted", str(mounted_token_path(settings))),
    ]


def resolve_github_token(settings: Settings) -> ResolvedToken | None:
    """The token git sync should use: env `MEMORY_MCP_GITHUB_TOKEN`, then the file store, then the mounted
    secret file; None when there is none.

    An empty environment variable counts as unset (a blank `env:` entry in a manifest). A file that exists but
    cannot be read or holds no valid token raises `Unavailable` rather than falling through, so a broken
    higher-priority source is fixed instead of silently shadowed by a lower one.
    """
    from_env = settings.github_token or ""
    if from_env.strip():
        try:
            return ResolvedToken(GitHubToken(from_env), "env", TOKEN_ENV)
        except InvalidInput as exc:
            raise InvalidInput(f"{TOKEN_ENV}: {exc}") from None
    stored = file_store_path(settings)
    if (token := _read_token_file(stored, check_private=True)) is not None:
        return ResolvedToken(token, "file", str(stored))
    mounted = mounted_token_path(settings)
    if (token := _read_token_file(mounted, check_private=False)) is not None:
        return ResolvedToken(token, "mounted", str(mounted))
    return None


def _read_token_file(path: Path, *, check_private: bool) -> GitHubToken | None:
    """The token in `path`, or None when there is no such file. Follows symbolic links on purpose: Kubernetes
    mounts each Secret key as a link into a `..data` folder."""
    try:
        with open(path, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read(MAX_TOKEN_FILE + 1)
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise Unavailable(f"cannot read the GitHub token file {path}: {reason}") from None
    if len(text) > MAX_TOKEN_FILE:
        raise Unavailable(f"the GitHub token file {path} is too large to hold a token")
    if check_private and stat.S_IMODE(mode) & 0o077:
        log.warning("the GitHub token file %s is readable by other users; run: chmod 600 %s", path, path)
    try:
        return GitHubToken(text)
    except InvalidInput:
        raise Unavailable(
            f"the GitHub token file {path} holds no valid token; run `memory-mcp auth login` again or remove it"
        ) from None
