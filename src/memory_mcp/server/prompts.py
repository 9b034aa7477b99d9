"""The MCP prompts, which clients show as slash commands: `session-start` (what this scope knows, to paste
at the start of a session) and `save-handoff` (leave the next session a handoff memory). The service picks
the content; this module only words it."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts import Prompt
from pydantic import Field

from memory_mcp.core import (
    DEFAULT_BUDGET,
    HANDOFF_NAME,
    HANDOFF_TAG,
    PINNED,
    BriefItem,
    Briefing,
    Entry,
    MemoryService,
    format_time,
)
from memory_mcp.server.bearer_tokens import caller
from memory_mcp.server.calls import answer
from memory_mcp.supervisor import Supervisor

ScopeArg = Annotated[
    str,
    Field(description="The project's scope path, e.g. 'org/project' (its sub-scopes and global included)"),
]


class Prompts:
    """Binds the prompts to a supervisor; `register` adds them to an MCP server."""

    def __init__(self, supervisor: Supervisor) -> None:
        self._supervisor = supervisor

    def register(self, server: MCPServer) -> None:
        server.add_prompt(
            Prompt.from_function(
                self.session_start,
                name="session-start",
                title="Start a session with what memory knows",
                description="Pinned and recently updated memories of a scope, with snippets, within a token "
                "budget, plus the cursor to ask what changed since.",
            )
        )
        server.add_prompt(
            Prompt.from_function(
                self.save_handoff,
                name="save-handoff",
                title="Save a session handoff",
                description=f"Write or update the scope's '{HANDOFF_NAME}' memory for the next session.",
            )
        )

    async def session_start(
        self,
        scope: ScopeArg = "global",
        budget: Annotated[
            int, Field(description="Token budget for the message (about 4 characters each)")
        ] = (DEFAULT_BUDGET),
    ) -> str:
        access = caller()[0]

        def call(service: MemoryService) -> tuple[Briefing, str]:
            found = service.briefing(scope, budget=budget, access=access)
            return found, service.changes(limit=1, access=access).cursor

        found, cursor = await answer(self._supervisor, call)
        return _briefing_text(scope, found, cursor)

    async def save_handoff(self, scope: ScopeArg = "global") -> str:
        access = caller()[0]

        def call(service: MemoryService) -> tuple[Entry | None, str]:
            return service.handoff(scope, access=access), service.changes(limit=1, access=access).cursor

        existing, cursor = await answer(self._supervisor, call)
        return _handoff_text(scope, existing, cursor)


def _briefing_text(scope: str, found: Briefing, cursor: str) -> str:
    lines = [f"Memory briefing for scope `{scope}` (from memory-mcp; pinned first, then recently updated)."]
    for title, items in (("Pinned", found.pinned), ("Recently updated", found.recent)):
        if items:
            lines += ["", f"## {title}", *(_item(item) for item in items)]
    if not found.pinned and not found.recent:
        lines += ["", "No memories in this scope yet: save what you learn with `remember`."]
    if found.omitted:
        lines += ["", f"{found.omitted} more memories are not shown: use `recall` or `list` to find them."]
    lines += [
        "",
        "`read` (name + scope) gives a memory's full text; `recall` searches by meaning. Tag a memory "
        f"`{PINNED}` to show it here every session. To see what changed after this briefing, call "
        f"`changes` with cursor `{cursor}`.",
    ]
    return "\n".join(lines)


def _item(item: BriefItem) -> str:
    m = item.entry.memory
    return f"- **{m.name}** [{m.scope}] (updated {format_time(m.updated_at)}): {item.snippet}"


def _handoff_text(scope: str, existing: Entry | None, cursor: str) -> str:
    where = f"name `{HANDOFF_NAME}`, scope `{scope}`"
    if existing is None:
        how = (
            f'No handoff exists yet: create it with `remember` ({where}, tags ["{HANDOFF_TAG}", '
            f'"{PINNED}"]).'
        )
    else:
        how = (
            f"A handoff exists (version {existing.version}); it is below. Update it with `edit` ({where}, "
            f"expected_version `{existing.version}`) so you do not overwrite another agent's newer one; "
            "rewrite it rather than appending, and drop what is no longer true.\n\n"
            f"Current handoff:\n\n{existing.memory.content}"
        )
    return (
        "Before this session ends, leave a handoff for the next one in memory-mcp. Write it in markdown "
        "with these sections: **Goal** (what we are working on), **Done** (this session's results, with "
        "file paths and commands), **State** (what works, what is broken, uncommitted work), **Next** (the "
        "concrete next steps), **Open questions**, and **Changes cursor**: "
        f"`{cursor}` (the next session passes it to `changes` to see what other agents did since). Keep "
        "it under about 400 words. Durable facts and decisions belong in their own memories (`remember`), "
        f"not in the handoff.\n\n{how}"
    )
