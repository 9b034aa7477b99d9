"""The memory list and the scope tree in a real browser: the tree's counts, the tag filter (typed, or a tag
clicked), both sort orders, and pagination (50 a page) in each of them."""

from __future__ import annotations

import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import PHONE, WRITER, login, mcp, mcp_client, screenshot
from tests.e2e.conftest import HttpServer

OPS = [f"note-{n:02d}" for n in range(55)]
"""In org/ops, remembered from the last name to the first, so name order and update order are opposite."""
MEMORIES: list[dict[str, Any]] = [
    *({"name": name, "scope": "org/ops", "content": f"Ops note {name}: rotate the pager.",
       "tags": ["ops", "oncall"] if int(name[-2:]) % 5 == 0 else ["ops"]} for name in reversed(OPS)),
    *({"name": f"db-{n}", "scope": "org/ops/db", "content": f"Database note {n}: vacuum weekly.",
       "tags": ["ops", "db"]} for n in range(4)),
    *({"name": f"crate-{n}", "scope": "org/backend", "content": f"Rust note {n}: prefer owned strings.",
       "tags": ["rust"]} for n in range(2)),
    *({"name": name, "content": f"General note {name}.", "tags": ["python"]}
      for name in ("zeta", "style", "alpha")),
]


def remember_all(server: HttpServer, memories: list[dict[str, Any]]) -> None:
    """Many `remember` calls through one MCP session (in its own thread, as `mcp` does)."""

    async def run() -> None:
        async with mcp_client(server) as client:
            for arguments in memories:
                result = await client.call_tool("remember", arguments)
                assert not result.is_error, result.content

    with ThreadPoolExecutor(1) as pool:
        pool.submit(anyio.run, run).result()


@pytest.fixture(scope="module", autouse=True)
def corpus(server: HttpServer) -> None:
    remember_all(server, MEMORIES)


def rows(page: Page) -> list[tuple[str, str, list[str], str]]:
    """The list's rows: (scope, name, tags, updated)."""
    out = []
    for row in page.locator("table.list tbody tr").all():
        tags = [tag.inner_text() for tag in row.locator("td.tags .tag").all()]
        updated = row.locator("td.when time").get_attribute("datetime") or ""
        out.append((row.locator("td.scope").inner_text(), row.locator("td.name").inner_text(), tags, updated))
    return out


def all_pages(page: Page) -> list[list[tuple[str, str, list[str], str]]]:
    """The rows of this page and of every page after it, following the "Next page" links."""
    pages = [rows(page)]
    while page.locator("a[rel=next]").count():
        page.click("a[rel=next]")
        expect(page.locator(".pager")).to_contain_text("First page")
        pages.append(rows(page))
    return pages


def test_the_scope_tree_counts_each_subtree(page: Page, server: HttpServer) -> None:
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories")
    counts = {}
    for link in page.locator(".tree a").all():
        counts[link.locator(".scope-name").inner_text()] = int(link.locator(".count").inner_text())
    assert counts == {"All scopes": 64, "global": 3, "org": 61, "ops": 59, "db": 4, "backend": 2}
    ops = page.locator(".tree a", has=page.locator(".scope-name", has_text=re.compile(r"^ops$")))
    assert ops.locator(".count").get_attribute("title") == "55 here, 59 with sub-scopes"

    ops.click()
    expect(page.locator("h1")).to_contain_text("org/ops")
    expect(ops).to_have_attribute("aria-current", "true")
    shown = [row for one in all_pages(page) for row in one]
    assert Counter(scope for scope, *_ in shown) == {"org/ops": 55, "org/ops/db": 4}, "the subtree, no more"


