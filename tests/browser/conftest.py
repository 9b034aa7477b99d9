"""The web UI in a real browser: Debian's Chromium driven by Playwright, against `memory-mcp serve` on loopback.

Screenshots of the main pages go to `build/screenshots/` (laptop and phone widths), to be looked at.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.e2e.conftest import HttpServer, server_env

CHROMIUM_ENV = "MEMORY_MCP_TEST_CHROMIUM"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
LAPTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}

WRITER = "writer-secret-0123456789abcdef"
READER = "reader-secret-0123456789abcdef"
SCOPED = "scoped-secret-0123456789abcdef"


def chromium_path() -> str:
    found = os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        pytest.fail(f"Chromium not found at {found}: apt-get install chromium (or set {CHROMIUM_ENV})")
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=chromium_path())
    yield launched
    launched.close()


def tokens_toml() -> str:
    return f"""
[[token]]
name = "alice"
sha256 = "{hashlib.sha256(WRITER.encode()).hexdigest()}"

[[token]]
name = "reader"
token = "{READER}"
read_only = true

[[token]]
name = "agent-a"
sha256 = "{hashlib.sha256(SCOPED.encode()).hexdigest()}"
scopes = ["proj-a"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, model_path: Path) -> Iterator[HttpServer]:
    """One server per test module, with tokens: a writer, a read-only reader and a token scoped to proj-a."""
    root = tmp_path_factory.mktemp("ui")
    tokens = root / "tokens.toml"
    tokens.write_text(tokens_toml())
    running = HttpServer(server_env(root, model_path), "--tokens-file", str(tokens), "--trusted-proxy", "127.0.0.1")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) at laptop width."""
    made = browser.new_context(viewport=LAPTOP)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def login(page: Page, server: HttpServer, token: str) -> None:
    page.goto(f"{server.url}/ui/login")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/ui/")


def mcp_client(server: HttpServer, token: str = WRITER) -> Client:
    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return Client(streamable_http_client(f"{server.url}/mcp", http_client=http))


def mcp(server: HttpServer, tool: str, **arguments: Any) -> dict[str, Any]:
    """One tool call through a real MCP client, as an agent would make it (in its own thread: Playwright's
    sync API owns this thread's event loop)."""

    async def run() -> dict[str, Any]:
        async with mcp_client(server) as client:
            result = await client.call_tool(tool, arguments)
            assert not result.is_error, f"{tool}({arguments}) failed: {result.content}"
            return json.loads(result.content[0].text)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(anyio.run, run).result()


def screenshot(page: Page, name: str) -> None:
    """The page at laptop and phone widths, full length."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or LAPTOP
    for label, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
    page.set_viewport_size(size)
