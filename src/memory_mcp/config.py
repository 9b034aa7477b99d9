"""Settings, read once: command-line flags override `MEMORY_MCP_*` environment variables, which override
defaults (platformdirs: data dir for the repository, cache dir for derived indexes, config dir for tokens).

Each setting is declared once, as a `Settings` field with its `Option` (variable, flag, help, parser) beside
it: the CLI's flags come from there (`add_flags`), and nothing else in the program reads the environment.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Final

import platformdirs

from memory_mcp.errors import InvalidInput
from memory_mcp.loopback import is_loopback_host

APP: Final = "memory-mcp"
ENV_PREFIX: Final = "MEMORY_MCP_"
DEFAULT_BIND: Final = "127.0.0.1:8080"
DEFAULT_GITHUB_URL: Final = "https://github.com"
DEFAULT_MOUNTED_TOKEN: Final = Path("/var/run/secrets/memory-mcp/github/token")
KUBERNETES_VARIABLES: Final = ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")
"""What `auth.stores` reads to find a cluster: a kubeconfig file, else the in-cluster service account."""


def _text(_: str, raw: Any) -> Any:
    return raw


def _path(_: str, raw: Any) -> Path:
    return Path(raw).expanduser()


def _seconds(name: str, raw: Any) -> float:
    try:
        seconds = float(raw)
    except ValueError as exc:
        raise InvalidInput(f"{name.replace('_', '-')} must be a number of seconds, not {raw!r}") from exc
    if not 0 <= seconds <= 86_400:
        raise InvalidInput(f"{name.replace('_', '-')} must be between 0 and 86400 seconds")
    return seconds


def _switch(_: str, raw: Any) -> bool:
    return raw is True or str(raw).lower() in ("1", "true", "yes", "on")


def _hosts(_: str, raw: Any) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else raw
    return tuple(item.strip() for item in items if item.strip())


def _networks(_: str, raw: Any) -> tuple[str, ...]:
    try:
        return tuple(str(ipaddress.ip_network(item)) for item in _hosts(_, raw))
    except ValueError as exc:
        raise InvalidInput(f"trusted proxy {exc}; give IP addresses or networks like 10.0.0.0/8") from exc


def _threads(_: str, raw: Any) -> int:
    try:
        threads = int(raw)
    except ValueError as exc:
        raise InvalidInput(f"threads must be a whole number, not {raw!r}") from exc
    if threads < 1:
        raise InvalidInput("threads must be at least 1")
    return threads


def _level(_: str, raw: Any) -> str:
    return str(raw).upper()


@dataclass(frozen=True)
class Option:
    """How one setting is given besides its default: an environment variable, maybe a flag, and help text.

    A setting has a flag exactly when it names `commands`; its variable and flag are spelled from its field
    name (`repo_path`: `MEMORY_MCP_REPO_PATH`, `--repo-path`) unless `env` or `flag` say otherwise."""

    help: str
    env: str = ""
    """The variable's name after `MEMORY_MCP_`; `options()` fills it in from the field name."""
    flag: str | None = None
    """The command-line flag, given where it is not the field name's (`options()` fills in the rest)."""
    commands: tuple[str, ...] = ()
    """Where the flag appears: `repo` (every command that opens the repository), `serve`, `auth` (every
    `auth` action), `login`, `logout`; none: the setting is given by environment only."""
    parse: Callable[[str, Any], Any] = _text
    """(field name, raw value) → typed value; raises `InvalidInput` naming the setting."""
    action: str | None = None
    """argparse action for the flag (`append`, `store_true`); None: takes one value."""

    @property
    def variable(self) -> str:
        return ENV_PREFIX + self.env


