"""The bench's results as a table and as issue 15's targets, each with its measured ratio and ✓ or ✗."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LARGE = 50_000
"""Runs at least this large are compared with the same corpus's 10k run."""


def _ratio(over: float, under: float) -> float:
    return round(over / under, 2) if under else float("nan")


def _target(where: str, what: str, value: float, limit: float, detail: str, *, above: bool = False) -> dict:
    """`value` at most `limit`, or (`above`) strictly more than it."""
    ok = value > limit if above else value <= limit
    return {"where": where, "target": what, "value": value, "limit": limit, "ok": ok, "detail": detail}


def _wire(http: dict[str, Any], tool: str, yardstick_ms: float) -> str:
    """The same calls from a bare client (`served.Wire`), which costs next to nothing itself: the server's
    share of the call. Runs before round 11 did not measure it, nor remember before round 12."""
    wire = http.get(f"{tool}_wire")
    if wire is None:
        return ""
    return f"; a bare client: {wire['p50_ms']} ms = {_ratio(wire['p50_ms'], yardstick_ms)}×"


def targets(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for r in results:
        where, local, http = f"{r['corpus']} {r['memories']:,}", r["in_process"], r["http"]
        found += [
            _target(
                where,
                "recall over HTTP p50 ≤ 1.5× bare query embedding",
                _ratio(http["recall"]["p50_ms"], http["bare_query"]["p50_ms"]),
                1.5,
                f"{http['recall']['p50_ms']} / {http['bare_query']['p50_ms']} ms"
                + _wire(http, "recall", http["bare_query"]["p50_ms"]),
            ),
            _target(
                where,
                "in-process recall p50 ≤ 1.2× bare query embedding",
                _ratio(local["recall"]["p50_ms"], local["bare_query"]["p50_ms"]),
                1.2,
                f"{local['recall']['p50_ms']} / {local['bare_query']['p50_ms']} ms",
            ),
            _target(
                where,
                "remember over HTTP p50 ≤ 1.25× (bare embedding + bare pygit2 commit)",
                _ratio(http["remember"]["p50_ms"], http["bare_remember"]["sum"]["p50_ms"]),
                1.25,
                f"{http['remember']['p50_ms']} / ({http['bare_remember']['embed']['p50_ms']} + "
                f"{http['bare_remember']['commit']['p50_ms']}) ms"
                + _wire(http, "remember", http["bare_remember"]["sum"]["p50_ms"]),
            ),
            _target(where, "RSS ≤ 400 MB", http["peak_rss_mb"], 400, "peak (VmHWM)"),
            _target(where, "ready after clean stop ≤ 2 s", http["ready_after_clean_stop_s"], 2.0, "s"),
            _target(
                where,
                "ready after kill -9 ≤ 2 s, zero model calls",
                http["ready_after_kill_9_s"] if not http["model_calls_during_restart_after_kill_9"] else 99.0,
                2.0,
                f"{http['ready_after_kill_9_s']} s, "
                f"{http['model_calls_during_restart_after_kill_9']:.0f} model calls",
            ),
        ]
        window = http.get("write_window")
        if window:
            found.append(
                _target(
                    where,
                    "bytes written to the derived state per remember ≤ 64 KB",
                    window["derived_per_remember_kb"],
                    64,
                    f"{window['written_per_remember_kb']} KB written by the process, "
                    f"{window['git_per_remember_kb']} KB of it the repository's files; "
                    f"{window.get('derived_net_of_index_per_remember_kb', '–')} KB if every git index "
                    "rewrite reached the disk",
                )
            )
        scores = local.get("quality")
        if scores:
            best = {m: max(scores[b][m] for b in ("bm25", "vector", "rrf")) for m in ("r_at_5", "mrr_at_10")}
            for metric, label in (("r_at_5", "R@5"), ("mrr_at_10", "MRR@10")):
                found.append(
                    _target(
                        where,
                        f"recall beats the best baseline on {label}",
                        scores["recall"][metric],
                        best[metric],
                        f"recall {scores['recall'][metric]} vs best baseline {best[metric]}",
                        above=True,
                    )
                )
    return found + _growth(results)


def _growth(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Large runs against the same corpus's 10k run of this invocation."""
    found = []
    for large in (r for r in results if r["memories"] >= LARGE):
        base = next((r for r in results if r["corpus"] == large["corpus"] and r["memories"] == 10_000), None)
        if base is None:
            continue
        where = f"{large['corpus']} {large['memories']:,} vs 10,000"
        for tool, limit in (("remember", 1.5), ("recall", 1.1)):
            ours, theirs = large["http"][tool]["p50_ms"], base["http"][tool]["p50_ms"]
            found.append(
                _target(
                    where, f"{tool} over HTTP p50 ≤ {limit}× its 10k value", _ratio(ours, theirs), limit,
                    f"{ours} / {theirs} ms",
                )
            )
    return found


def checklist(found: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{'✓' if t['ok'] else '✗'} [{t['where']}] {t['target']}: {t['value']} ({t['detail']})" for t in found
    )


def _pair(path: Callable[[dict], dict]) -> Callable[[dict], str]:
    def cell(r: dict) -> str:
        found = path(r)
        return "–" if found is None else f"{found['p50_ms']} / {found['p99_ms']}"

    return cell


def _quality(method: str) -> Callable[[dict], str]:
    def cell(r: dict) -> str:
        q = r["in_process"].get("quality")
        if not q or method not in q:
            return "–"
        m = q[method]
        return f"{m['r_at_1']} / {m['r_at_5']} / {m['mrr_at_10']}"

    return cell


def _window(key: str) -> Callable[[dict], Any]:
    return lambda r: (r["http"].get("write_window") or {}).get(key, "–")


def _window_latency(r: dict) -> str:
    window = r["http"].get("write_window")
    return "–" if not window else "{p50_ms} / {p99_ms} / {max_ms}".format(**window["remember"])


ROWS: list[tuple[str, Callable[[dict], Any]]] = [
    ("bulk import (memories/s)", lambda r: r["in_process"]["import_per_s"]),
    ("  bare llama.cpp batch (texts/s)", lambda r: r["in_process"]["bare_batch_texts_per_s"]),
    ("texts longer than one chunk", lambda r: r["in_process"]["share_over_context"]),
    ("quality R@1 / R@5 / MRR@10: recall", _quality("recall")),
    ("  BM25", _quality("bm25")),
    ("  vector-only (exact cosine)", _quality("vector")),
    ("  RRF k=60 of both", _quality("rrf")),
    ("  (RRF of the top 40 only)", _quality("rrf_40")),
    ("remember in-process p50 / p99 (ms)", _pair(lambda r: r["in_process"]["remember"])),
    ("recall in-process p50 / p99 (ms)", _pair(lambda r: r["in_process"]["recall"])),
    ("  bare query embedding p50 / p99 (ms)", _pair(lambda r: r["in_process"]["bare_query"])),
    ("recall HTTP p50 / p99 (ms)", _pair(lambda r: r["http"]["recall"])),
    ("  from a bare client p50 / p99 (ms)", _pair(lambda r: r["http"].get("recall_wire"))),
    ("  bare query embedding p50 / p99 (ms)", _pair(lambda r: r["http"]["bare_query"])),
    ("remember HTTP p50 / p99 (ms)", _pair(lambda r: r["http"]["remember"])),
    ("  from a bare client p50 / p99 (ms)", _pair(lambda r: r["http"].get("remember_wire"))),
    ("  bare embedding of the text p50 (ms)", lambda r: r["http"]["bare_remember"]["embed"]["p50_ms"]),
    ("  bare pygit2 commit p50 (ms)", lambda r: r["http"]["bare_remember"]["commit"]["p50_ms"]),
    ("  their sum p50 (ms)", lambda r: r["http"]["bare_remember"]["sum"]["p50_ms"]),
    ("write window: remembers", _window("remembers")),
    ("  written per remember (KB)", _window("written_per_remember_kb")),
    ("  of it the repository's files (KB; objects, packs, refs, work tree)", _window("git_per_remember_kb")),
    ("    packs among them (KB)", _window("git_packs_per_remember_kb")),
    ("  git index rewrites (KB; written whole, may not reach the disk)", _window("git_index_per_remember_kb")),
    ("  the rest less those rewrites (KB)", _window("derived_net_of_index_per_remember_kb")),
    ("  remember p50 / p99 / max (ms)", _window_latency),
    ("concurrent recall, 8 clients (req/s)", lambda r: r["http"]["concurrent_recall_per_s"]),
    ("ready after clean stop (s)", lambda r: r["http"]["ready_after_clean_stop_s"]),
    ("ready after kill -9 (s)", lambda r: r["http"]["ready_after_kill_9_s"]),
    ("  model calls during that start", lambda r: r["http"]["model_calls_during_restart_after_kill_9"]),
    ("server peak RSS (MB)", lambda r: r["http"]["peak_rss_mb"]),
    ("derived state on disk (MB)", lambda r: r["derived_state_mb"]),
    ("git repository on disk (MB)", lambda r: r["repo_mb"]),
]


def table(results: list[dict[str, Any]]) -> str:
    header = "| measure | " + " | ".join(f"{r['corpus']} {r['memories']:,}" for r in results) + " |"
    lines = [header, "|---|" + "---|" * len(results)]
    lines += [f"| {label} | " + " | ".join(str(get(r)) for r in results) + " |" for label, get in ROWS]
    return "\n".join(lines)
