"""The web UI's defences, in a real browser: token rights exactly as over MCP, CSRF, Host/Origin, inert
untrusted content, strict CSP, and the reverse-proxy headers believed only from a trusted proxy."""

from __future__ import annotations

import re
from pathlib import Path

import httpx2 as httpx
from playwright.sync_api import BrowserContext, ConsoleMessage, Dialog, Page, expect

from tests.browser.conftest import READER, SCOPED, WRITER, login, mcp, screenshot
from tests.e2e.conftest import HttpServer, server_env

XSS = """# Payloads

<script>window.__pwned = "script"; alert("script")</script>

<img src=x onerror="window.__pwned = 'img'; alert('img')">

<a href="javascript:alert('raw link')" onclick="alert('click')">raw link</a>

[markdown link](javascript:alert('md'))
[data link](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)

![tracking pixel](http://198.51.100.9/pixel.png)

<svg onload="alert('svg')"></svg>
<iframe src="javascript:alert('frame')"></iframe>
<style>body { display: none }</style>
"""


def csrf_of(page: Page) -> str:
    return page.locator("input[name=csrf]").first.get_attribute("value") or ""


def test_untrusted_content_renders_inert(context: BrowserContext, page: Page, server: HttpServer) -> None:
    mcp(server, "remember", name="payload", scope="org/sec", content=XSS, tags=["<b onmouseover=alert(1)>x</b>"],
        source="javascript:alert('source')")
    dialogs: list[str] = []
    console: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    def on_console(message: ConsoleMessage) -> None:
        console.append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    login(page, server, WRITER)
    for url in ("/ui/memories/org/sec/payload", "/ui/search?q=payloads+script+pixel", "/ui/memories/org/sec/payload/history",
                "/ui/memories?scope=org/sec"):
        response = page.goto(f"{server.url}{url}")
        assert response is not None and response.ok
        csp = response.headers["content-security-policy"]
        assert "script-src 'none'" in csp and "default-src 'none'" in csp
        page.hover("text=raw link") if url.endswith("/payload") else None
        assert page.evaluate("document.scripts.length") == 0
        assert page.evaluate("window.__pwned") is None
        handlers = page.evaluate(
            "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]).map(a => a.name)"
            ".filter(n => n.startsWith('on'))"
        )
        assert handlers == []
        hrefs = page.evaluate("[...document.querySelectorAll('[href],[src]')].map(e => e.href || e.src)")
        assert not [h for h in hrefs if re.match(r"(?i)\s*(javascript|data|vbscript):", h)], hrefs
        assert page.evaluate("document.querySelectorAll('iframe, svg, img, style, object, embed').length") == 0
    page.goto(f"{server.url}/ui/memories/org/sec/payload")
    expect(page.locator("article.rendered")).to_contain_text('<script>window.__pwned = "script"')
    expect(page.locator("article.rendered")).to_contain_text("[markdown link](javascript:alert('md'))")
    expect(page.locator("a.image-link")).to_have_attribute("href", "http://198.51.100.9/pixel.png")
    page.click("text=raw link")  # the escaped text, not a link: nothing happens
    screenshot(page, "xss")
    assert dialogs == [], f"a script ran: {dialogs}"
    assert not [r for r in requests if "198.51.100.9" in r], "untrusted content made the browser load something"
    assert not [c for c in console if "pwned" in c]


def test_a_read_only_token_sees_no_write_controls_and_a_forged_post_is_refused(
    page: Page, server: HttpServer
) -> None:
    saved = mcp(server, "remember", name="reference", content="Read me, do not change me.")
    login(page, server, READER)
    expect(page.locator(".who")).to_contain_text("read-only")
    page.goto(f"{server.url}/ui/memories/global/reference")
    expect(page.locator("article.rendered")).to_contain_text("Read me")
    assert page.locator("form[method=post]").count() == 1, "only the logout form"
    assert page.locator("textarea, details.panel").count() == 0
    page.goto(f"{server.url}/ui/memories/global/reference/history")
    assert page.locator("form[method=post]").count() == 1
    page.goto(f"{server.url}/ui/memories/global/reference/history?version={saved['commit']}")
    expect(page.locator("text=Restore this version")).to_have_count(0)

    token = csrf_of(page)
    for action, form in (
        ("edit", {"content": "Changed by a forged form.", "tags": ""}),
        ("forget", {"confirm": "yes"}),
        ("move", {"scope": "elsewhere", "name": "reference"}),
        ("restore", {"version": saved["commit"]}),
    ):
        response = page.request.post(
            f"{server.url}/ui/memories/global/reference/{action}",
            form={"csrf": token, "expected_version": saved["version"], **form},
            headers={"Origin": server.url},
        )
        assert response.status == 403, (action, response.status)
        assert "read-only" in response.text()
    assert mcp(server, "read", name="reference")["content"] == "Read me, do not change me."


