"""The bench's modules are scripts beside `bench/run.py`, not a package: make them importable here."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
