"""What packing the repository costs as commits into one large folder pile up, with the model left out:
one service grown to `--size` memories in one folder (`commits.grow`), packed once, then rounds of
`--per-round` remembers each followed by the store's packing (what the server's snapshot loop runs), timed.

    python bench/packing.py --size 60000 --rounds 40 --per-round 20

Run it on two checkouts (PYTHONPATH=<checkout>/src:<checkout>/bench) to compare packing policies. Prints
JSON: each packing's seconds, CPU seconds, objects packed, the packs left and their bytes, and the peak
resident growth while it ran (the kernel's high-water mark, reset before each).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

from commits import grow, model_free_service, numbered_memory
from hostile import rss_mb


def _packing(service, packs: Path) -> dict[str, float]:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = rss_mb(os.getpid(), "VmRSS")
    cpu, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    objects = service.pack_objects()
    seconds, after = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
    files = list(packs.glob("pack-*.pack"))
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, 3),
        "objects": objects,
        "packs": len(files),
        "pack_mb": round(sum(f.stat().st_size for f in files) / 1e6, 1),
        "peak_growth_mb": round(rss_mb(os.getpid()) - before, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=60_000)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--per-round", type=int, default=20)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="memory-mcp-packing-"))
    service = model_free_service(root)
    packs = root / "repo" / ".git" / "objects" / "pack"
    try:
        grow(service, 0, args.size)
        first = _packing(service, packs)
        rounds = []
        for round_ in range(args.rounds):
            for i in range(args.per_round):
                memory = numbered_memory(
                    10_000_000 + round_ * args.per_round + i, f"A fresh note {round_} {i}."
                )
                service.remember(name=memory.name, content=memory.content)
            rounds.append(_packing(service, packs))
    finally:
        service.close()
        shutil.rmtree(root, ignore_errors=True)
    packed = [r for r in rounds if r["objects"]]
    print(
        json.dumps(
            {
                "size": args.size,
                "per_round": args.per_round,
                "first_packing": first,
                "rounds": rounds,
                "packings": len(packed),
                "total_seconds": round(sum(r["seconds"] for r in rounds), 2),
                "total_cpu_seconds": round(sum(r["cpu_seconds"] for r in rounds), 2),
                "max_seconds": max(r["seconds"] for r in rounds),
                "max_peak_growth_mb": max(r["peak_growth_mb"] for r in rounds),
                "final_pack_mb": rounds[-1]["pack_mb"],
                "final_packs": rounds[-1]["packs"],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
