"""Attacks that once succeeded (issue 20), each through a real server and a real MCP client or raw HTTP:
starvation by one large write, lax argument types, oversized input, slow or vanishing clients, and
answers that said more than the caller's rights allow."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.e2e.conftest import HttpServer, call, call_error, http_get, server_env

pytestmark = pytest.mark.anyio

LARGE = " ".join(f"Line {i} of a very long design document about storage engines." for i in range(2500))


def raw_http(port: int, request: bytes, *, read: bool = True, hold: float = 0.0) -> bytes:
    """Send `request`; with `read` False, hang up after `hold` seconds without reading the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        if not read:
            time.sleep(hold)
            return b""
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def get(path: str, host: str, *, origin: str | None = None) -> bytes:
    extra = f"Origin: {origin}\r\n" if origin else ""
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n".encode()


MODERN = "2026-07-28"


def tool_call(name: str, arguments: dict, *, host: str = "127.0.0.1") -> bytes:
    """A self-contained `tools/call` of the 2026-07-28 protocol (no session to open first), as raw HTTP.
    Without its envelope the server answers 400 "Missing session ID" at once, and a test of what happens to
    a call in progress would test nothing."""
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": name}
    return rpc("tools/call", {"name": name, "arguments": arguments, "_meta": meta}, host=host, headers=headers)


