"""How long to wait after failed syncs, so a down remote is not hammered and replicas spread out."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays between failed syncs: doubling from `initial` up to `maximum`, jittered so replicas spread out.

    Call `failed()` after a report with errors and wait the seconds it returns, `succeeded()` after a clean
    one.
    """

    initial: float = 2.0
    maximum: float = 300.0
    failures: int = 0

    def failed(self) -> float:
        self.failures += 1
        ceiling = min(self.maximum, self.initial * 2 ** min(self.failures - 1, 32))
        return random.uniform(ceiling / 2, ceiling)

    def succeeded(self) -> None:
        self.failures = 0
