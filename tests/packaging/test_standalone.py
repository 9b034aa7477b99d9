"""The single-file executable: built by scripts/build-standalone.py, then run as a user would, with no Python
environment behind it (a bare PATH, no PYTHONPATH, no site-packages).

`MEMORY_MCP_STANDALONE=/path/to/memory-mcp` tests an executable built earlier instead of building one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from memory_mcp import __version__
from memory_mcp.core.bundled_model import read as read_bundle
from memory_mcp.files import file_sha256

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build-standalone.py"
STANDALONE_ENV = "MEMORY_MCP_STANDALONE"
BUILD_TIMEOUT = 1200
# Words that only appear on stderr when something went wrong, including at interpreter exit.
TROUBLE = ("Traceback", "Exception ignored", "Segmentation fault", "Failed to execute script", "[PYI-")


@pytest.fixture(scope="session")
def standalone(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Path:
    """The executable, carrying the suite's model as its default (the real one cannot be downloaded here)."""
    given = os.environ.get(STANDALONE_ENV)
    if given:
        exe = Path(given).resolve()
        if not (exe.is_file() and os.access(exe, os.X_OK)):
            pytest.fail(f"{STANDALONE_ENV}={given} is not an executable file")
        return exe
    out = tmp_path_factory.mktemp("standalone")
    result = subprocess.run(
        [
            sys.executable,
            BUILD_SCRIPT,
            "--python",
            sys.executable,
            "--dist",
            out / "dist",
            "--work",
            out / "work",
            "--model",
            model_path,
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
    )
    if result.returncode != 0:
        pytest.fail(f"build-standalone.py failed ({result.returncode}):\n{result.stderr[-6000:]}")
    exe = Path(result.stdout.strip().splitlines()[-1])
    assert exe == out / "dist" / "memory-mcp" and exe.is_file()
    return exe


def bare_env(root: Path) -> dict[str, str]:
    """Only what a user's shell would give: no virtualenv, PYTHONPATH or LLAMA_CPP_LIB_PATH leaks in, and no
    model configured: the executable serves with the one it carries."""
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(root / "home"),
        "LANG": "C.UTF-8",
        "MEMORY_MCP_REPO_PATH": str(root / "repo"),
        "MEMORY_MCP_CACHE_DIR": str(root / "cache"),
    }


def run(
    exe: Path, env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the executable in its own process group, so a timeout also ends the process the bootloader unpacked
    and started (killing the bootloader alone would leave it behind)."""
    process = subprocess.Popen(
        [exe, *args],
        env=env,
        text=True,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
    )
    try:
        stdout, stderr = process.communicate(stdin, timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"memory-mcp {' '.join(args)} did not finish in 120 s:\n{stderr}")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def assert_clean(stderr: str) -> None:
    for word in TROUBLE:
        assert word not in stderr, f"{word!r} on stderr:\n{stderr}"


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_version(standalone: Path, tmp_path: Path) -> None:
    result = run(standalone, bare_env(tmp_path), "--version")
    assert result.returncode == 0, result.stderr
    # The distribution metadata is bundled: a missing copy would print the source-tree fallback 0.0.0.
    assert result.stdout.strip() == f"memory-mcp {__version__}" != "memory-mcp 0.0.0"
    assert_clean(result.stderr)


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
@pytest.mark.anyio
async def test_stdio_round_trip(
    standalone: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    env = bare_env(tmp_path)
    async with Client(StdioServerParameters(command=str(standalone), args=["stdio"], env=env)) as client:
        saved = await client.call_tool(
            "remember",
            {
                "name": "deploy/window",
                "content": "Production deploys happen on Tuesdays after the 10:00 stand-up.",
                "tags": ["ops"],
            },
        )
        assert not saved.is_error, saved.content
        assert saved.structured_content["status"] == "created"
        found = await client.call_tool("recall", {"query": "when do we ship to production?"})
        assert not found.is_error, found.content
    hits = found.structured_content["hits"]
    assert hits and hits[0]["name"] == "deploy/window", hits
    assert hits[0]["match_type"] in ("semantic", "both")
    # The memory is a real commit in the repository the executable was pointed at.
    assert (tmp_path / "repo" / "global" / "deploy" / "window.md").is_file()
    assert_clean(capfd.readouterr().err)


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_cli_commands_share_the_repository(standalone: Path, tmp_path: Path) -> None:
    env = bare_env(tmp_path)
    saved = run(
        standalone,
        env,
        "remember",
        "coffee",
        "--tag",
        "office",
        "--json",
        stdin="The espresso machine on floor 3 needs descaling every Friday.",
    )
    assert saved.returncode == 0, saved.stderr
    assert json.loads(saved.stdout)["status"] == "created"
    assert_clean(saved.stderr)
    found = run(standalone, env, "recall", "cleaning the coffee maker", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["name"] == "coffee"
    assert_clean(found.stderr)
    missing = run(standalone, env, "read", "no-such-memory")
    assert missing.returncode == 3 and "no memory named" in missing.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_server(standalone: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    process = subprocess.Popen(
        [standalone, "serve", "--bind", f"127.0.0.1:{port}"],
        env=bare_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", log
    finally:
        process.terminate()  # the bootloader passes SIGTERM on to the server
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_http_server_becomes_ready(http_server: tuple[str, Path]) -> None:
    """uvicorn chooses its loop and protocol modules by name at run time: the bundle must hold them."""
    url, log = http_server
    deadline = time.monotonic() + 90
    status = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
                status = response.status
                break
        except urllib.error.HTTPError as error:
            status = error.code
        except OSError:
            pass
        time.sleep(0.2)
    assert status == 200, f"/readyz answered {status}:\n{log.read_text()}"
    with urllib.request.urlopen(f"{url}/version", timeout=5) as response:
        assert __version__ in response.read().decode()


@pytest.mark.timeout(BUILD_TIMEOUT + 120)
def test_the_bundled_model_is_copied_once_then_used_in_place(
    standalone: Path, tmp_path: Path, model_path: Path
) -> None:
    bundle = read_bundle(standalone)
    assert bundle is not None and bundle.sha256 == file_sha256(model_path)
    env = bare_env(tmp_path)
    first = run(standalone, env, "model", "status", "--json")
    assert json.loads(first.stdout)["state"] == "absent"
    started = time.monotonic()
    fetched = run(standalone, env, "model", "fetch")
    first_seconds = time.monotonic() - started
    assert fetched.returncode == 0, fetched.stderr
    copy = Path(fetched.stdout.strip())
    assert copy == tmp_path / "cache" / "models" / bundle.sha256 / model_path.name
    assert copy.read_bytes() == model_path.read_bytes() and stat.S_IMODE(copy.stat().st_mode) == 0o444
    started = time.monotonic()
    again = run(standalone, env, "model", "fetch")
    later_seconds = time.monotonic() - started
    assert Path(again.stdout.strip()) == copy and again.stderr == ""
    print(f"first start copies the model: {first_seconds:.2f} s; later starts: {later_seconds:.2f} s")
    assert run(standalone, env, "model", "verify").returncode == 0
