"""The HTTP edge: streamable HTTP MCP at `/mcp` plus `/healthz`, `/readyz`, `/metrics` and `/version`, with Host/Origin
allow-listing against DNS rebinding. Lean by default: JSON responses, since every tool call is
self-contained. Handshake-era clients get a session (whose GET stream carries change notifications);
2026-07-28 clients send self-contained requests and open `subscriptions/listen` streams instead."""

from __future__ import annotations

from typing import Final

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from memory_mcp import __version__, views
from memory_mcp.config import Settings
from memory_mcp.loopback import LOOPBACK_HOSTS
from memory_mcp.metrics import CONTENT_TYPE
from memory_mcp.server.bearer_tokens import TokenVerifier
from memory_mcp.server.ui import ui_routes
from memory_mcp.server.http_guard import HttpGuard
from memory_mcp.server.token_file import TokenRule
from memory_mcp.supervisor import Supervisor

MAX_BODY_BYTES: Final = 8 * 1024 * 1024
"""A 1 MiB memory can grow several-fold once JSON-escaped."""
NO_OAUTH: Final = (
    "memory-mcp runs no OAuth authorization server: send a bearer token from the server's tokens file "
    "as the header 'Authorization: Bearer <token>'"
)


def transport_security(settings: Settings) -> TransportSecuritySettings:
    """Loopback names always; plus each `--allowed-host` (with any port), for Host and Origin alike."""
    hosts = [*LOOPBACK_HOSTS, *settings.allowed_hosts]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[form for host in hosts for form in (host, f"{host}:*")],
        allowed_origins=[
            form
            for host in hosts
            for scheme in ("http", "https")
            for form in (f"{scheme}://{host}", f"{scheme}://{host}:*")
        ],
    )


def http_auth(
    settings: Settings, rules: list[TokenRule] | None
) -> tuple[TokenVerifier | None, AuthSettings | None]:
    """Bearer-token checking for the tokens `token_file.served_tokens` read (None: an open server)."""
    if rules is None:
        return None, None
    verifier = TokenVerifier(rules)
    # No resource_server_url: the SDK then publishes no protected-resource metadata naming an authorization
    # server, which we do not run (an OAuth client followed it into 404s). A 401 says "Bearer" and nothing
    # more, which tells a client to send a token from the tokens file. The issuer is required by the SDK's
    # settings and used only by an authorization server of its own, which this server has not.
    return verifier, AuthSettings(issuer_url=f"http://{settings.bind}", resource_server_url=None)


def build_http_app(
    supervisor: Supervisor, server: MCPServer, verifier: TokenVerifier | None = None
) -> Starlette:
    """The Starlette app; its lifespan is the MCP server's, which starts and stops `supervisor`."""
    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @server.custom_route("/readyz", methods=["GET"])
    async def readyz(_: Request) -> Response:
        body = views.readiness(supervisor)
        return JSONResponse(body, status_code=200 if body["ready"] else 503)

    @server.custom_route("/metrics", methods=["GET"])
    async def metrics(_: Request) -> Response:
        return Response(supervisor.metrics.render(), media_type=CONTENT_TYPE)

    async def no_authorization_server(_: Request) -> Response:
        """Where an OAuth client looks for an authorization server when none is advertised (the MCP
        spec's fallback endpoints at our origin): an OAuth error saying what to do instead of a bare 404."""
        return JSONResponse(
            {"error": "invalid_client", "error_description": NO_OAUTH},
            status_code=401,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{NO_OAUTH}"'},
        )

    for path in ("/register", "/token", "/authorize"):
        server.custom_route(path, methods=["GET", "POST"])(no_authorization_server)

    @server.custom_route("/version", methods=["GET"])
    async def version(_: Request) -> Response:
        return JSONResponse({"name": "memory-mcp", "version": __version__})

    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        json_response=True,
        stateless_http=False,
        max_request_body_size=MAX_BODY_BYTES,
        transport_security=transport_security(supervisor.settings),
        host=supervisor.settings.host,
    )
    hosts = [*LOOPBACK_HOSTS, *supervisor.settings.allowed_hosts]
    app.router.routes.extend(ui_routes(supervisor, verifier, hosts))
    app.add_middleware(HttpGuard, allowed_hosts=hosts, max_body=MAX_BODY_BYTES)
    return app
