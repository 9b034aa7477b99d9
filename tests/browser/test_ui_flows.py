"""What a person does in the web UI: log in, find, read, edit, compare versions, restore, and log out."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import WRITER, login, mcp, screenshot
from tests.e2e.conftest import HttpServer


def test_search_open_edit_and_see_the_diff_in_history(page: Page, server: HttpServer) -> None:
    mcp(server, "remember", name="deploy/fridays", scope="org/ops", tags=["ops", "decision"],
        content="# Deploys\n\nNever deploy on **Fridays** after 15:00.\n\n- two people on call\n- a ticket",
        source="retro 2026-11")
    mcp(server, "remember", name="rust/async-tips", scope="org/backend", tags=["rust"],
        content="Prefer `tokio::task::spawn_blocking` for CPU-bound work; never block the runtime.")
    mcp(server, "remember", name="style", content="Line length 110, ruff for linting.", tags=["python"])
    login(page, server, WRITER)
    expect(page.locator(".tree")).to_contain_text("org")
    expect(page.locator("table.list")).to_contain_text("deploy/fridays")
    screenshot(page, "memories")

    page.fill(".top-search input[name=q]", "when may we deploy on a friday")
    page.press(".top-search input[name=q]", "Enter")
    first = page.locator(".hit").first
    expect(first.locator(".hit-name")).to_have_text("deploy/fridays")
    expect(first.locator(".match")).to_have_text(re.compile("both|semantic|lexical"))
    assert float(first.locator(".score").inner_text()) > 0.3
    expect(first.locator(".snippet mark").first).to_have_text(re.compile("deploy|fridays", re.IGNORECASE))
    screenshot(page, "search")

    first.locator(".hit-name").click()
    expect(page).to_have_url(f"{server.url}/ui/memories/org/ops/deploy/fridays")
    expect(page.locator("article.rendered strong")).to_have_text("Fridays")
    expect(page.locator(".meta")).to_contain_text("retro 2026-11")
    before = page.locator(".meta code").first.get_attribute("title")
    screenshot(page, "memory")

    page.click("details#edit > summary")
    page.fill("textarea[name=content]", "# Deploys\n\nNever deploy on **Fridays** after 14:00.\n\n- two people on call")
    page.fill("input#tags", "ops, decision, rule")
    page.click("details#edit button[type=submit]")
    expect(page.locator(".alert.ok")).to_contain_text("Saved")
    expect(page.locator("article.rendered")).to_contain_text("after 14:00")
    expect(page.locator(".meta")).to_contain_text("rule")
    assert page.locator(".meta code").first.get_attribute("title") != before

    page.click("text=History")
    rows = page.locator("table.versions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("alice")
    expect(page.locator(".diff .d-del")).to_contain_text(["tags: ops, decision", "after 15:00", "- a ticket"])
    expect(page.locator(".diff .d-add")).to_contain_text(["tags: ops, decision, rule", "after 14:00"])
    screenshot(page, "history")
    assert mcp(server, "read", name="deploy/fridays", scope="org/ops")["tags"] == ["ops", "decision", "rule"]


def test_a_conflicting_agent_write_is_shown_and_nothing_is_lost(page: Page, server: HttpServer) -> None:
    mcp(server, "remember", name="runbook", scope="org/ops", content="Restart the queue workers one by one.")
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories/org/ops/runbook")
    page.click("details#edit > summary")
    page.fill("textarea[name=content]", "Restart the queue workers one by one, then check the lag dashboard.")

    mcp(server, "edit", name="runbook", scope="org/ops", content="Restart workers; drain the queue first.")
    page.click("details#edit button[type=submit]")

    expect(page.locator(".alert.error")).to_contain_text("changed since you read it")
    expect(page.locator("textarea[name=content]")).to_have_value(
        "Restart the queue workers one by one, then check the lag dashboard."
    )
    expect(page.locator("article.rendered")).to_contain_text("drain the queue first")
    expect(page.locator("#edit .diff .d-del")).to_contain_text("drain the queue first")
    expect(page.locator("#edit .diff .d-add")).to_contain_text("check the lag dashboard")
    screenshot(page, "conflict")
    assert mcp(server, "read", name="runbook", scope="org/ops")["content"] == "Restart workers; drain the queue first."

    page.click("details#edit button[type=submit]")  # saving again, having seen the agent's version
    expect(page.locator(".alert.ok")).to_contain_text("Saved")
    history = mcp(server, "history", name="runbook", scope="org/ops")["versions"]
    assert len(history) == 3, "the agent's version stays in history"


def test_restore_an_old_version(page: Page, server: HttpServer) -> None:
    mcp(server, "remember", name="limits", content="The API allows 100 requests per minute.")
    mcp(server, "edit", name="limits", content="The API allows 50 requests per minute.", tags=["api"])
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories/global/limits/history")
    page.locator("table.versions tbody tr").nth(1).locator("a code").click()
    expect(page.locator(".version pre")).to_have_text("The API allows 100 requests per minute.")
    page.click("text=Restore this version")
    expect(page.locator(".alert.ok")).to_contain_text("Restored")
    expect(page.locator("table.versions tbody tr")).to_have_count(3)
    expect(page.locator("table.versions tbody tr").first).to_contain_text("restore memory 'limits'")
    memory = mcp(server, "read", name="limits")
    assert (memory["content"], memory["tags"]) == ("The API allows 100 requests per minute.", [])


def test_move_and_forget(page: Page, server: HttpServer) -> None:
    saved = mcp(server, "remember", name="draft", scope="org/ops", content="A plan for the cluster migration.")
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories/org/ops/draft")
    page.click("text=Move or rename")
    page.fill("form[action$='/move'] input[name=scope]", "org/infra")
    page.fill("form[action$='/move'] input[name=name]", "plans/migration")
    page.click("form[action$='/move'] button")
    expect(page).to_have_url(re.compile(r"/ui/memories/org/infra/plans/migration\?done=moved$"))
    assert mcp(server, "read", name="plans/migration", scope="org/infra")["id"] == saved["id"]

    page.click("details.danger > summary")
    page.check("input[name=confirm]")
    page.click("form[action$='/forget'] button")
    expect(page).to_have_url(re.compile(r"/ui/memories\?done=forgotten$"))
    page.goto(f"{server.url}/ui/memories/org/infra/plans/migration")
    expect(page.locator("h1")).to_have_text("Not found")


def test_status_page_shows_the_parts_and_the_index(page: Page, server: HttpServer) -> None:
    login(page, server, WRITER)
    page.click("text=Status")
    expect(page.locator(".alert")).to_contain_text("Ready")
    for part in ("repo", "model", "index", "sync"):
        expect(page.locator("table.list")).to_contain_text(part)
    expect(page.locator("dl.facts")).to_contain_text("Memories")
    screenshot(page, "status")


def test_logout_ends_the_session(context: BrowserContext, page: Page, server: HttpServer) -> None:
    login(page, server, WRITER)
    cookies = context.cookies()
    session = next(c for c in cookies if c["name"] == "memory_mcp_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/ui"
    assert WRITER not in session["value"]
    page.click("text=Log out")
    expect(page).to_have_url(f"{server.url}/ui/login")
    page.goto(f"{server.url}/ui/memories")
    expect(page).to_have_url(re.compile(r"/ui/login"))

    context.add_cookies([session])  # a copy of the old cookie no longer opens anything
    response = page.request.get(f"{server.url}/ui/memories", max_redirects=0)
    assert response.status == 303 and response.headers["location"].startswith("/ui/login")


def test_a_wrong_token_is_refused_and_guessing_is_throttled(page: Page, server: HttpServer) -> None:
    page.goto(f"{server.url}/ui/login")
    screenshot(page, "login")
    statuses = []
    for attempt in range(7):
        response = page.request.post(
            f"{server.url}/ui/login",
            form={"token": f"wrong-token-{attempt:020d}"},
            headers={"Origin": server.url, "X-Forwarded-For": "198.51.100.7"},
        )
        statuses.append(response.status)
    assert statuses[:5] == [401] * 5 and statuses[-1] == 429, statuses


def test_the_memory_page_shows_every_field_and_the_raw_text(page: Page, server: HttpServer) -> None:
    content = "# Backups\n\nRun `restic check` **weekly**; keep <b>30</b> days."
    saved = mcp(server, "remember", name="backups", scope="org/infra", tags=["ops", "storage"],
                content=content, source="runbook v2")
    stored = mcp(server, "read", name="backups", scope="org/infra")
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories/org/infra/backups")
    expect(page.locator("article.rendered h1")).to_have_text("Backups")
    expect(page.locator("article.rendered code")).to_have_text("restic check")
    expect(page.locator("article.rendered")).to_contain_text("keep <b>30</b> days")  # raw HTML shown, not run
    terms, values = page.locator(".meta dt").all_inner_texts(), page.locator(".meta dd").all_inner_texts()
    facts = dict(zip(terms, values, strict=True))
    minute = stored["created_at"].replace("T", " ")[:16] + " UTC"
    assert facts == {
        "Scope": "org/infra", "Tags": "opsstorage", "Source": "runbook v2", "Created": minute,
        "Updated": stored["updated_at"].replace("T", " ")[:16] + " UTC", "Version": saved["version"][:12],
        "Id": saved["id"],
    }
    assert page.locator(".meta code").first.get_attribute("title") == saved["version"]
    expect(page.locator("details.raw pre")).not_to_be_visible()
    page.click("details.raw > summary")
    expect(page.locator("details.raw pre")).to_have_text(content)


def test_a_diff_between_any_two_versions(page: Page, server: HttpServer) -> None:
    mcp(server, "remember", name="oncall", content="Week 1: Ana.")
    for week in (2, 3):
        mcp(server, "edit", name="oncall", content=f"Week {week}: {'Ben' if week == 2 else 'Cleo'}.")
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories/global/oncall/history")
    rows = page.locator("table.versions tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator(".diff .d-del")).to_have_text([re.compile("Week 2: Ben.$")])  # the newest two

    rows.nth(2).locator("input[name=from]").check()
    rows.nth(0).locator("input[name=to]").check()
    page.click("text=Compare selected")
    expect(page.locator(".diff .d-del")).to_have_text([re.compile("Week 1: Ana.$")])
    expect(page.locator(".diff .d-add")).to_have_text([re.compile("Week 3: Cleo.$")])

    rows.nth(0).locator("input[name=from]").check()  # backwards: newest to oldest
    rows.nth(2).locator("input[name=to]").check()
    page.click("text=Compare selected")
    expect(page.locator(".diff .d-del")).to_have_text([re.compile("Week 3: Cleo.$")])
    expect(page.locator(".diff .d-add")).to_have_text([re.compile("Week 1: Ana.$")])
