"""Cancellation of one call's work: set when the caller cancels or goes away, checked by long steps.

The edge (an MCP tool) runs the service in a worker thread that cannot be interrupted, so it sets an event
instead; the event travels with the call's context variables into that thread, where the embedder drops
the call's queued work and the service refuses to commit for a caller that is no longer there.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from memory_mcp.errors import Cancelled

_current: ContextVar[threading.Event | None] = ContextVar("memory_mcp_cancel", default=None)


def current() -> threading.Event | None:
    """The running call's cancellation event, if its edge provides one."""
    return _current.get()


@contextmanager
def cancellable() -> Iterator[threading.Event]:
    """Give the calls made in this context (and the threads started from it) an event to cancel them by."""
    event = threading.Event()
    token = _current.set(event)
    try:
        yield event
    finally:
        _current.reset(token)


def check() -> None:
    """Raise `Cancelled` if the running call was cancelled."""
    event = _current.get()
    if event is not None and event.is_set():
        raise Cancelled("the request was cancelled or its client went away; nothing was written")
