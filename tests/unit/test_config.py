"""Settings: flags over `MEMORY_MCP_*` environment over defaults; bind parsing; loopback detection."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from memory_mcp.cli import _parser, main
from memory_mcp.config import DEFAULT_BIND, Settings, load_settings, options, split_bind
from memory_mcp.errors import InvalidInput
from memory_mcp.loopback import is_loopback_host


def test_defaults_with_empty_environment() -> None:
    settings = load_settings({}, {})
    assert settings.bind == DEFAULT_BIND == "127.0.0.1:8080"
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.branch == "main"
    assert settings.allowed_hosts == ()
    assert settings.threads is None
    assert settings.model is None
    assert settings.log_level == "INFO"
    assert settings.author_name == "memory-mcp"
    assert settings.repo_path.name == "repo"
    assert settings.repo_path.is_absolute() and settings.cache_dir.is_absolute()


def test_none_flags_and_env_default() -> None:
    assert load_settings(None, {}) == load_settings({}, {})


def test_environment_overrides_defaults(tmp_path: Path) -> None:
    env = {
        "MEMORY_MCP_REPO_PATH": str(tmp_path / "r"),
        "MEMORY_MCP_CACHE_DIR": str(tmp_path / "c"),
        "MEMORY_MCP_MODEL": str(tmp_path / "m.gguf"),
        "MEMORY_MCP_BIND": "0.0.0.0:9000",
        "MEMORY_MCP_BRANCH": "memories",
        "MEMORY_MCP_AUTHOR_NAME": "Ada",
        "MEMORY_MCP_AUTHOR_EMAIL": "ada@example.com",
        "MEMORY_MCP_THREADS": "4",
        "MEMORY_MCP_QUERY_PREFIX": "query: ",
        "MEMORY_MCP_DOCUMENT_PREFIX": "passage: ",
        "MEMORY_MCP_LOG_LEVEL": "debug",
    }
    settings = load_settings({}, env)
    assert settings.repo_path == tmp_path / "r"
    assert settings.cache_dir == tmp_path / "c"
    assert settings.model == tmp_path / "m.gguf"
    assert settings.bind == "0.0.0.0:9000" and settings.port == 9000
    assert settings.branch == "memories"
    assert settings.author_name == "Ada" and settings.author_email == "ada@example.com"
    assert settings.threads == 4
    assert settings.query_prefix == "query: " and settings.document_prefix == "passage: "
    assert settings.log_level == "DEBUG"


def test_flags_override_environment(tmp_path: Path) -> None:
    env = {
        "MEMORY_MCP_REPO_PATH": str(tmp_path / "env"),
        "MEMORY_MCP_BIND": "0.0.0.0:9000",
        "MEMORY_MCP_THREADS": "4",
        "MEMORY_MCP_ALLOWED_HOST": "env.example",
    }
    flags = {
        "repo_path": str(tmp_path / "flag"),
        "bind": "127.0.0.1:7000",
        "threads": 2,
        "allowed_hosts": ["flag.example"],
    }
    settings = load_settings(flags, env)
    assert settings.repo_path == tmp_path / "flag"
    assert settings.bind == "127.0.0.1:7000"
    assert settings.threads == 2
    assert settings.allowed_hosts == ("flag.example",)


def test_unset_flags_fall_back_to_environment(tmp_path: Path) -> None:
    env = {"MEMORY_MCP_BIND": "0.0.0.0:9000", "MEMORY_MCP_ALLOWED_HOST": "a.example"}
    settings = load_settings({"bind": None, "allowed_hosts": [], "threads": None}, env)
    assert settings.bind == "0.0.0.0:9000"
    assert settings.allowed_hosts == ("a.example",)
    assert load_settings({"allowed_hosts": ()}, env).allowed_hosts == ("a.example",)


def test_empty_environment_values_are_ignored() -> None:
    settings = load_settings({}, {"MEMORY_MCP_BIND": "", "MEMORY_MCP_THREADS": "", "MEMORY_MCP_MODEL": ""})
    assert settings.bind == DEFAULT_BIND
    assert settings.threads is None
    assert settings.model is None


def test_unrelated_environment_is_ignored() -> None:
    env = {"BIND": "0.0.0.0:1", "MEMORY_MCP_BINDX": "0.0.0.0:1", "memory_mcp_bind": "x"}
    settings = load_settings({}, env)
    assert settings.bind == DEFAULT_BIND


def test_paths_expand_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = load_settings({"cache_dir": "~/cache"}, {"MEMORY_MCP_REPO_PATH": "~/memories"})
    assert settings.repo_path == tmp_path / "memories"
    assert settings.cache_dir == tmp_path / "cache"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a.example", ("a.example",)),
        ("a.example,b.example", ("a.example", "b.example")),
        (" a.example , b.example:8080 ,, ", ("a.example", "b.example:8080")),
        (",", ()),
    ],
)
def test_allowed_host_comma_splitting(raw: str, expected: tuple[str, ...]) -> None:
    assert load_settings({}, {"MEMORY_MCP_ALLOWED_HOST": raw}).allowed_hosts == expected


def test_allowed_hosts_flag_list_is_trimmed() -> None:
    assert load_settings({"allowed_hosts": [" a ", "", "b"]}, {}).allowed_hosts == ("a", "b")
    assert load_settings({"allowed_hosts": "x,y"}, {}).allowed_hosts == ("x", "y")


@pytest.mark.parametrize(
    ("bind", "host", "port"),
    [
        ("127.0.0.1:8080", "127.0.0.1", 8080),
        ("0.0.0.0:0", "0.0.0.0", 0),
        ("localhost:65535", "localhost", 65535),
        ("example.com:443", "example.com", 443),
        ("[::1]:8080", "::1", 8080),
        ("[::]:9000", "::", 9000),
        ("[fe80::1%eth0]:80", "fe80::1%eth0", 80),
    ],
)
def test_split_bind(bind: str, host: str, port: int) -> None:
    assert split_bind(bind) == (host, port)
    settings = load_settings({"bind": bind}, {})
    assert (settings.host, settings.port) == (host, port)


@pytest.mark.parametrize(
    "bind",
    [
        "",
        "8080",
        "localhost",
        ":8080",
        "localhost:",
        "localhost:http",
        "localhost:-1",
        "localhost:65536",
        "localhost:8080 ",
        "[::1]",
        "localhost:80.5",
    ],
)
def test_bad_bind(bind: str) -> None:
    with pytest.raises(InvalidInput, match="bind"):
        split_bind(bind)
    with pytest.raises(InvalidInput):
        load_settings({"bind": bind}, {})


def test_bad_bind_from_environment() -> None:
    with pytest.raises(InvalidInput):
        load_settings({}, {"MEMORY_MCP_BIND": "nonsense"})


@pytest.mark.parametrize("bind", ["[]:80", "::1"])
def test_bind_with_empty_or_garbled_host(bind: str) -> None:
    with pytest.raises(InvalidInput):
        split_bind(bind)


def test_bad_bind_with_unicode_digit() -> None:
    with pytest.raises(InvalidInput):
        split_bind("127.0.0.1:¹")


@pytest.mark.parametrize("threads", ["0", "-2", "many", "1.5", 0, -1])
def test_bad_threads(threads: object) -> None:
    with pytest.raises(InvalidInput, match="threads"):
        load_settings({"threads": threads}, {})
    if isinstance(threads, str):
        with pytest.raises(InvalidInput, match="threads"):
            load_settings({}, {"MEMORY_MCP_THREADS": threads})


def test_threads_accepts_whole_numbers() -> None:
    assert load_settings({}, {"MEMORY_MCP_THREADS": " 8 "}).threads == 8
    assert load_settings({"threads": "3"}, {}).threads == 3


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [
        ("127.0.0.1:8080", True),
        ("127.8.9.10:1", True),
        ("localhost:8080", True),
        ("[::1]:8080", True),
        ("0.0.0.0:8080", False),
        ("[::]:8080", False),
        ("192.168.1.5:80", False),
        ("10.0.0.1:80", False),
        ("example.com:80", False),
        ("localhost.evil.com:80", False),
        ("127.0.0.1.nip.io:80", False),
    ],
)
def test_is_loopback(bind: str, loopback: bool) -> None:
    assert Settings(bind=bind).is_loopback() is loopback


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.2", True),
        ("::1", True),  # as `urlsplit(...).hostname` gives it (a git remote's or GitHub's URL)
        ("[::1]", True),  # as a bind address or Host header gives it
        (None, False),  # a URL without a host
        ("", False),
        ("localhost.evil.com", False),
        ("10.0.0.1", False),
    ],
)
def test_one_loopback_rule_for_binds_and_urls(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_state_dir_is_per_repository(tmp_path: Path) -> None:
    a = Settings(repo_path=tmp_path / "a", cache_dir=tmp_path / "cache")
    b = Settings(repo_path=tmp_path / "b", cache_dir=tmp_path / "cache")
    same = Settings(repo_path=tmp_path / "x" / ".." / "a", cache_dir=tmp_path / "cache")
    assert a.state_dir.parent == tmp_path / "cache"
    assert a.state_dir != b.state_dir
    assert a.state_dir == same.state_dir
    assert len(a.state_dir.name) == 16


# ---------------------------------------------------------------- the declaration, the CLI and the README

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND_FOR = {"repo": ["recall"], "serve": ["serve"], "auth": ["auth", "status"], "login": ["auth", "login"]}
COMMAND_FOR["logout"] = ["auth", "logout"]


def _configuration_rows() -> list[tuple[set[str], set[str]]]:
    """(flags, variables) of each row of README's configuration table."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 3 and "MEMORY_MCP_" in cells[2]:
            flags = set(re.findall(r"`(--[a-z-]+)`", cells[1]))
            rows.append((flags, set(re.findall(r"MEMORY_MCP_\w+", cells[2]))))
    return rows


