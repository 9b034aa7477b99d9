"""Download progress for people, on stderr: a bar redrawn in place on a terminal, a plain line every 10%
otherwise (a log file or an MCP client's stderr capture)."""

from __future__ import annotations

import sys
from typing import Final, TextIO

BAR_WIDTH: Final = 30
LINE_STEP: Final = 10
"""Percent between plain lines."""


class DownloadMeter:
    """Callable as a `ProgressReport`: (bytes so far, total bytes or None)."""

    def __init__(self, label: str = "the embedding model", stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._shown = -1

    def __call__(self, done: int, total: int | None) -> None:
        percent = min(100, done * 100 // total) if total else None
        if self.tty:
            self._draw(done, total, percent)
            return
        step = (percent // LINE_STEP * LINE_STEP) if percent is not None else done >> 23  # per 8 MiB
        if step != self._shown:
            self._shown = step
            amount = f"{percent}% of {total / 1e6:.1f} MB" if percent is not None else f"{done / 1e6:.1f} MB"
            print(f"downloading {self.label}: {amount}", file=self.stream, flush=True)

    def _draw(self, done: int, total: int | None, percent: int | None) -> None:
        if percent is None:
            line = f"downloading {self.label}: {done / 1e6:.1f} MB"
        else:
            filled = BAR_WIDTH * percent // 100
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            line = f"downloading {self.label} [{bar}] {percent:3d}% {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        end = "\n" if total and done >= total else ""
        print(f"\r{line}", end=end, file=self.stream, flush=True)
