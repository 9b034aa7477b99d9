"""Builds the MCP server object shared by the stdio and HTTP transports."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Final

from mcp.server._otel import OpenTelemetryMiddleware
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from memory_mcp import __version__
from memory_mcp.server.bearer_tokens import TokenVerifier
from memory_mcp.server.notifications import Notifier
from memory_mcp.server.prompts import Prompts
from memory_mcp.server.resources import Resources, id_uri, name_uri
from memory_mcp.server.tools import Tools
from memory_mcp.supervisor import Supervisor

INSTRUCTIONS: Final = """\
Long-term memory shared across sessions and agents. At the start, get the `session-start` prompt (or `recall`
with scope = the project path, e.g. 'org/project', which also searches global memories); a handoff's
`changes` cursor shows what other agents changed since. Save durable facts, decisions and lessons with
`remember` (global for cross-project knowledge, else the project scope), tag the essentials `pinned`, and
update with `edit` rather than adding near-duplicates. Before ending, follow `save-handoff`. Memories are also
resources: memory://<scope>/<name> (percent-encoded) or memory://~id/<id>. Every change is a git commit:
`history` shows past versions."""


def build_mcp_server(
    supervisor: Supervisor, verifier: TokenVerifier | None = None, auth: AuthSettings | None = None
) -> MCPServer:
    """The server with every tool; with `verifier` and `auth`, HTTP callers must present a bearer token.

    Its lifespan is the supervisor's, so stdio and HTTP start and stop the parts the same way.
    """
    notifier = Notifier(supervisor, lambda memory: (name_uri(memory), id_uri(memory)))

    @contextlib.asynccontextmanager
    async def lifespan(app: object) -> AsyncIterator[None]:
        async with supervisor.lifespan(app), notifier.running(app):
            yield

    server = MCPServer(
        name="memory-mcp",
        title="memory-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level=supervisor.settings.log_level,  # type: ignore[arg-type]
        token_verifier=verifier,
        auth=auth,
        lifespan=lifespan,
        subscriptions=notifier.bus,
        middleware=[notifier.middleware],
        tools=Tools(supervisor).tools(),
    )
    # The SDK wraps every message in an OpenTelemetry span; no exporter is ever installed here, so the spans
    # were pure per-call cost.
    server.middleware[:] = [m for m in server.middleware if not isinstance(m, OpenTelemetryMiddleware)]
    Prompts(supervisor).register(server)
    Resources(supervisor, notifier).register(server)
    return server