def test_readme_configuration_table_matches_the_declaration() -> None:
    declared = options()
    rows = _configuration_rows()
    documented = [variable for _, variables in rows for variable in variables]
    assert sorted(documented) == sorted(o.variable for o in declared.values()), "one row entry per variable"
    for name, option in declared.items():
        (flags,) = [flags for flags, variables in rows if option.variable in variables]
        if option.flag is not None:
            assert option.flag in flags, f"{name}: README's row for {option.variable} lacks {option.flag}"
    for flags, variables in rows:
        owners = {o.flag for o in declared.values() if o.variable in variables}
        assert flags <= owners, f"README's row for {sorted(variables)} lists flags of other settings"


def test_every_declared_flag_reaches_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    for name, option in options().items():
        assert option.help and option.variable.startswith("MEMORY_MCP_"), name
        for group in option.commands:
            with pytest.raises(SystemExit):
                main([*COMMAND_FOR[group], "--help"])
            shown = " ".join(capsys.readouterr().out.split())
            assert option.flag in shown and option.variable in shown, (name, group)


def test_a_flag_lands_in_its_setting() -> None:
    args = _parser().parse_args(
        ["serve", "--allowed-host", "a.example", "--allowed-host", "b", "--threads", "2"]
    )
    settings = load_settings(vars(args), {}, defaults={"log_level": args.quiet_level})
    assert settings.allowed_hosts == ("a.example", "b") and settings.threads == 2
    assert settings.log_level == "INFO"
    quiet = {"log_level": "WARNING"}
    assert load_settings({}, {}, defaults=quiet).log_level == "WARNING", "a command's own default"
    assert load_settings({}, {"MEMORY_MCP_LOG_LEVEL": "debug"}, defaults=quiet).log_level == "DEBUG"
    secret = load_settings({}, {"MEMORY_MCP_GITHUB_TOKEN": "ghp_secret_value_123"})
    assert secret.github_token == "ghp_secret_value_123" and "ghp_secret" not in repr(secret)
