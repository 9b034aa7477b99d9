"""Settings, read once: command-line flags override `MEMORY_MCP_*` environment variables, which override
platformdirs defaults (data dir for the repository, cache dir for derived indexes)."""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import platformdirs

from memory_mcp.errors import InvalidInput

APP: Final = "memory-mcp"
ENV_PREFIX: Final = "MEMORY_MCP_"
DEFAULT_BIND: Final = "127.0.0.1:8080"
LOOPBACK_NAMES: Final = ("localhost",)


@dataclass(frozen=True)
class Settings:
    repo_path: Path = field(default_factory=lambda: platformdirs.user_data_path(APP) / "repo")
    cache_dir: Path = field(default_factory=lambda: platformdirs.user_cache_path(APP))
    model: Path | None = None
    bind: str = DEFAULT_BIND
    branch: str = "main"
    allowed_hosts: tuple[str, ...] = ()
    author_name: str = APP
    author_email: str = f"{APP}@localhost"
    threads: int | None = None
    query_prefix: str | None = None
    document_prefix: str | None = None
    log_level: str = "INFO"
    remote_url: str | None = None
    """Git remote to sync with (HTTPS or SSH); its token comes from `memory_mcp.auth`, never from this URL."""
    pull_interval: float = 60.0
    push_delay: float = 2.0
    ssh_key: Path | None = None
    """Private key (no passphrase) for SSH remotes; None: the SSH agent."""
    ssh_known_hosts: Path | None = None
    """known_hosts file SSH host keys are checked against; None: `~/.ssh/known_hosts`."""
    tokens_file: Path | None = None
    """TOML file of HTTP bearer tokens; required to serve beyond loopback."""
    insecure_no_auth: bool = False

    @property
    def host(self) -> str:
        return split_bind(self.bind)[0]

    @property
    def port(self) -> int:
        return split_bind(self.bind)[1]

    @property
    def state_dir(self) -> Path:
        """Derived state for this repository: one folder per repo, so two repos never share indexes."""
        digest = hashlib.sha256(str(self.repo_path.resolve()).encode()).hexdigest()[:16]
        return self.cache_dir / digest

    def is_loopback(self) -> bool:
        host = self.host
        if host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


_ENV_NAMES: Final = {
    "repo_path": "REPO_PATH",
    "cache_dir": "CACHE_DIR",
    "model": "MODEL",
    "bind": "BIND",
    "branch": "BRANCH",
    "allowed_hosts": "ALLOWED_HOST",
    "author_name": "AUTHOR_NAME",
    "author_email": "AUTHOR_EMAIL",
    "threads": "THREADS",
    "query_prefix": "QUERY_PREFIX",
    "document_prefix": "DOCUMENT_PREFIX",
    "log_level": "LOG_LEVEL",
    "remote_url": "REMOTE_URL",
    "pull_interval": "PULL_INTERVAL",
    "push_delay": "PUSH_DELAY",
    "ssh_key": "SSH_KEY",
    "ssh_known_hosts": "SSH_KNOWN_HOSTS",
    "tokens_file": "TOKENS_FILE",
    "insecure_no_auth": "INSECURE_NO_AUTH",
}


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Merge flags (None = not given) over the environment over defaults, converting and checking types."""
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {}
    for spec in fields(Settings):
        raw = flags.get(spec.name)
        if raw is None or raw == () or raw == []:
            raw = env.get(ENV_PREFIX + _ENV_NAMES[spec.name]) or None
        if raw is not None:
            values[spec.name] = _convert(spec.name, raw)
    settings = Settings(**values)
    split_bind(settings.bind)
    return settings


def _convert(name: str, raw: Any) -> Any:
    if name in ("repo_path", "cache_dir", "model", "tokens_file", "ssh_key", "ssh_known_hosts"):
        return Path(raw).expanduser()
    if name in ("pull_interval", "push_delay"):
        try:
            seconds = float(raw)
        except ValueError as exc:
            raise InvalidInput(f"{name.replace('_', '-')} must be a number of seconds, not {raw!r}") from exc
        if not 0 <= seconds <= 86_400:
            raise InvalidInput(f"{name.replace('_', '-')} must be between 0 and 86400 seconds")
        return seconds
    if name == "insecure_no_auth":
        return raw is True or str(raw).lower() in ("1", "true", "yes", "on")
    if name == "allowed_hosts":
        items = raw.split(",") if isinstance(raw, str) else raw
        return tuple(item.strip() for item in items if item.strip())
    if name == "threads":
        try:
            threads = int(raw)
        except ValueError as exc:
            raise InvalidInput(f"threads must be a whole number, not {raw!r}") from exc
        if threads < 1:
            raise InvalidInput("threads must be at least 1")
        return threads
    if name == "log_level":
        return str(raw).upper()
    return raw


def split_bind(bind: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port)."""
    host, sep, port = bind.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    valid_port = port.isascii() and port.isdigit() and 0 <= int(port) <= 65535
    if not sep or not host or not valid_port or (":" in host) != bracketed or "[" in host or "]" in host:
        raise InvalidInput(f"bind address {bind!r} must look like 127.0.0.1:8080 or [::1]:8080")
    return host, int(port)
