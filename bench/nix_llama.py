"""Build llama-cpp-python the way nix/python.nix does and compare its embedding speed with the dev build.

    nice .venv/bin/python bench/nix_llama.py --model all-MiniLM-L6-v2-q8_0.gguf [--work DIR] [--rounds 4]

The Nix build compiles uv.lock's sdist (version and sha256 checked here) with `packaging/native-build.json`'s
CMAKE_ARGS for this CPU, with SOURCE_DATE_EPOCH set as it is inside every Nix build (ggml then turns its
instruction-set options off unless they are given explicitly, which is what went wrong with nixpkgs' own
build). This script does the same outside Nix: the sdist from PyPI, an isolated PEP 517 build with
`uv build`, SOURCE_DATE_EPOCH=315532800, those CMAKE_ARGS. Then bare `Llama.embed` runs, in turns, in two
processes of their own (the dev build in .venv, the Nix-like build on PYTHONPATH) over the same texts, and
the script prints documents/s and query latency for each and their ratio (target: Nix-like ≥ 0.95× dev).

Compiling takes several minutes on two cores; `--work` keeps the build for a re-run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "llama-cpp-python"
SOURCE_DATE_EPOCH = "315532800"  # what nixpkgs' stdenv sets when a source has no timestamp of its own

# One measurement round, run in a child process: load, warm up, embed documents in batches of 16 (what the
# embedder does), then single queries; print JSON.
MEASURE = r"""
import json, sys, time
import llama_cpp
path, texts, queries = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
llm = llama_cpp.Llama(model_path=path, embedding=True, verbose=False, n_ctx=512, n_batch=512, n_ubatch=512,
                      n_threads=2, n_threads_batch=2, flash_attn=True)
llm.embed(texts[:16], normalize=False, truncate=True)
started = time.perf_counter()
for i in range(0, len(texts), 16):
    llm.embed(texts[i:i + 16], normalize=False, truncate=True)
docs = len(texts) / (time.perf_counter() - started)
latencies = []
for q in queries:
    t = time.perf_counter(); llm.embed([q], normalize=False, truncate=True)
    latencies.append((time.perf_counter() - t) * 1000)
latencies.sort()
print(json.dumps({"docs_per_s": docs, "query_ms": latencies[len(latencies) // 2],
                  "system_info": llama_cpp.llama_print_system_info().decode()}))
llm.close()
"""


def log(message: str) -> None:
    print(f"nix_llama: {message}", file=sys.stderr, flush=True)


def locked_sdist() -> tuple[str, str, str]:
    """(version, url, sha256) of llama-cpp-python's sdist in uv.lock."""
    lock = (ROOT / "uv.lock").read_text()
    block = lock.split(f'name = "{PACKAGE}"\n', 1)[1].split("\n[[package]]", 1)[0]
    version = re.search(r'^version = "([^"]+)"', block, re.M)[1]
    sdist = re.search(r'^sdist = \{ url = "([^"]+)", hash = "sha256:([0-9a-f]{64})"', block, re.M)
    return version, sdist[1], sdist[2]


def nix_cmake_args() -> str:
    flags = json.loads((ROOT / "packaging" / "native-build.json").read_text())
    return flags[platform.machine()][PACKAGE]["CMAKE_ARGS"]


def build(work: Path) -> Path:
    """The Nix-like build, installed into work/site; reused when it is there."""
    site = work / "site"
    if (site / "llama_cpp").is_dir():
        log(f"reusing the build in {site}")
        return site
    version, url, sha256 = locked_sdist()
    work.mkdir(parents=True, exist_ok=True)
    sdist = work / url.rsplit("/", 1)[1]
    if not sdist.is_file():
        log(f"downloading {url}")
        urllib.request.urlretrieve(url, sdist)  # noqa: S310 - PyPI
    if hashlib.sha256(sdist.read_bytes()).hexdigest() != sha256:
        raise SystemExit(f"{sdist} does not match uv.lock's sha256 {sha256}")
    env = {**os.environ, "CMAKE_ARGS": nix_cmake_args(), "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH}
    env.pop("CMAKE_BUILD_PARALLEL_LEVEL", None)
    log(f"building {PACKAGE} {version} with CMAKE_ARGS={env['CMAKE_ARGS']!r}, SOURCE_DATE_EPOCH set")
    uv = ROOT / ".venv" / "bin" / "uv"
    wheels = work / "wheels"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", wheels, sdist], check=True, env=env, stdout=sys.stderr
    )
    wheel = next(wheels.glob("llama_cpp_python-*.whl"))
    subprocess.run(
        [uv, "pip", "install", "--no-deps", "--target", site, wheel], check=True, env=env, stdout=sys.stderr
    )
    return site


def measure(site: Path | None, model: Path, texts: list[str], queries: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if site is not None:
        env["PYTHONPATH"] = str(site)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(model), json.dumps(texts), json.dumps(queries)],
        check=True,
        env=env,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def corpus() -> tuple[list[str], list[str]]:
    words = (
        "deploy backup database kettle garden invoice meeting server network password budget report "
        "tuesday morning schedule release staging cluster token history review"
    ).split()
    texts = [
        " ".join(words[(i * 7 + j * 3) % len(words)] for j in range(12 + i % 40)) + "." for i in range(160)
    ]
    queries = [f"when is the {words[i % len(words)]} {words[(i * 5) % len(words)]}" for i in range(40)]
    return texts, queries


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "nix-llama")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    site = build(args.work.absolute())
    texts, queries = corpus()
    runs: dict[str, list[dict]] = {"dev": [], "nix": []}
    for round_ in range(args.rounds):  # in turns: this VM's speed drifts within minutes
        for name, where in (("dev", None), ("nix", site)):
            runs[name].append(measure(where, args.model, texts, queries))
            log(
                f"round {round_ + 1} {name}: {runs[name][-1]['docs_per_s']:.1f} docs/s, "
                f"{runs[name][-1]['query_ms']:.2f} ms/query"
            )
    result = {
        name: {
            "docs_per_s": round(statistics.median(r["docs_per_s"] for r in rs), 2),
            "query_ms": round(statistics.median(r["query_ms"] for r in rs), 2),
            "system_info": rs[0]["system_info"],
        }
        for name, rs in runs.items()
    }
    result["ratio_docs"] = round(result["nix"]["docs_per_s"] / result["dev"]["docs_per_s"], 3)
    result["ratio_query"] = round(result["dev"]["query_ms"] / result["nix"]["query_ms"], 3)
    result["cmake_args"] = nix_cmake_args()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
