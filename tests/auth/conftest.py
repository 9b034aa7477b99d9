"""Loopback servers that speak GitHub's device flow and the Kubernetes Secrets API, and an isolated environment.

Every test gets its own config dir, mounted-token path and kubeconfig location, so nothing reads or writes the
developer's real `~/.config/memory-mcp`, `/var/run/secrets` or `~/.kube/config`.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import secrets
import sys
import time
import urllib.parse
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from memory_mcp.cli import main
from tests.loopback_http import serving

CLEARED = (
    "MEMORY_MCP_GITHUB_TOKEN",
    "MEMORY_MCP_GITHUB_CLIENT_ID",
    "MEMORY_MCP_GITHUB_URL",
    "MEMORY_MCP_K8S_NAMESPACE",
    "MEMORY_MCP_LOG_LEVEL",
    "KUBERNETES_SERVICE_HOST",
    "KUBERNETES_SERVICE_PORT",
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MEMORY_MCP_CONFIG_DIR", str(tmp_path / "config" / "memory-mcp"))
    monkeypatch.setenv("MEMORY_MCP_GITHUB_TOKEN_FILE", str(tmp_path / "mounted" / "token"))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    return tmp_path


@pytest.fixture
def token() -> str:
    """A fresh token shaped like GitHub's, so a leak of it anywhere is unambiguous."""
    return "gho_" + secrets.token_urlsafe(27).replace("-", "x").replace("_", "y")


