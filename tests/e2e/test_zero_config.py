"""No model configured: commands and servers fetch the pinned default once, from a real HTTP server on
loopback that serves the test model (pinned by its real sha256 through MEMORY_MCP_MODEL_URL and
MEMORY_MCP_MODEL_SHA256)."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memory_mcp.files import file_sha256
from tests.e2e.conftest import HttpServer, call, http_get, run_cli, server_env
from tests.model_server import serve_model

pytestmark = pytest.mark.anyio


def mirror_env(root: Path, url: str, sha256: str) -> dict[str, str]:
    env = server_env(root, None)
    env.update(MEMORY_MCP_MODEL_URL=url, MEMORY_MCP_MODEL_SHA256=sha256, MEMORY_MCP_LOG_LEVEL="WARNING")
    return env


def test_two_first_starts_share_one_download(tmp_path: Path, model_path: Path) -> None:
    sha256 = file_sha256(model_path)
    # Slow enough (about 3 s for the file) that the second process starts while the first downloads.
    with serve_model(model_path, bytes_per_second=model_path.stat().st_size // 3) as server:
        env = mirror_env(tmp_path, server.url, sha256)
        command = [sys.executable, "-m", "memory_mcp.cli", "model", "fetch"]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not server.requests:
            time.sleep(0.02)
        second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert server.requests == [None], "one download, no second request"
    path = Path(outputs[0][0].strip())
    assert outputs[1][0].strip() == str(path) and path.read_bytes() == model_path.read_bytes()
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert "downloading" in outputs[0][1] and "% of" in outputs[0][1], "plain progress lines on a pipe"


def test_commands_work_with_no_model_configured(tmp_path: Path, model_path: Path) -> None:
    sha256 = file_sha256(model_path)
    with serve_model(model_path) as server:
        env = mirror_env(tmp_path, server.url, sha256)
        status = json.loads(run_cli(env, "model", "status", "--json").stdout)
        assert status["source"] == "default" and status["state"] == "absent" and status["sha256"] == sha256
        saved = run_cli(
            env, "remember", "kettle", "--content", "Descale the kettle with citric acid monthly."
        )
        assert saved.returncode == 0, saved.stderr
        assert "downloading" in saved.stderr
        found = run_cli(env, "recall", "how do I clean limescale from the kettle", "--json")
        assert json.loads(found.stdout)["hits"][0]["name"] == "kettle"
        assert found.stderr == "", "the second command finds the model in the cache, quietly"
        assert len(server.requests) == 1
    assert run_cli(env, "model", "verify").returncode == 0
    assert json.loads(run_cli(env, "model", "status", "--json").stdout)["state"] == "present"


def test_offline_first_start_is_one_clear_error(tmp_path: Path, model_path: Path) -> None:
    with serve_model(model_path) as server:
        url = server.url  # nothing listens there once the block is left
    sha256 = file_sha256(model_path)
    failed = run_cli(mirror_env(tmp_path, url, sha256), "list")
    assert failed.returncode == 5
    assert failed.stderr.count("error:") == 1 and "--model" in failed.stderr
    assert url in failed.stderr and sha256 in failed.stderr


async def test_readyz_shows_the_download_then_serves(tmp_path: Path, model_path: Path) -> None:
    sha256 = file_sha256(model_path)
    with serve_model(model_path, bytes_per_second=model_path.stat().st_size // 4) as server:
        env = mirror_env(tmp_path, server.url, sha256)
        env["MEMORY_MCP_LOG_LEVEL"] = "INFO"
        http = HttpServer(env)
        try:
            http.wait_listening()
            details = set()
            while http_get(f"{http.url}/readyz")[0] != 200:
                details.add(http_get(f"{http.url}/readyz")[1]["parts"]["model"].get("detail", ""))
                assert http.process.poll() is None, http.log.read_text()
                time.sleep(0.1)
            percents = sorted(int(d.split()[1].rstrip("%")) for d in details if d.startswith("downloading "))
            assert len(percents) >= 2 and 0 <= percents[0] < percents[-1] <= 100, details
            async with http.client() as client:
                await call(client, "remember", name="plants", content="Water the ferns every Sunday.")
                hits = await call(client, "recall", query="when to water ferns")
            assert hits["hits"][0]["name"] == "plants"
        finally:
            log = http.stop()
    assert "downloading" in log and len(server.requests) == 1
