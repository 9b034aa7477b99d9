"""GitHub's OAuth device flow (RFC 8628 as GitHub speaks it), with the standard library's urllib.

The user approves a short code in any browser, so this works on a headless server or in a pod. It needs the
client id of an OAuth app with "Enable Device Flow" ticked: memory-mcp has no registered app of its own, so
users register one (Settings → Developer settings → OAuth Apps; no callback is used) and pass its client id.
GitHub Enterprise Server serves the same endpoints under its own base URL.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from memory_mcp import __version__
from memory_mcp.auth.github_token import GitHubToken
from memory_mcp.errors import InvalidInput, MemoryMcpError, Unavailable
from memory_mcp.loopback import is_loopback_host

log = logging.getLogger(__name__)

SCOPE: Final = "repo"
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP: Final = 5
HTTP_TIMEOUT: Final = 30.0
MAX_ANSWER: Final = 64 * 1024
_REFUSALS: Final = {
    "incorrect_client_credentials": "the client id is not a GitHub OAuth app",
    "device_flow_disabled": "the OAuth app does not have device flow enabled",
    "unsupported_grant_type": "the server does not support the device flow",
    "incorrect_device_code": "the device code was not recognised",
}


@dataclass(frozen=True)
class DeviceCode:
    """What the user needs (code and URL) and what polling needs (device code, interval, lifetime)."""

    user_code: str
    verification_uri: str
    interval: float
    expires_in: float
    device_code: str = field(repr=False)


def check_github_url(url: str) -> str:
    """The base URL without a trailing slash; plain http only for loopback, since the answer is a token."""
    parsed = urllib.parse.urlsplit(url.strip())
    host = parsed.hostname or ""
    if parsed.scheme not in ("https", "http") or not host or parsed.query or parsed.fragment:
        raise InvalidInput(
            f"GitHub URL {url!r} must look like https://github.com or https://github.example.com"
        )
    if parsed.scheme == "http" and not is_loopback_host(host):
        raise InvalidInput(f"GitHub URL {url!r} must use https (plain http is allowed only for loopback)")
    return url.strip().rstrip("/")


def login(
    github_url: str,
    client_id: str,
    *,
    announce: Callable[[DeviceCode], None],
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> GitHubToken:
    """Run the whole flow: get a code, `announce` it, poll until the user approves, denies or the code expires.

    `sleep` and `clock` are parameters so tests can go through the real HTTP exchange without waiting out
    GitHub's intervals.
    """
    base = check_github_url(github_url)
    code = request_code(base, client_id)
    announce(code)
    return poll(base, client_id, code, sleep=sleep, clock=clock)


def request_code(base: str, client_id: str) -> DeviceCode:
    answer = _post(f"{base}/login/device/code", {"client_id": client_id, "scope": SCOPE})
    _raise_for_refusal(answer)
    try:
        return DeviceCode(
            user_code=str(answer["user_code"]),
            verification_uri=str(answer["verification_uri"]),
            interval=float(answer.get("interval", SLOW_DOWN_STEP)),
            expires_in=float(answer["expires_in"]),
            device_code=str(answer["device_code"]),
        )
    except (KeyError, TypeError, ValueError):
        raise Unavailable(f"{base} answered the device-code request without the expected fields") from None


def poll(
    base: str,
    client_id: str,
    code: DeviceCode,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> GitHubToken:
    """Poll for the token at the server's pace: `interval` between requests, 5 s more after each `slow_down`
    (or the new interval GitHub sends, if larger), giving up when the code expires."""
    fields = {"client_id": client_id, "device_code": code.device_code, "grant_type": GRANT_TYPE}
    interval = max(code.interval, 1.0)  # a server that says 0 must not turn this into a busy loop
    deadline = clock() + code.expires_in
    while True:
        sleep(interval)  # wait first: nobody approves a code within a second of seeing it
        if clock() >= deadline:
            raise MemoryMcpError("the code expired before it was approved; run `memory-mcp auth login` again")
        answer = _post(f"{base}/login/oauth/access_token", fields)
        if "access_token" in answer:
            return GitHubToken(str(answer["access_token"]))
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval = max(interval + SLOW_DOWN_STEP, _number(answer.get("interval")))
            log.debug("GitHub asked to slow down; polling every %.0f s", interval)
            continue
        if error == "expired_token":
            raise MemoryMcpError("the code expired before it was approved; run `memory-mcp auth login` again")
        if error == "access_denied":
            raise MemoryMcpError("the login was denied in the browser; nothing was stored")
        _raise_for_refusal(answer)
        raise Unavailable(f"{base} answered the token request with neither a token nor a known error")


def _raise_for_refusal(answer: dict[str, Any]) -> None:
    error = answer.get("error")
    if error is None:
        return
    if error in _REFUSALS:
        raise InvalidInput(f"GitHub refused the login: {_REFUSALS[error]} ({error})")
    raise Unavailable(f"GitHub refused the login: {str(error)[:100]}")


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _post(url: str, fields: dict[str, str]) -> dict[str, Any]:
    """POST a form and return the JSON object GitHub answers with, also for 4xx answers that carry an
    OAuth `error`. Errors name the URL and the reason only, never the request or the answer."""
    request = urllib.request.Request(
        url,
        data=urllib.parse.urlencode(fields).encode(),
        method="POST",
        headers={"Accept": "application/json", "User-Agent": f"memory-mcp/{__version__}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            body = response.read(MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_ANSWER)
        answer = _json_object(body)
        if answer is None or "error" not in answer:
            raise Unavailable(f"{url} answered HTTP {exc.code}; is the GitHub URL right?") from None
        return answer
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise Unavailable(f"cannot reach {url}: {reason}") from None
    answer = _json_object(body)
    if answer is None:
        raise Unavailable(f"{url} did not answer with JSON; is the GitHub URL right?")
    return answer


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None