def rpc(method: str, params: dict, *, host: str = "127.0.0.1", headers: dict[str, str] | None = None) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    extra = "".join(f"{key}: {value}\r\n" for key, value in (headers or {}).items())
    head = (
        f"POST /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n{extra}"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def test_a_large_remember_is_committed_at_once_and_never_holds_up_recall(start_server) -> None:
    """A memory of ~70 chunks used to go into one model call: recalls waited for all of it, and SIGTERM too.
    (That the background embedding completes is tested in tests/integration/test_background_embedding.py.)"""
    server: HttpServer = start_server()
    async with server.client() as client:
        saved = await call(client, "remember", name="design-doc", content=LARGE + " zygomorphic")
        assert "background" in saved["indexing"]
        assert http_get(f"{server.url}/readyz")[1]["vectors_pending"] == 1, "still embedding"
        hits = (await call(client, "recall", query="zygomorphic"))["hits"]
        assert [h["name"] for h in hits] == ["design-doc"], "keyword search finds it at once"
        waits = []
        for _ in range(3):
            begun = time.perf_counter()
            await call(client, "recall", query="storage engine design")
            waits.append(time.perf_counter() - begun)
        pending = http_get(f"{server.url}/readyz")[1]["vectors_pending"]
        assert pending == 1, f"recalls {waits} came after the whole background embedding"
        metrics = urllib_text(f"{server.url}/metrics")
        assert "memory_mcp_vectors_pending 1.0" in metrics

        # SIGTERM during the background embedding: a prompt stop that keeps the acknowledged write.
        begun = time.perf_counter()
        log = server.stop()
        assert time.perf_counter() - begun < 10, log
    restarted: HttpServer = start_server()
    async with restarted.client() as client:
        assert (await call(client, "read", name="design-doc"))["content"].endswith("zygomorphic")
        hits = (await call(client, "recall", query="zygomorphic"))["hits"]
        assert [h["name"] for h in hits] == ["design-doc"]
        body = http_get(f"{restarted.url}/readyz")[1]
        assert body["vectors_pending"] == 1 and "background" in body["parts"]["index"]["detail"], body


def urllib_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


async def test_arguments_are_strictly_typed_bounded_and_refused_in_house_style(start_server) -> None:
    server: HttpServer = start_server()
    async with server.client() as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        for tool in tools.values():
            schema = tool.input_schema
            assert schema.get("additionalProperties") is False, tool.name
            for field, spec in schema["properties"].items():
                for option in spec.get("anyOf", [spec]):
                    if option.get("type") == "string":
                        assert "maxLength" in option, f"{tool.name}.{field}"
                    if option.get("type") == "array":
                        assert "maxItems" in option and "maxLength" in option["items"], f"{tool.name}.{field}"

        await call(client, "remember", name="kept", content="The original text.")
        cases = [
            ("remember", {"name": "kept", "content": "Overwritten!", "replace": "yes"}, "replace", "true or false"),
            ("recall", {"query": "original", "limit": "3"}, "limit", "whole number"),
            ("recall", {"query": "original", "limit": 0}, "limit", "at least 1"),
            ("recall", {"query": "original", "colour": "blue"}, "colour", "unknown argument"),
            ("recall", {"query": "original", "tags": [f"t{i}" for i in range(60_000)]}, "tags", "at most 32"),
            ("recall", {"query": "x" * 5000}, "query", "at most 4096"),
            ("list", {"cursor": "[" * 100_000}, "cursor", "at most 512"),
            ("read", {}, "", "give the memory's name"),
        ]
        for tool, arguments, field, fix in cases:
            text = await call_error(client, tool, **arguments)
            assert "InvalidInput" in text and field in text and fix in text, (tool, text)
            assert "pydantic" not in text and "validation error" not in text, text
        deep = base64.urlsafe_b64encode(b"[" * 380).decode()
        assert "cursor is not one returned by list" in await call_error(client, "list", cursor=deep)
        assert (await call(client, "read", name="kept"))["content"] == "The original text."
        as_text = await call(client, "list", tags='["nothing-has-this"]')  # a JSON-encoded list still works
        assert as_text["count"] == 0


async def test_a_forgotten_memory_has_a_history_and_version_means_one_thing(start_server) -> None:
    server: HttpServer = start_server()
    async with server.client() as client:
        first = await call(client, "remember", name="plan", content="Plan A: ship on Monday.", scope="team")
        await call(client, "edit", name="plan", scope="team", content="Plan B: ship on Friday.")
        await call(client, "forget", name="plan", scope="team")
        by_id = await call(client, "history", id=first["id"])
        by_name = await call(client, "history", name="plan", scope="team")
        assert by_id["versions"] == by_name["versions"] and by_id["count"] == 3
        assert by_id["forgotten"] is True and "restore" in by_id["hint"]
        assert by_id["versions"][0]["deleted"] and by_id["versions"][2]["version"] == first["version"]
        for version in (first["version"], by_id["versions"][2]["commit"], first["version"][:8]):
            old = await call(client, "history", name="plan", scope="team", version=version)
            assert old["content"] == "Plan A: ship on Monday."
        assert "NotFound" in await call_error(client, "history", name="never-was", scope="team")
        assert "NotFound" in await call_error(client, "history", id="00000000-0000-0000-0000-000000000000")


async def test_a_memory_deleted_by_hand_keeps_its_history(start_server, tmp_path: Path) -> None:
    """Deleted outside the server: from the work tree only (git still holds it), then committed with a message
    that names no id (as a person would); history by id and by name finds it either way."""
    server: HttpServer = start_server()
    repo = tmp_path / "repo"
    git = ["git", "-C", str(repo), "-c", "user.name=person", "-c", "user.email=person@example.com"]
    async with server.client() as client:
        first = await call(client, "remember", name="runbook", content="Restart the broker first.", scope="ops")
        await call(client, "edit", name="runbook", scope="ops", content="Restart the broker, then the API.")
        (repo / "projects" / "ops" / "runbook.md").unlink()
        from_tree = await call(client, "history", id=first["id"])
        assert from_tree["count"] == 2 and "forgotten" not in from_tree, "git still holds it: nothing changed"

        subprocess.run([*git, "rm", "-q", "projects/ops/runbook.md"], check=True)
        subprocess.run([*git, "commit", "-q", "-m", "tidy up the ops folder"], check=True)
        by_id = await call(client, "history", id=first["id"])
        by_name = await call(client, "history", name="runbook", scope="ops")
        assert by_id["versions"] == by_name["versions"] and by_id["count"] == 3
        assert by_id["forgotten"] is True and by_id["versions"][0]["message"] == "tidy up the ops folder"
        assert by_id["versions"][0]["author"].startswith("person")
        old = await call(client, "history", id=first["id"], version=first["version"])
        assert old["content"] == "Restart the broker first."
        assert "NotFound" in await call_error(client, "read", id=first["id"])


async def test_hosts_and_origins_match_exactly_and_probes_show_no_paths(start_server, tmp_path: Path) -> None:
    server: HttpServer = start_server()
    port = server.port
    assert status(raw_http(port, get("/readyz", f"127.0.0.1:{port}"))) == 200
    assert status(raw_http(port, get("/readyz", "10.1.2.3:8080"))) == 200, "kubelet probes use the pod IP"
    assert status(raw_http(port, get("/metrics", "[fd00::1]:8080"))) == 200
    for host in ("evil.example", f"localhost:{port}@evil.example", "localhost:evil", "127.0.0.1.evil.example"):
        for path in ("/readyz", "/metrics"):
            assert status(raw_http(port, get(path, host))) == 421, (path, host)
        assert status(raw_http(port, tool_call("list", {}, host=host))) == 421, host
    for origin in ("http://localhost:evil", "http://127.0.0.1:1@evil.com", "http://evil.com", "null"):
        answer = raw_http(port, get("/readyz", f"127.0.0.1:{port}", origin=origin))
        assert status(answer) == 403, origin
    assert status(raw_http(port, get("/readyz", f"127.0.0.1:{port}", origin=f"http://localhost:{port}"))) == 200
    body = raw_http(port, get("/readyz", f"127.0.0.1:{port}")).split(b"\r\n\r\n", 1)[1].decode()
    assert str(tmp_path) not in body and "/" not in json.dumps(json.loads(body)["parts"]), body


def test_slow_and_idle_clients_are_dropped(start_server) -> None:
    """Slow headers, a slow body (a byte every two seconds) and idle sockets used to stay open for good."""
    server: HttpServer = start_server()
    closed: dict[str, float] = {}

    def hold(label: str, first: bytes, trickle: bytes) -> None:
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
            sock.sendall(first)
            try:
                while time.monotonic() - started < 60:
                    sock.settimeout(2)
                    try:
                        if sock.recv(65536) == b"":
                            break
                    except TimeoutError:
                        if trickle:
                            sock.sendall(trickle)
            except OSError:
                pass
        closed[label] = time.monotonic() - started

    body_head = (
        b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{"
    )
    threads = [
        threading.Thread(target=hold, args=("idle", b"", b"")),
        threading.Thread(target=hold, args=("headers", b"GET /healthz HTTP/1.1\r\n", b"X")),
        threading.Thread(target=hold, args=("body", body_head, b" ")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert closed["idle"] < 15 and closed["headers"] < 15, closed
    assert closed["body"] < 40, closed
    assert http_get(f"{server.url}/healthz")[0] == 200


def test_request_bodies_in_flight_share_one_budget(start_server) -> None:
    """Thirty 7.6 MiB bodies at once raised RSS by 750 MB: bodies being received share BODY_BUDGET (four
    of the largest), beyond which a new one is refused with 503 and Retry-After, and finished or dropped ones
    give their share back."""
    from memory_mcp.server.http_app import MAX_BODY_BYTES
    from memory_mcp.server.http_guard import BODY_BUDGET

    server: HttpServer = start_server()
    size = MAX_BODY_BYTES - 1024
    head = (
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Accept: application/json, text/event-stream\r\nContent-Length: {size}\r\n\r\n"
    ).encode()
    held = []
    try:
        for _ in range(BODY_BUDGET // size):  # all but the last byte of each: received, still in flight
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            sock.sendall(head + b" " * (size - 1))
            held.append(sock)
        time.sleep(1)  # the server has read what was sent
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
            sock.sendall(head + b" " * 65536)  # more than the budget has left: refused before the rest
            refused = sock.recv(65536)
        assert status(refused) == 503 and b"retry-after: 1" in refused.lower(), refused[:300]
    finally:
        for sock in held:
            sock.close()
    time.sleep(1)
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    answered = raw_http(server.port, rpc("initialize", hello))
    assert status(answered) == 200 and b"serverInfo" in answered, "the dropped bodies' share came back"


def test_connections_beyond_the_concurrency_limit_are_refused(start_server) -> None:
    """200 idle sockets used to be held open with no limit: past MAX_CONCURRENCY a request gets 503 at once."""
    from memory_mcp.server.http_serve import MAX_CONCURRENCY

    server: HttpServer = start_server()
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=30) for _ in range(MAX_CONCURRENCY)]
    try:
        time.sleep(1)  # every one accepted
        assert status(raw_http(server.port, get("/healthz", "127.0.0.1"))) == 503
    finally:
        for sock in held:
            sock.close()
    time.sleep(1)
    assert status(raw_http(server.port, get("/healthz", "127.0.0.1"))) == 200


def test_disconnects_cancel_quietly_and_logs_hold_no_query_strings(tmp_path: Path, model_path: Path) -> None:
    env = {**server_env(tmp_path, model_path), "MEMORY_MCP_LOG_LEVEL": "DEBUG"}
    server = HttpServer(env)
    try:
        server.wait_ready()
        assert http_get(f"{server.url}/healthz?access_token=hunter2-secret-value")[0] == 200
        # Embedded before it is committed (a larger one would be committed at once and embedded later), and
        # the caller hangs up once the server has read the request: a client gone before that is a request
        # never made (uvicorn then reports no body at all).
        content = " ".join(f"Sentence {i} of a memory whose caller hangs up." for i in range(200))
        raw_http(server.port, tool_call("remember", {"name": "abandoned", "content": content}), read=False, hold=0.2)
        time.sleep(0.5)
        raw_http(server.port, tool_call("remember", {"name": "x", "content": "y"})[:-5], read=False)
        time.sleep(5)
        listed = raw_http(server.port, tool_call("list", {}))
        assert status(listed) == 200 and b'\\"count\\":0' in listed.replace(b" ", b""), listed[-400:]
        assert b"abandoned" not in listed, "a write whose client went away must not be committed"
    finally:
        log = server.stop()
    assert "hunter2" not in log and "/healthz?[redacted]" in log
    assert "Traceback" not in log and " ERROR " not in log, log
    assert "client disconnected" in log
    commits = subprocess.run(
        ["git", "-C", str(tmp_path / "repo"), "log", "--format=%s"], capture_output=True, text=True
    ).stdout  # fails (no output) while the branch has no commit at all
    assert "abandoned" not in commits


async def test_a_cancelled_call_over_stdio_writes_nothing(tmp_path: Path, model_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "memory_mcp.cli", "stdio"], env=server_env(tmp_path, model_path)
    )
    content = " ".join(f"Sentence {i} of a memory whose caller changes its mind." for i in range(200))
    async with Client(params) as client:
        await call(client, "list")  # started
        with anyio.move_on_after(0.3) as scope:
            await client.call_tool("remember", {"name": "cancelled", "content": content})
        assert scope.cancelled_caught, "the call finished before it could be cancelled: not a test"
        await anyio.sleep(5)
        assert (await call(client, "list"))["count"] == 0


WRITER = "writer-secret-0123456789abcdef"
READER = "reader-secret-0123456789abcdef"
AGENT_A = "agent-a-secret-0123456789abcdef"
AGENT_AB = "agent-ab-secret-0123456789abcde"


def token_client(server: HttpServer, token: str) -> Client:
    import httpx2 as httpx
    from mcp.client.streamable_http import streamable_http_client

    http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
    return Client(streamable_http_client(f"{server.url}/mcp", http_client=http))


async def test_no_answer_says_more_than_the_callers_rights(start_server, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[token]]\nname = "writer"\ntoken = "{WRITER}"\n\n'
        f'[[token]]\nname = "reader"\ntoken = "{READER}"\nread_only = true\n\n'
        f'[[token]]\nname = "agent-a"\ntoken = "{AGENT_A}"\nscopes = ["proj-a"]\n\n'
        f'[[token]]\nname = "agent-ab"\ntoken = "{AGENT_AB}"\nscopes = ["proj-a/b"]\n'
    )
    server: HttpServer = start_server("--tokens-file", str(tokens))
    secret = "The orbital tether launches on the ninth of March from the northern pad."
    async with token_client(server, WRITER) as writer:
        await call(writer, "remember", name="launch", content=secret, scope="proj-b")
        await call(writer, "remember", name="b/c", content="Holds a shared file path.", scope="proj-a")
        moved = await call(writer, "remember", name="wanderer", content="Written in proj-b first.", scope="proj-b")
        await call(writer, "move", name="wanderer", from_scope="proj-b", to_scope="proj-a")
        assert "Unavailable" in await call_error(writer, "sync"), "full rights pass the check (no remote here)"

    async with token_client(server, AGENT_A) as agent:
        saved = await call(agent, "remember", name="launch", content=secret, scope="proj-a")
        assert "similar" not in saved, f"a proj-b memory leaked through similar: {saved}"
        history = await call(agent, "history", name="wanderer", scope="proj-a")
        assert [v["path"] for v in history["versions"]] == ["projects/proj-a/wanderer.md"]
        old_commit = moved["commit"]
        text = await call_error(agent, "history", name="wanderer", scope="proj-a", version=old_commit)
        assert "NotFound" in text and "proj-b" not in text
        assert "Forbidden" in await call_error(agent, "sync")

    async with token_client(server, AGENT_AB) as agent:
        text = await call_error(agent, "remember", name="c", content="Mine.", scope="proj-a/b")
        assert "Conflict" in text and "'b/c'" not in text and "'proj-a'" not in text, text

    async with token_client(server, READER) as reader:
        assert "Forbidden" in await call_error(reader, "sync", pull=False)
