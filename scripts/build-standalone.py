#!/usr/bin/env python3
"""Build the single-file `memory-mcp` executable with PyInstaller, into dist/memory-mcp.

    python3 scripts/build-standalone.py [--python PATH] [--dist DIR] [--model FILE | --no-model]

Standard library only. By default it uses the development environment (`.venv`, brought up to date first by
`scripts/dev.py setup`), so the executable holds exactly the versions pinned in uv.lock
and the llama.cpp build that environment has: `dev.py` builds llama.cpp portably (GGML_NATIVE=OFF), which
matters twice here, because an executable is copied to other CPUs and because a -march=native build segfaults
on Q8_0 models on CPUs with AMX. PyInstaller is used as installed there (uv.lock can pin it); when it is absent,
the version pinned below is installed.

The result runs on Linux machines of the same architecture whose glibc is at least as new as the build
machine's (build on the oldest system you support). It unpacks itself into a temporary folder at each start.

It carries an embedding model, so that it serves with no configuration and no download: the pinned default
(fetched into the cache dir first, as `memory-mcp model fetch` does), or `--model FILE`. The model is appended
after PyInstaller's archive, not inside it, so it is not unpacked at every start: the first start copies it
once into the cache dir, and every later one mmaps that copy (see src/memory_mcp/core/bundled_model.py).

Progress goes to stderr; the last stdout line is the executable's path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "memory-mcp.spec"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYINSTALLER = "pyinstaller==6.22.3"


def log(message: str) -> None:
    print(f"build-standalone: {message}", file=sys.stderr, flush=True)


def die(message: str) -> None:
    log(f"error: {message}")
    sys.exit(1)


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=sys.stderr, env=env)
    if result.returncode != 0:
        die(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}")


def probe(python: Path, code: str, *args: str | Path) -> str | None:
    """Run `code` in `python`; its stdout, or None when it fails."""
    result = subprocess.run(
        [python, "-c", code, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def ensure_environment(python: Path, default: bool) -> None:
    """The build environment: memory-mcp and its native dependencies importable, PyInstaller installed."""
    if default:  # bring .venv up to date with uv.lock (dev.py does nothing when nothing changed)
        run(sys.executable, ROOT / "scripts" / "dev.py", "setup")
    if not python.exists():
        die(f"no Python at {python}")
    if probe(python, "import memory_mcp, llama_cpp, pygit2, hnswlib") is None:
        die(f"{python} cannot import memory_mcp and its native dependencies; run `python3 scripts/dev.py setup`")
    version = probe(python, "import PyInstaller; print(PyInstaller.__version__)")
    if version is None:
        log(f"PyInstaller is not installed: installing {PYINSTALLER} into {python}")
        uv = python.parent / "uv"
        if uv.exists():
            run(uv, "pip", "install", "--quiet", "--python", python, PYINSTALLER)
        else:
            run(python, "-m", "pip", "install", "--quiet", PYINSTALLER)
        version = probe(python, "import PyInstaller; print(PyInstaller.__version__)")
    log(f"PyInstaller {version}")


def build(python: Path, dist: Path, work: Path) -> Path:
    env = {**os.environ, "PYTHONNOUSERSITE": "1"}
    env.pop("LLAMA_CPP_LIB_PATH", None)
    run(python, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
        "--distpath", dist, "--workpath", work, SPEC, env=env)
    exe = dist / "memory-mcp"
    if not exe.is_file():
        die(f"PyInstaller finished but {exe} is missing")
    return exe


def default_model(python: Path) -> Path:
    """The pinned default model, from the cache dir or downloaded once."""
    fetched = subprocess.run([python, "-m", "memory_mcp.cli", "model", "fetch"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, text=True)
    if fetched.returncode != 0:
        die("could not fetch the default model to bundle; pass --model FILE (or --no-model)")
    return Path(fetched.stdout.strip().splitlines()[-1])


def bundle_model(python: Path, exe: Path, model: Path) -> None:
    code = "import sys; from pathlib import Path; from memory_mcp.core.bundled_model import append; " \
           "print(append(Path(sys.argv[1]), Path(sys.argv[2])).sha256)"
    digest = probe(python, code, exe, model)
    if digest is None:
        die(f"could not append {model} to {exe}")
    log(f"bundled {model.name} (sha256 {digest})")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", type=Path,
                        help="interpreter with memory-mcp installed, used as it is (default: .venv, set up by dev.py)")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "pyinstaller", help="PyInstaller work folder")
    models = parser.add_mutually_exclusive_group()
    models.add_argument("--model", type=Path, help="GGUF model to bundle (default: the pinned default model)")
    models.add_argument("--no-model", action="store_true", help="bundle no model (downloaded on first use)")
    args = parser.parse_args(argv)
    python = (args.python or VENV_PYTHON).absolute()
    ensure_environment(python, default=args.python is None)
    model = None if args.no_model else (args.model or default_model(python)).absolute()
    if model is not None and not model.is_file():
        die(f"no model file at {model}")
    started = time.monotonic()
    exe = build(python, args.dist.absolute(), args.work.absolute())
    if model is not None:
        bundle_model(python, exe, model)
    seconds = time.monotonic() - started
    log(f"built {exe}: {exe.stat().st_size / 2**20:.1f} MiB in {seconds:.0f} s")
    version = subprocess.run([exe, "--version"], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if version.returncode != 0:
        die(f"{exe} --version failed ({version.returncode}): {version.stderr.strip()}")
    log(version.stdout.strip())
    print(exe)


if __name__ == "__main__":
    main(sys.argv[1:])
