"""The web UI's pure parts: safe markdown, marked snippets, diffs, the scope tree, sessions and the request guard."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from starlette.requests import Request

from memory_mcp.core import Scope
from memory_mcp.server.ui import render
from memory_mcp.server.ui.guard import Guard
from memory_mcp.server.ui.limits import RateLimiter
from memory_mcp.server.ui.session import KEY_FILE, Sessions


def test_markdown_keeps_raw_html_and_unsafe_links_as_text() -> None:
    html = render.markdown(
        "<script>x()</script>\n\n[a](javascript:x()) [b](https://ok.example) <b onclick=x()>t</b>\n\n![i](http://t/p.png)"
    )
    assert "<script" not in html and "&lt;script&gt;" in html
    assert 'href="javascript' not in html and "<b " not in html
    assert '<a href="https://ok.example" rel="nofollow noopener noreferrer">b</a>' in html
    assert "<img" not in html and 'class="image-link" href="http://t/p.png"' in html


def test_mark_wraps_query_words_and_escapes_the_rest() -> None:
    marked = render.mark("Deploying <b> on Fridays & deploys", render.query_words("deploy friday!"))
    assert marked == "<mark>Deploying</mark> &lt;b&gt; on <mark>Fridays</mark> &amp; <mark>deploys</mark>"
    assert render.mark("<i>", []) == "&lt;i&gt;"


def test_diff_rows() -> None:
    rows = render.diff("a\nb\nc", "a\nB\nc\nd")
    assert [(r.kind, r.text) for r in rows if r.kind != "hunk"] == [
        ("same", "a"), ("del", "b"), ("add", "B"), ("same", "c"), ("add", "d")
    ]
    assert render.diff("same", "same") == []


def test_scope_tree_totals_include_sub_scopes() -> None:
    counts = {Scope(): 3, Scope("org/a"): 2, Scope("org/a/x"): 1, Scope("org/b"): 4, Scope("solo"): 1}
    global_count, tree = render.scope_tree(counts)
    assert global_count == 3
    assert [(n.label, n.total, n.own) for n in tree] == [("org", 7, 0), ("solo", 1, 1)]
    org_a = tree[0].sorted_children[0]
    assert (org_a.scope, org_a.total, org_a.own) == ("org/a", 3, 2)
    assert org_a.sorted_children[0].scope == "org/a/x"


def test_sessions_are_signed_revocable_and_keep_their_key(tmp_path: Path) -> None:
    sessions = Sessions.from_state_dir(tmp_path)
    assert (tmp_path / KEY_FILE).stat().st_mode & 0o777 == 0o600
    session, cookie = sessions.open("ab" * 32)
    assert sessions.read(cookie) == session
    body, signature = cookie.split(".")
    forged = ("B" if signature[0] == "A" else "A") + signature[1:]
    assert sessions.read(f"{body}x.{signature}") is None and sessions.read(f"{body}.{forged}") is None
    assert sessions.read("garbage") is None and sessions.read(None) is None
    assert Sessions.from_state_dir(tmp_path).read(cookie) == session, "a restart keeps sessions"
    assert Sessions.from_state_dir(tmp_path / "other").read(cookie) is None
    assert sessions.check_csrf(session, sessions.csrf(session))
    assert not sessions.check_csrf(session, None) and not sessions.check_csrf(session, "x" * 43)
    other, _ = sessions.open("ab" * 32)
    assert not sessions.check_csrf(other, sessions.csrf(session)), "a CSRF token belongs to one session"
    sessions.close(session)
    assert sessions.read(cookie) is None


def test_an_expired_session_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = Sessions.from_state_dir(tmp_path)
    _, cookie = sessions.open("")
    later = time.time() + 13 * 3600
    monkeypatch.setattr(time, "time", lambda: later)
    assert sessions.read(cookie) is None


def request(headers: dict[str, str], client: str = "127.0.0.1", scheme: str = "http") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "client": (client, 5000), "scheme": scheme,
                    "path": "/ui/", "query_string": b"", "method": "GET", "server": ("127.0.0.1", 80)})


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("localhost", True), ("localhost:8080", True), ("127.0.0.1:1", True), ("[::1]:8080", True),
     ("MEMORY.example.com", True), ("localhost:evil", False), ("localhost.evil.com", False),
     ("user@localhost", False), ("evil.example", False), ("", False), ("localhost/x", False)],
)
def test_host_is_matched_exactly(host: str, allowed: bool) -> None:
    guard = Guard(["127.0.0.1", "localhost", "[::1]", "memory.example.com"], [])
    assert guard.host_allowed(request({"host": host} if host else {})) is allowed


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("http://localhost:8080", True), ("https://memory.example.com", True), ("http://localhost:evil", False),
     ("http://127.0.0.1:1@evil.com", False), ("null", False), ("ftp://localhost", False), (None, False)],
)
def test_writes_need_an_allowed_origin(origin: str | None, allowed: bool) -> None:
    guard = Guard(["127.0.0.1", "localhost", "memory.example.com"], [])
    assert guard.origin_allowed(request({"origin": origin} if origin else {})) is allowed


def test_forwarded_headers_count_only_from_trusted_proxies() -> None:
    guard = Guard(["localhost"], ["10.0.0.0/8"])
    forwarded = {"x-forwarded-proto": "https", "x-forwarded-for": "203.0.113.5, 10.1.1.1",
                 "x-forwarded-prefix": "/memory/"}
    seen = guard.origin(request(forwarded, client="10.2.3.4"))
    assert (seen.secure, seen.client, seen.prefix) == (True, "10.1.1.1", "/memory")
    assert seen.url("/search") == "/memory/ui/search" and seen.url() == "/memory/ui/"
    stranger = guard.origin(request(forwarded, client="192.0.2.1"))
    assert (stranger.secure, stranger.client, stranger.prefix) == (False, "192.0.2.1", "")
    odd = guard.origin(request({"x-forwarded-prefix": "/a\"><script>"}, client="10.0.0.1"))
    assert odd.prefix == ""


def test_rate_limiter_refills() -> None:
    limiter = RateLimiter(rate=1000.0, burst=2)
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b"), "buckets are per client"
    time.sleep(0.01)
    assert limiter.available("a") and limiter.allow("a")