def setting(
    default: Any = None, *, factory: Callable[[], Any] | None = None, secret: bool = False, **option: Any
) -> Any:
    """A `Settings` field with its `Option` beside it; a `secret` one is left out of the repr."""
    meta = {"option": Option(**option)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta, repr=not secret)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """Every `MEMORY_MCP_*` setting, declared once: type, default, help and the commands it is a flag of side
    by side (variable and flag spelled from the field's name, see `Option`). The CLI's flags are generated
    from it (`add_flags`), and a test checks README's configuration table against it."""

    repo_path: Path = setting(
        factory=lambda: platformdirs.user_data_path(APP) / "repo",
        commands=("repo",),
        help="git repository of memories",
        parse=_path,
    )
    cache_dir: Path = setting(
        factory=lambda: platformdirs.user_cache_path(APP),
        commands=("repo",),
        help="where derived indexes live",
        parse=_path,
    )
    model: Path | None = setting(
        commands=("repo",),
        help="GGUF embedding model file; default: the pinned model, from the cache dir or downloaded once",
        parse=_path,
    )
    model_url: str | None = setting(
        help="where to download the default model instead (a mirror); needs MODEL_SHA256"
    )
    model_sha256: str | None = setting(help="the hex sha256 the downloaded model must have")
    bind: str = setting(
        DEFAULT_BIND,
        commands=("serve",),
        help=f"host:port to listen on, default {DEFAULT_BIND}",
    )
    branch: str = setting("main", commands=("repo",), help="git branch, default main")
    allowed_hosts: tuple[str, ...] = setting(
        (),
        env="ALLOWED_HOST",
        flag="--allowed-host",
        commands=("serve",),
        action="append",
        help="extra Host/Origin name to accept, repeatable; the variable is comma-separated",
        parse=_hosts,
    )
    author_name: str = setting(APP, commands=("repo",), help="commit author name")
    author_email: str = setting(
        f"{APP}@localhost",
        commands=("repo",),
        help="commit author email",
    )
    threads: int | None = setting(commands=("repo",), help="model threads", parse=_threads)
    query_prefix: str | None = setting(help="text put before every query")
    document_prefix: str | None = setting(help="text put before every document")
    log_level: str = setting(
        "INFO",
        commands=("repo", "auth"),
        help="DEBUG, INFO, WARNING or ERROR",
        parse=_level,
    )
    remote_url: str | None = setting(
        commands=("repo",),
        help="git remote to sync with (HTTPS or SSH); no token in it: that comes from `memory-mcp auth`",
    )
    pull_interval: float = setting(60.0, help="seconds between pulls", parse=_seconds)
    push_delay: float = setting(2.0, help="seconds from a write to its push", parse=_seconds)
    ssh_key: Path | None = setting(
        help="private key (no passphrase) for SSH remotes; default: the SSH agent", parse=_path
    )
    ssh_known_hosts: Path | None = setting(
        help="known_hosts file SSH host keys are checked against; default ~/.ssh/known_hosts",
        parse=_path,
    )
    tokens_file: Path | None = setting(
        commands=("serve",),
        help="TOML file of bearer tokens for /mcp; required to serve beyond loopback",
        parse=_path,
    )
    insecure_no_auth: bool = setting(
        False,
        commands=("serve",),
        action="store_true",
        help="serve beyond loopback without tokens (only behind an authenticating gateway)",
        parse=_switch,
    )
    trusted_proxies: tuple[str, ...] = setting(
        (),
        env="TRUSTED_PROXY",
        flag="--trusted-proxy",
        commands=("serve",),
        action="append",
        help="reverse proxy address or network whose X-Forwarded-Proto/-For/-Prefix the web UI believes, "
        "repeatable; the variable is comma-separated",
        parse=_networks,
    )
    github_token: str | None = setting(secret=True, help="the git token; wins over stored ones")
    github_token_file: Path | None = setting(
        help=f"mounted secret file holding the git token, default {DEFAULT_MOUNTED_TOKEN}",
        parse=_path,
    )
    config_dir: Path = setting(
        factory=lambda: platformdirs.user_config_path(APP),
        help="where `auth login --store file` keeps the token",
        parse=_path,
    )
    github_client_id: str | None = setting(
        flag="--client-id",
        commands=("login",),
        help="client id of your GitHub OAuth app with device flow enabled",
    )
    github_url: str = setting(
        DEFAULT_GITHUB_URL,
        commands=("login",),
        help=f"GitHub or GitHub Enterprise base URL, default {DEFAULT_GITHUB_URL}",
    )
    k8s_namespace: str = setting(
        APP,
        flag="--namespace",
        commands=("login", "logout"),
        help=f"namespace of the k8s-secret store, default {APP}",
    )

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
        return is_loopback_host(self.host)


def options() -> dict[str, Option]:
    """Field name → its `Option`, in declaration order, with the variable and flag names spelled out."""
    return {spec.name: _spelled(spec.name, spec.metadata["option"]) for spec in fields(Settings)}


def _spelled(name: str, option: Option) -> Option:
    flag = option.flag or "--" + name.replace("_", "-")
    return replace(option, env=option.env or name.upper(), flag=flag if option.commands else None)


def add_flags(parser: Any, command: str) -> None:
    """Add to an argparse parser (or group) the flags of every setting that appears in `command`."""
    for name, option in options().items():
        if option.flag is None or command not in option.commands:
            continue
        extra: dict[str, Any] = {"action": option.action} if option.action else {}
        if option.action == "store_true":
            extra["default"] = None  # not given: the variable or the default decides
        parser.add_argument(option.flag, dest=name, help=f"{option.help} ({option.variable})", **extra)


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge flags (None = not given) over the environment over `defaults` (a command's own, such as the CLI's
    quieter log level) over the declared defaults, converting and checking types."""
    env = os.environ if env is None else env
    flags = flags or {}
    values: dict[str, Any] = {}
    for name, option in options().items():
        raw = flags.get(name)
        if raw is None or raw == () or raw == []:
            raw = env.get(option.variable) or None
        if raw is None and defaults:
            raw = defaults.get(name)
        if raw is not None:
            values[name] = option.parse(name, raw)
    settings = Settings(**values)
    split_bind(settings.bind)
    return settings


def kubernetes_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Kubernetes client's own variables, which choose the cluster the k8s-secret token store talks to:
    not settings of ours, but read here too, so that no other module reads the environment."""
    env = os.environ if env is None else env
    return {name: env[name] for name in KUBERNETES_VARIABLES if name in env}


def split_bind(bind: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port` → (host, port)."""
    host, sep, port = bind.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    host = host[1:-1] if bracketed else host
    valid_port = port.isascii() and port.isdigit() and 0 <= int(port) <= 65535
    if not sep or not host or not valid_port or (":" in host) != bracketed or "[" in host or "]" in host:
        raise InvalidInput(f"bind address {bind!r} must look like 127.0.0.1:8080 or [::1]:8080")
    return host, int(port)
