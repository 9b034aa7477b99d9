"""What a session starts from: a scope's pinned memories, then its most recently updated ones, each as a
snippet, within a token budget; and the session-handoff memory an agent leaves for the next session.

Replaces Serena's "list the memories, read the relevant ones" ritual with one message that fits a budget.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from memory_mcp.core.catalog import Entry
from memory_mcp.core.changes import opening
from memory_mcp.errors import InvalidInput

PINNED: Final = "pinned"
"""The tag that puts a memory into every session-start briefing of its scope."""
HANDOFF_NAME: Final = "session-handoff"
HANDOFF_TAG: Final = "handoff"
DEFAULT_BUDGET: Final = 2000
MAX_BUDGET: Final = 50_000
CHARS_PER_TOKEN: Final = 4
"""A rough, tokenizer-free estimate: English text averages about four characters per token."""
PINNED_SNIPPET: Final = 600
RECENT_SNIPPET: Final = 240
MAX_RECENT: Final = 50
ITEM_OVERHEAD: Final = 80
"""Characters each listed memory costs beyond its snippet: name, scope, time and markup."""


@dataclass(frozen=True)
class BriefItem:
    entry: Entry
    snippet: str


@dataclass(frozen=True)
class Briefing:
    pinned: list[BriefItem]
    recent: list[BriefItem]
    omitted: int
    """Memories in scope that the budget left out."""


def validate_budget(budget: int) -> int:
    if isinstance(budget, bool) or not isinstance(budget, int) or not 100 <= budget <= MAX_BUDGET:
        raise InvalidInput(f"budget must be a number of tokens from 100 to {MAX_BUDGET}")
    return budget


def select(entries: Iterable[Entry], budget: int) -> Briefing:
    """Pinned memories first (newest first), then the most recently updated others, while `budget` lasts."""
    entries = list(entries)
    pinned = sorted((e for e in entries if PINNED in e.memory.tags), key=_updated, reverse=True)
    others = [e for e in entries if PINNED not in e.memory.tags]
    recent = heapq.nlargest(MAX_RECENT, others, key=_updated)
    left = budget * CHARS_PER_TOKEN
    chosen: dict[str, list[BriefItem]] = {"pinned": [], "recent": []}
    for group, items, chars in (("pinned", pinned, PINNED_SNIPPET), ("recent", recent, RECENT_SNIPPET)):
        for entry in items:
            text = opening(entry.memory.content, chars)
            cost = ITEM_OVERHEAD + len(entry.memory.name) + len(str(entry.memory.scope)) + len(text)
            if cost > left:
                break
            left -= cost
            chosen[group].append(BriefItem(entry, text))
    shown = len(chosen["pinned"]) + len(chosen["recent"])
    return Briefing(chosen["pinned"], chosen["recent"], len(entries) - shown)


def _updated(entry: Entry) -> tuple:
    return (entry.memory.updated_at, entry.memory.name)
