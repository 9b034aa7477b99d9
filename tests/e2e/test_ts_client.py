"""The official TypeScript SDK client (`@modelcontextprotocol/sdk`, pinned in tests/node/harden) against
bearer-token auth: with a token in a header or from an auth provider it connects; without one it gets a
plain 401, and nothing sends it looking for an authorization server that does not exist."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import HttpServer, http_get

CLIENT_DIR = Path(__file__).resolve().parents[1] / "node" / "harden"
TOKEN = "ts-client-secret-0123456789abcdef"


def run_client(server: HttpServer, mode: str, token: str = TOKEN) -> dict:
    node = shutil.which("node")
    if node is None or not (CLIENT_DIR / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir():
        pytest.fail(f"needs node and `npm ci` in {CLIENT_DIR} (.ci/run does both)")
    done = subprocess.run(
        [node, "client.mjs", f"{server.url}/mcp", mode, token],
        cwd=CLIENT_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_typescript_client_with_and_without_an_auth_provider(start_server, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(f'[[token]]\nname = "ts"\ntoken = "{TOKEN}"\n')
    server: HttpServer = start_server("--tokens-file", str(tokens))

    for mode in ("header", "provider"):
        result = run_client(server, mode)
        assert "error" not in result, result
        assert "remember" in result["tools"] and result["listed"], result

    plain = run_client(server, "none", token="")
    assert plain.get("code") == 401 and "tools" not in plain, plain
    assert plain["requested"] == [f"{server.url}/mcp"], "without a provider: one request, one 401"

    oauth = run_client(server, "provider-without-token", token="")
    assert "tools" not in oauth and "send a bearer token" in oauth["error"], oauth
    assert all(url.startswith(server.url) for url in oauth["requested"]), oauth
    metadata = [url for url in oauth["requested"] if "/.well-known/" in url]
    assert metadata, oauth  # the provider looks for metadata, and finds none
    for url in metadata:
        status = http_get(url)[0]
        assert status == 404, f"{url} answered {status}: we advertise no authorization server"