@pytest.fixture
def no_leak(caplog: pytest.LogCaptureFixture):
    """Assert that a token, raw or base64-encoded, is in none of the given texts nor in any captured log."""
    caplog.set_level(logging.DEBUG)

    def check(token: str, *texts: str) -> None:
        forms = (token, base64.b64encode(token.encode()).decode())
        logged = caplog.text + "\n".join(str(r.args) + r.getMessage() for r in caplog.records)
        for text in (*texts, logged):
            for form in forms:
                assert form not in text

    return check


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run `memory-mcp ARGS` in this process (stdin from `stdin`), returning exit code, stdout and stderr."""

    def invoke(*args: str, stdin: str = "") -> Run:
        capsys.readouterr()
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(args))
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return invoke


class _Quiet(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # keep the test output for assertions
        pass

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, code: int, payload: dict[str, Any], content_type: str = "application/json") -> None:
        data = (
            json.dumps(payload).encode() if content_type == "application/json" else payload["_raw"].encode()
        )
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def serve():
    """Start a handler class on 127.0.0.1 with `state` attached to the server; yields the base URL."""
    with ExitStack() as servers:

        def start(handler: type[BaseHTTPRequestHandler], state: Any) -> str:
            server = servers.enter_context(serving(handler))
            server.state = state  # type: ignore[attr-defined]
            return f"http://127.0.0.1:{server.server_address[1]}"

        yield start


# ------------------------------------------------------------------ GitHub device flow


@dataclass
class FakeGitHub:
    """GitHub's device-flow endpoints. `script` lists the answers to successive polls: pending, slow_down,
    slow_down_bare (no `interval` field), denied, expired, success; pending once it runs out."""

    token: str
    script: list[str] = field(default_factory=list)
    client_id: str = "Iv1.0123456789abcdef"
    interval: int = 1
    expires_in: int = 900
    device_flow_enabled: bool = True
    device_code: str = field(default_factory=lambda: secrets.token_hex(20))
    user_code: str = "WDJB-MJHT"
    code_requests: list[dict[str, str]] = field(default_factory=list)
    polls: list[float] = field(default_factory=list)
    url: str = ""

    @property
    def verification_uri(self) -> str:
        return f"{self.url}/login/device"

    def answer(self, step: str) -> dict[str, Any]:
        docs = (
            "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow"
        )
        if step == "success":
            return {"access_token": self.token, "token_type": "bearer", "scope": "repo"}
        if step in ("slow_down", "slow_down_bare"):
            self.interval += 5
            answer = {
                "error": "slow_down",
                "error_description": "Too many requests have been made in the same timeframe.",
                "error_uri": docs,
            }
            return answer if step == "slow_down_bare" else answer | {"interval": self.interval}
        errors = {"pending": "authorization_pending", "denied": "access_denied", "expired": "expired_token"}
        return {"error": errors[step], "error_description": step, "error_uri": docs}


class _GitHubHandler(_Quiet):
    def do_POST(self) -> None:
        github: FakeGitHub = self.server.state  # type: ignore[attr-defined]
        fields = dict(urllib.parse.parse_qsl(self.body().decode()))
        if self.path == "/login/device/code":
            github.code_requests.append(fields)
            if not github.device_flow_enabled:
                answer: dict[str, Any] = {
                    "error": "device_flow_disabled",
                    "error_description": "Device flow is disabled for this app",
                }
                return self.reply(400, answer)
            answer = {
                "device_code": github.device_code,
                "user_code": github.user_code,
                "verification_uri": github.verification_uri,
                "expires_in": github.expires_in,
                "interval": github.interval,
            }
        elif self.path == "/login/oauth/access_token":
            github.polls.append(time.monotonic())
            if fields.get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code":
                answer = {"error": "unsupported_grant_type"}
            elif (
                fields.get("client_id") != github.client_id or fields.get("device_code") != github.device_code
            ):
                answer = {"error": "incorrect_device_code"}
            else:
                answer = github.answer(github.script.pop(0) if github.script else "pending")
        else:
            return self.reply(404, {"message": "Not Found"})
        if "application/json" not in self.headers.get("Accept", ""):  # GitHub's default is a form encoding
            return self.reply(
                200, {"_raw": urllib.parse.urlencode(answer)}, "application/x-www-form-urlencoded"
            )
        self.reply(200, answer)


@pytest.fixture
def github(serve, token: str) -> FakeGitHub:
    fake = FakeGitHub(token)
    fake.url = serve(_GitHubHandler, fake)
    return fake


# ------------------------------------------------------------------ Kubernetes Secrets API


@dataclass
class FakeKubernetes:
    """The core/v1 Secrets endpoints of a Kubernetes API server, with bearer authentication."""

    bearer: str = field(default_factory=lambda: secrets.token_hex(16))
    namespaces: set[str] = field(default_factory=lambda: {"memory-mcp", "team-a"})
    secrets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    url: str = ""
    version: int = 100

    def put(self, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        meta = obj.setdefault("metadata", {})
        meta.update(namespace=namespace, resourceVersion=str(self.version))
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2025-01-01T00:00:00Z")
        obj.update(apiVersion="v1", kind="Secret")
        obj.setdefault("type", "Opaque")
        for key, value in obj.pop("stringData", {}).items():  # as the API server does
            obj.setdefault("data", {})[key] = base64.b64encode(value.encode()).decode()
        self.secrets[(namespace, meta["name"])] = obj
        return obj

    def seed(self, namespace: str, name: str, data: dict[str, str], **metadata: Any) -> None:
        encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
        self.put(namespace, {"metadata": {"name": name, **metadata}, "data": encoded})

    def value(self, namespace: str, name: str, key: str = "token") -> str:
        return base64.b64decode(self.secrets[(namespace, name)]["data"][key]).decode()


def _status(code: int, reason: str, message: str, name: str | None = None, kind: str = "secrets") -> dict:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure" if code >= 300 else "Success",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": kind},
        "code": code,
    }


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what strategic merge does for a Secret's maps)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge(result.get(key), value)
    return result


class _KubernetesHandler(_Quiet):
    ROUTE = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?$")

    def handle_any(self) -> None:
        k8s: FakeKubernetes = self.server.state  # type: ignore[attr-defined]
        path = urllib.parse.urlsplit(self.path).path
        k8s.requests.append((self.command, path))
        k8s.content_types.append(self.headers.get("Content-Type", ""))
        if self.headers.get("Authorization") != f"Bearer {k8s.bearer}":
            return self.reply(401, _status(401, "Unauthorized", "Unauthorized"))
        match = self.ROUTE.match(path)
        if not match:
            return self.reply(
                404, _status(404, "NotFound", "the server could not find the requested resource")
            )
        namespace, name = match.groups()
        body = json.loads(self.body() or b"null")
        if namespace not in k8s.namespaces:
            return self.reply(
                404, _status(404, "NotFound", f'namespaces "{namespace}" not found', namespace, "namespaces")
            )
        if self.command == "POST" and name is None:
            name = body["metadata"]["name"]
            if (namespace, name) in k8s.secrets:
                return self.reply(
                    409, _status(409, "AlreadyExists", f'secrets "{name}" already exists', name)
                )
            return self.reply(201, k8s.put(namespace, body))
        existing = k8s.secrets.get((namespace, name or ""))
        if name is None or self.command == "POST":
            return self.reply(405, _status(405, "MethodNotAllowed", "the server does not allow this method"))
        if existing is None:
            return self.reply(404, _status(404, "NotFound", f'secrets "{name}" not found', name))
        if self.command == "GET":
            return self.reply(200, existing)
        if self.command == "PUT":
            wanted = body.get("metadata", {}).get("resourceVersion")
            if wanted and wanted != existing["metadata"]["resourceVersion"]:
                message = f'Operation cannot be fulfilled on secrets "{name}": the object has been modified'
                return self.reply(409, _status(409, "Conflict", message, name))
            return self.reply(200, k8s.put(namespace, body))
        if self.command == "PATCH":
            kind = self.headers.get("Content-Type", "").split(";")[0]
            if kind not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                return self.reply(
                    415,
                    _status(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format: {kind}",
                    ),
                )
            return self.reply(200, k8s.put(namespace, _merge(existing, body)))
        if self.command == "DELETE":
            del k8s.secrets[(namespace, name)]
            return self.reply(200, _status(200, "", "", name))
        return self.reply(405, _status(405, "MethodNotAllowed", "the server does not allow this method"))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Write a kubeconfig for `server` with bearer token `bearer` and point KUBECONFIG at it."""

    def write(server: str, bearer: str) -> Path:
        path = tmp_path / f"kubeconfig-{secrets.token_hex(4)}"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: fake\n  cluster:\n    server: {server}\n"
            f"users:\n- name: tester\n  user:\n    token: {bearer}\n"
            "contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: tester\n"
            "current-context: fake\n"
        )
        monkeypatch.setenv("KUBECONFIG", str(path))
        return path

    return write


@pytest.fixture
def kubernetes(serve, kubeconfig) -> FakeKubernetes:
    fake = FakeKubernetes()
    fake.url = serve(_KubernetesHandler, fake)
    kubeconfig(fake.url, fake.bearer)
    return fake
