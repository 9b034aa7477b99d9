"""Builds the MCP server object shared by the stdio and HTTP transports."""

from __future__ import annotations

from typing import Final

from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer

from memory_mcp import __version__
from memory_mcp.server.tokens import TokenVerifier
from memory_mcp.server.tools import Tools
from memory_mcp.supervisor import Supervisor

INSTRUCTIONS: Final = """\
Long-term memory that survives across sessions. Before starting work, `recall` what you know about the task
(scope = the project path, e.g. 'org/project', searches that project and global memories). Save durable facts,
decisions and lessons with `remember` (global for cross-project knowledge, a project scope otherwise); update
them with `edit` rather than creating near-duplicates (remember reports similar memories). Every change is a
git commit: `history` shows and restores past versions."""


def build_mcp_server(
    supervisor: Supervisor, verifier: TokenVerifier | None = None, auth: AuthSettings | None = None
) -> MCPServer:
    """The server with every tool; with `verifier` and `auth`, HTTP callers must present a bearer token.

    Its lifespan is the supervisor's, so stdio and HTTP start and stop the parts the same way.
    """
    server = MCPServer(
        name="memory-mcp",
        title="memory-mcp",
        version=__version__,
        instructions=INSTRUCTIONS,
        log_level=supervisor.settings.log_level,  # type: ignore[arg-type]
        token_verifier=verifier,
        auth=auth,
        lifespan=supervisor.lifespan,
    )
    Tools(supervisor).register(server)
    return server
