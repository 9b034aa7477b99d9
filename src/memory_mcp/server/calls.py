"""Running the service from an MCP handler: wait for start-up, run the blocking call in a worker thread, and
map domain errors to JSON-RPC errors (prompts and resources; tools answer with tool errors instead)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

import anyio
import anyio.to_thread
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from memory_mcp.core import Busy, MemoryMcpError, MemoryService, Unavailable, cancellable
from memory_mcp.supervisor import Supervisor

T = TypeVar("T")
START_TIMEOUT: Final = 120.0


async def in_service(supervisor: Supervisor, call: Callable[[MemoryService], T]) -> T:
    """`call(service)` in a worker thread, once the service has started (it blocks on model, git, disk).

    The thread cannot be interrupted, so a cancelled call (the client cancelled or went away) abandons it
    and sets its cancellation event: the thread's queued model work is dropped and it commits nothing."""
    service = supervisor.service  # started: no thread hop just to learn that
    if service is None:
        service = await anyio.to_thread.run_sync(supervisor.wait, START_TIMEOUT)
    with cancellable() as cancel:
        try:
            return await anyio.to_thread.run_sync(call, service, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            cancel.set()
            raise


async def answer(supervisor: Supervisor, call: Callable[[MemoryService], T]) -> T:
    """`in_service`, with a domain error turned into a JSON-RPC error whose message names its kind."""
    try:
        return await in_service(supervisor, call)
    except MemoryMcpError as exc:
        code = INTERNAL_ERROR if isinstance(exc, Unavailable | Busy) else INVALID_PARAMS
        raise MCPError(code=code, message=f"{type(exc).__name__}: {exc}") from exc