def test_the_tag_filter_typed_or_clicked(page: Page, server: HttpServer) -> None:
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories")
    page.fill(".filters input[name=tags]", "oncall")
    page.click(".filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"tags=oncall"))
    found = rows(page)
    assert sorted(name for _, name, _, _ in found) == [name for name in OPS if int(name[-2:]) % 5 == 0]
    assert all("oncall" in tags for _, _, tags, _ in found)
    expect(page.locator(".filters input[name=tags]")).to_have_value("oncall")

    page.fill(".filters input[name=tags]", "db, ops")  # every tag must be carried
    page.click(".filters button[type=submit]")
    found = [(scope, name) for scope, name, _, _ in rows(page)]
    assert found == [("org/ops/db", f"db-{n}") for n in range(4)]

    page.locator("table.list td.tags .tag", has_text="db").first.click()
    expect(page).to_have_url(re.compile(r"tags=db$"))
    assert len(rows(page)) == 4

    page.fill(".filters input[name=tags]", "no-such-tag")
    page.click(".filters button[type=submit]")
    expect(page.locator(".empty")).to_have_text("No memories here with these tags.")
    expect(page.locator("table.list")).to_have_count(0)


def test_sorted_by_name_in_pages_of_fifty(page: Page, server: HttpServer) -> None:
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories")
    expect(page.locator("a", has_text="First page")).to_have_count(0)
    pages = all_pages(page)
    assert [len(one) for one in pages] == [50, 14]
    shown = [(scope, name) for one in pages for scope, name, _, _ in one]
    key = [("" if scope == "global" else scope, name) for scope, name in shown]
    assert key == sorted(key) and len(set(shown)) == 64, "(scope, name) order, each memory once"
    assert shown[:3] == [("global", "alpha"), ("global", "style"), ("global", "zeta")]
    screenshot(page, "memories-last-page")

    page.click("text=« First page")
    assert [(scope, name) for scope, name, _, _ in rows(page)] == shown[:50]


def test_sorted_by_update_time_in_pages_and_with_a_filter(page: Page, server: HttpServer) -> None:
    mcp(server, "edit", name="note-54", scope="org/ops", content="Ops note 54, revised: page the secondary.")
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories")
    page.select_option(".filters select[name=sort]", "updated")
    page.click(".filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"sort=updated"))
    pages = all_pages(page)
    assert [len(one) for one in pages] == [50, 14]
    shown = [row for one in pages for row in one]
    assert shown[0][1] == "note-54", "the memory edited last comes first"
    times = [updated for *_, updated in shown]
    assert times == sorted(times, reverse=True)
    ops = [name for scope, name, _, _ in shown if scope == "org/ops"]
    assert ops[1:] == OPS[:-1], "oldest remembered last: the reverse of the order they were written in"
    expect(page.locator(".filters select[name=sort]")).to_have_value("updated")

    page.goto(f"{server.url}/ui/memories?sort=updated&tags=ops")
    pages = all_pages(page)
    assert [len(one) for one in pages] == [50, 9]
    assert all("ops" in tags for one in pages for _, _, tags, _ in one)
    times = [updated for one in pages for *_, updated in one]
    assert times == sorted(times, reverse=True)


SMALL_TARGETS = """() => [...document.querySelectorAll("a, button, input, select, textarea, summary")]
    .filter(element => !element.closest(".rendered") && element.type !== "hidden")
    .map(element => [element, element.getBoundingClientRect()])
    .filter(([, box]) => box.width > 0 && (box.height < 24 || box.width < 24))
    .map(([element, box]) => `${element.tagName} "${element.innerText || element.name}" ${box.width}x${box.height}`)"""
"""Links and controls smaller than WCAG 2.2's minimum target (24 by 24 CSS px); links in rendered memory
content are exempt, as inline links in text are."""


def test_pages_fit_a_phone_and_their_targets_can_be_tapped(page: Page, server: HttpServer) -> None:
    mcp(server, "edit", name="db-0", scope="org/ops/db", content="Database note 0: vacuum nightly.")
    login(page, server, WRITER)
    page.set_viewport_size(PHONE)
    for path in ("/ui/memories", "/ui/memories/org/ops/db/db-0", "/ui/memories/org/ops/db/db-0/history",
                 "/ui/search?q=vacuum+the+database", "/ui/status", "/ui/memories?cursor=" + last_cursor(page)):
        page.goto(f"{server.url}{path}")
        width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"{path} scrolls sideways: {width}"
        assert page.evaluate(SMALL_TARGETS) == [], f"{path} has targets too small to tap"


def last_cursor(page: Page) -> str:
    page.goto(page.url.split("/ui/")[0] + "/ui/memories")
    href = page.locator("a[rel=next]").get_attribute("href") or ""
    return href.split("cursor=")[1]