def test_a_scoped_token_cannot_reach_another_scope_by_url(page: Page, server: HttpServer) -> None:
    mine = mcp(server, "remember", name="notes", scope="proj-a", content="Project A notes about the parser.")
    theirs = mcp(server, "remember", name="secret", scope="proj-b", content="Project B's launch codes: parser-42.")
    login(page, server, SCOPED)
    expect(page.locator(".tree")).to_contain_text("proj-a")
    expect(page.locator(".side")).not_to_contain_text("proj-b")
    expect(page.locator("main")).not_to_contain_text("secret")
    for url in ("/ui/memories/proj-b/secret", "/ui/memories/proj-b/secret/history",
                f"/ui/memories/proj-b/secret/history?version={theirs['commit']}", "/ui/memories?scope=proj-b"):
        response = page.goto(f"{server.url}{url}")
        assert response is not None
        assert "launch codes" not in page.content()
        assert response.status in (200, 404), (url, response.status)
        if "?scope" not in url:
            assert response.status == 404
    page.goto(f"{server.url}/ui/search?q=launch+codes+parser")
    expect(page.locator(".hit-name")).to_have_text(["notes"])
    page.goto(f"{server.url}/ui/memories/proj-a/notes")
    response = page.request.post(
        f"{server.url}/ui/memories/proj-b/secret/edit",
        form={"csrf": csrf_of(page), "expected_version": theirs["version"], "content": "overwritten"},
        headers={"Origin": server.url},
    )
    assert response.status == 404
    page.goto(f"{server.url}/ui/status")
    expect(page.locator("main")).not_to_contain_text("Memories")  # index totals would count other scopes
    assert mcp(server, "read", name="secret", scope="proj-b")["content"].startswith("Project B's")
    assert mcp(server, "read", name="notes", scope="proj-a")["version"] == mine["version"]


def test_a_post_without_the_csrf_token_or_from_another_origin_is_refused(page: Page, server: HttpServer) -> None:
    saved = mcp(server, "remember", name="guarded", content="Original text.")
    login(page, server, WRITER)
    page.goto(f"{server.url}/ui/memories/global/guarded")
    token = csrf_of(page)
    url = f"{server.url}/ui/memories/global/guarded/edit"
    form = {"expected_version": saved["version"], "content": "Forged."}
    for headers, fields, why in (
        ({"Origin": server.url}, form, "no CSRF token"),
        ({"Origin": server.url}, {**form, "csrf": "A" * 43}, "a wrong CSRF token"),
        ({"Origin": "http://evil.example"}, {**form, "csrf": token}, "another origin"),
        ({"Origin": "http://localhost:evil"}, {**form, "csrf": token}, "a look-alike origin"),
    ):
        response = page.request.post(url, form=fields, headers=headers)
        assert response.status == 403, why
    response = page.request.post(
        url, data='{"content": "json"}', headers={"Origin": server.url, "Content-Type": "application/json"}
    )
    assert response.status in (400, 403)
    assert mcp(server, "read", name="guarded")["content"] == "Original text."
    response = page.request.post(url, form={**form, "csrf": token, "content": "Genuine."}, headers={"Origin": server.url})
    assert response.ok and mcp(server, "read", name="guarded")["content"] == "Genuine."


def test_host_allow_list_body_limit_and_proxy_headers(server: HttpServer) -> None:
    mcp(server, "remember", name="behind-proxy", content="Links carry the proxy's prefix.")
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.get("/ui/login", headers={"Host": "evil.example"}).status_code == 421
        assert http.get("/ui/login", headers={"Host": "localhost:evil"}).status_code == 421
        assert http.get("/", follow_redirects=False).headers["location"] == "/ui/"

        behind = {"X-Forwarded-Proto": "https", "X-Forwarded-Prefix": "/memory", "Origin": "https://localhost"}
        page = http.get("/ui/login", headers=behind)
        assert 'action="/memory/ui/login"' in page.text and "/memory/ui/static/style.css" in page.text
        login = http.post("/ui/login", data={"token": WRITER}, headers=behind, follow_redirects=False)
        assert login.status_code == 303 and login.headers["location"] == "/memory/ui/"
        cookie = login.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert "Path=/memory/ui" in cookie
        session = cookie.split(";")[0]
        listing = http.get("/ui/memories", headers={**behind, "Cookie": session})
        assert listing.status_code == 200 and 'href="/memory/ui/memories/' in listing.text
        assert http.get("/ui/memories", headers={"Cookie": session}).status_code == 200

        huge = "x" * (4 * 1024 * 1024)
        too_big = http.post("/ui/memories/global/x/edit", content=f"content={huge}",
                            headers={"Cookie": session, "Origin": server.url,
                                     "Content-Type": "application/x-www-form-urlencoded"})
        assert too_big.status_code == 413


def test_open_loopback_server_needs_no_login_but_still_checks_csrf(
    tmp_path: Path, model_path: Path, page: Page
) -> None:
    server = HttpServer(server_env(tmp_path, model_path))
    try:
        server.wait_ready()
        mcp(server, "remember", name="open-note", content="Written by an agent on loopback.")
        page.goto(f"{server.url}/ui/")
        expect(page).to_have_url(f"{server.url}/ui/")
        expect(page.locator("text=Log out")).to_have_count(0)
        assert page.request.get(f"{server.url}/ui/login", max_redirects=0).status == 303
        with httpx.Client(base_url=server.url, timeout=30) as http:
            # Forwarded headers from an untrusted peer are ignored: no prefix, no Secure cookie.
            answer = http.get("/ui/", headers={"X-Forwarded-Prefix": "/evil", "X-Forwarded-Proto": "https"})
            assert "/evil" not in answer.text and "Secure" not in answer.headers["set-cookie"]
        response = page.request.post(
            f"{server.url}/ui/memories/global/open-note/forget", form={"expected_version": "abcdef0", "confirm": "yes"},
            headers={"Origin": server.url},
        )
        assert response.status == 403, "no CSRF token"
        page.goto(f"{server.url}/ui/memories/global/open-note")
        page.click("details#edit > summary")
        page.fill("textarea[name=content]", "Corrected by a person.")
        page.click("details#edit button[type=submit]")
        expect(page.locator(".alert.ok")).to_contain_text("Saved")
        history = mcp(server, "history", name="open-note")["versions"]
        assert len(history) == 2 and history[0]["author"].startswith("e2e ")
    finally:
        server.stop()
