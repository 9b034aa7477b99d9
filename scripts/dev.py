#!/usr/bin/env python3
"""Set up the development environment, then run memory-mcp or its tests.

    python3 scripts/dev.py setup                 # only set up .venv
    python3 scripts/dev.py serve [ARGS...]       # set up, then exec: memory-mcp serve ARGS...
    python3 scripts/dev.py test [PYTEST ARGS...] # set up, then exec: python -m pytest ARGS...

Standard library only, so that a bare `python3` (3.11+) with pip and venv is all a fresh
machine needs. Setup makes `.venv` in the repo root, puts a pinned uv in it, and installs the
exact versions in uv.lock (with the `test` extra) plus the project itself, editable.

Environment:
    MEMORY_MCP_WHEELS  a folder of prebuilt wheels, preferred over building sdists (but hnswlib,
                       which builds in seconds, is always built with our flags).
    CMAKE_ARGS         flags for a llama-cpp-python source build; default: the portable ones in
                       packaging/native-build.json (which the Nix build reads too).

Setup prints to stderr only and reads no stdin: both belong to the command that follows.
`test` exits with pytest's status, so "no tests ran" (5) fails like any other failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_BIN = VENV / "bin"
UV = VENV_BIN / "uv"
STAMP = VENV / ".dev-setup-stamp"
REQUIREMENTS = VENV / ".dev-requirements.txt"
UV_CONFIG = VENV / ".dev-uv.toml"
UV_VERSION = "0.13.9"

# The source builds' environment per CPU architecture, shared with nix/native-build.nix. A default
# llama.cpp build uses -march=native, which on CPUs with AMX segfaults on the first embedding with a Q8_0
# model; these flags build a portable library instead (AVX2/FMA/F16C on x86-64, ggml's armv8 defaults on
# aarch64). hnswlib gets the same x86-64 baseline: its build offers -march=native or nothing (SSE2 only), and
# with SSE2 alone its distance loops made a recall's graph search take 30-40% longer (0.27 -> 0.17 ms at 10k).
NATIVE_BUILD = ROOT / "packaging" / "native-build.json"


def log(message: str) -> None:
    """Report progress on stderr, keeping stdout free for the command that follows."""
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def die(message: str) -> None:
    log(f"error: {message}")
    sys.exit(1)


def run(*cmd: str | Path) -> None:
    """Run a setup step with its output on stderr and no stdin, and stop if it fails."""
    result = subprocess.run(cmd, check=False, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    if result.returncode != 0:
        die(f"command failed ({result.returncode}): {' '.join(map(str, cmd))}")


def portable_build_variables(machine: str) -> dict[str, dict[str, str]]:
    """packaging/native-build.json's environment for the sdists that compile native code, per package."""
    flags = json.loads(NATIVE_BUILD.read_text())
    if machine not in flags:
        die(f"no portable build flags for CPU {machine!r} in {NATIVE_BUILD} (known: {', '.join(flags)})")
    return flags[machine]


def build_variables() -> dict[str, dict[str, str]]:
    """Environment for the sdists that compile native code, per package, for this machine.

    A CMAKE_ARGS the user set wins over the portable default.
    """
    variables = portable_build_variables(platform.machine())
    if "CMAKE_ARGS" in os.environ:
        variables["llama-cpp-python"]["CMAKE_ARGS"] = os.environ["CMAKE_ARGS"]
    return variables


def wheels_dir() -> Path | None:
    """The MEMORY_MCP_WHEELS folder, if it names one."""
    value = os.environ.get("MEMORY_MCP_WHEELS")
    if not value:
        return None
    path = Path(value).resolve()
    if not path.is_dir():
        log(f"warning: MEMORY_MCP_WHEELS={value} is not a directory; ignoring it")
        return None
    return path


def setup_fingerprint() -> str:
    """Hash of everything that decides what setup installs, so an unchanged setup is skipped."""
    digest = hashlib.sha256()
    for name in ("uv.lock", "pyproject.toml", "scripts/dev.py", "packaging/native-build.json"):
        digest.update((ROOT / name).read_bytes())
    digest.update(json.dumps(build_variables(), sort_keys=True).encode())
    return digest.hexdigest()


def venv_is_usable() -> bool:
    """True if .venv's interpreter starts and has pip.

    Catches a venv whose base Python is gone, one left half-made by an interrupted run, and
    one made by another tool without pip.
    """
    python = VENV_BIN / "python"
    if not python.exists():
        return False
    probe = subprocess.run(
        [python, "-c", "import pip"], check=False, stdin=subprocess.DEVNULL, capture_output=True
    )
    return probe.returncode == 0


