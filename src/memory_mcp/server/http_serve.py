"""Runs the HTTP app under uvicorn with limits no client can outlast: a deadline for each request's headers
(uvicorn has none, so a connection that never finishes its headers stayed open for good), an idle timeout
between requests, a cap on concurrent connections and tasks, a bounded graceful stop, and access logs
without query strings (which may carry secrets). The only module that imports uvicorn."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from memory_mcp.config import Settings

HEADER_TIMEOUT: Final = 10.0
"""Seconds from connecting (or from the previous answer) until a request's headers must be complete."""
IDLE_TIMEOUT: Final = 5
"""Seconds an idle keep-alive connection stays open after an answer."""
MAX_CONCURRENCY: Final = 200
"""Connections (session GET streams included) plus running requests; beyond it uvicorn answers 503."""
GRACEFUL_STOP: Final = 5
"""Seconds a stop (SIGTERM) waits for requests under way before cancelling them; the whole stop, saving
the index snapshot included, stays well under Kubernetes' 30 s grace period."""


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers are not complete in time."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._expect_headers()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._expect_headers()

    def _expect_headers(self) -> None:
        self.loop.call_later(HEADER_TIMEOUT, self._headers_due, self.cycle)

    def _headers_due(self, cycle_then: object) -> None:
        if self.cycle is cycle_then and not self.transport.is_closing():  # no new request has started
            self.transport.close()


class RedactQuery(logging.Filter):
    """Access-log lines keep the path and drop the query string (`?access_token=...` must not be logged)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (*args[:2], args[2].split("?", 1)[0] + "?[redacted]", *args[3:])
        return True


def serve(app: Any, settings: Settings) -> None:
    logging.getLogger("uvicorn.access").addFilter(RedactQuery())
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=settings.log_level == "DEBUG",
        lifespan="on",
        http=DeadlineProtocol,
        timeout_keep_alive=IDLE_TIMEOUT,
        limit_concurrency=MAX_CONCURRENCY,
        timeout_graceful_shutdown=GRACEFUL_STOP,
        proxy_headers=False,  # which proxies to believe is the web UI's `--trusted-proxy` decision
    )