def create_venv() -> None:
    if VENV.is_symlink() or VENV.is_file():
        log("existing .venv is broken; replacing it")
        VENV.unlink()
    elif VENV.exists():
        log("existing .venv is broken; recreating it")
        shutil.rmtree(VENV)
    log(f"creating {VENV}")
    run(sys.executable, "-m", "venv", VENV)


def install_uv() -> None:
    """Put the pinned uv in .venv with pip, so nothing beyond pip is needed beforehand."""
    log(f"installing uv {UV_VERSION}")
    run(VENV_BIN / "python", "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}")


def uv_config() -> str:
    """A uv config that hands the build variables to uv as extra-build-variables.

    Not the environment: uv keys its cache of wheels built from sdists on these, never on the
    environment, and would otherwise reuse a wheel built earlier with other flags (say by a
    plain `uv sync`, which builds llama.cpp with -march=native). Passing a config file also
    keeps user-level uv config out of setup.
    """
    lines = ["[pip.extra-build-variables]"]
    for package, variables in build_variables().items():
        pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in variables.items())
        lines.append(f"{json.dumps(package)} = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def install_locked() -> None:
    """Make .venv hold exactly uv.lock's packages, then the project itself, editable."""
    log("installing the locked dependencies")
    export = ["export", "--locked", "--quiet", "--no-hashes", "--no-header", "--no-annotate"]
    run(UV, *export, "--extra", "test", "--no-emit-project", "--output-file", REQUIREMENTS)
    python = ["--python", VENV_BIN / "python"]
    config = uv_config()
    if UV_CONFIG.exists() and UV_CONFIG.read_text() != config:
        # A sync keeps installed packages whose version matches, whatever they were built with.
        log("build variables changed; reinstalling llama-cpp-python and hnswlib")
        run(UV, "pip", "uninstall", "--quiet", *python, *build_variables())
    UV_CONFIG.write_text(config)
    sources = []
    wheels = wheels_dir()
    if wheels:
        hnswlib = build_variables()["hnswlib"]
        log(f"preferring prebuilt wheels in {wheels} (hnswlib always builds, with {hnswlib})")
        sources = ["--find-links", str(wheels), "--no-binary", "hnswlib"]
    else:
        cmake_args = build_variables()["llama-cpp-python"]["CMAKE_ARGS"]
        log(f"no prebuilt wheels; llama-cpp-python builds with CMAKE_ARGS={cmake_args!r}")
    # Bytecode compiled now, not at each start: uv leaves it out by default, and where Python may not write
    # it (PYTHONDONTWRITEBYTECODE, a read-only venv) every start compiled every module again: importing the
    # server took 9-11 s at load 11 without it, 3-4 s with it.
    compiled = ["--compile-bytecode"]
    run(UV, "pip", "sync", "--config-file", UV_CONFIG, *python, *compiled, *sources, REQUIREMENTS)
    run(UV, "pip", "install", "--config-file", UV_CONFIG, *python, *compiled, "--no-deps", "--editable", ROOT)


def compile_sources() -> None:
    """The project's own modules, which the editable install leaves outside site-packages; quick when they are
    compiled already, so it runs before every command (sources change between setups)."""
    run(VENV_BIN / "python", "-m", "compileall", "-q", ROOT / "src")


def setup() -> None:
    """Bring .venv up to date with uv.lock, doing nothing when nothing changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this runs on whatever python3 the machine has
        die(f"memory-mcp needs Python 3.11 or newer, not {sys.version.split()[0]}")
    if not venv_is_usable():
        create_venv()
    fingerprint = setup_fingerprint()
    if STAMP.exists() and STAMP.read_text() == fingerprint:
        return
    install_uv()
    install_locked()
    STAMP.write_text(fingerprint)
    log("environment ready")


def exec_in_venv(program: str, *args: str) -> None:
    path = VENV_BIN / program
    os.execv(path, [str(path), *args])


def main(argv: list[str]) -> None:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    if command not in ("setup", "serve", "test"):
        print(__doc__.strip(), file=sys.stderr)
        sys.exit(2)
    setup()
    compile_sources()
    if command == "serve":
        exec_in_venv("memory-mcp", "serve", *args)
    elif command == "test":
        # From the root, so that pytest finds its config and testpaths.
        os.chdir(ROOT)
        exec_in_venv("python", "-m", "pytest", *args)


if __name__ == "__main__":
    main(sys.argv[1:])
