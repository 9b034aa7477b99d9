"""Where a remember's written bytes go, file by file: `memory-mcp serve` on a corpus an earlier `run.py` left,
traced with strace while it takes remembers for a while and then idles.

    .venv/bin/python bench/writes.py DIR [--seconds 40] [--idle 40] [--corpus debian|generated --size N]

`/proc/<pid>/io` counts the whole process: the repository's writes with the cache directory's, so run.py can
only bound the cache directory's share. Here every write(2) and pwrite64(2) is attributed to its file and
counted twice: as bytes handed to the kernel, and as 4 KB pages dirtied (a page written again before its
file's next fsync costs nothing more: what writeback sends the disk, block by block). Tracing
slows the server, so no latency is reported, and the git index (rewritten at most every 2 s) is rewritten
more often per remember than untraced.

What `/proc/<pid>/io` counts beyond the traced writes is reported as unattributed: pages dirtied without a
write call, such as the file system's metadata for new files (the repository creates about ten per commit,
the cache directory none), SQLite's memory-mapped `-shm` index, and on kernels whose page cache holds large
folios, the rest of a folio a small write lands in (`--cold` evicts DIR's files first, so that the pages read
back come in small). Vector graph saves are rationed (a save may cost 24 KB per graph change since the last,
`GRAPH_BYTES_PER_CHANGE`), so a window catches a whole one or none. The block device's own count is given too,
which holds every process's writes and the file system's journal.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
from corpora import STAMP, Corpus, debian, fresh_memory, generated
from mcp import Client
from served import Server, Session

PAGE = 4096
SETTLE = 3.0
"""Seconds after ready before the window: start-up's own background work (a first look at the graph) ends."""
TRACED = "trace=write,pwrite64,openat,fsync,fdatasync"
UNFINISHED = "<unfinished ...>"
SYSCALL = re.compile(r"^\d+\s+(\w+)\((\d+)<([^>]*)>(.*)\)\s+= (-?\d+)")
OPENED = re.compile(r"^\d+\s+openat\(.*, (O_[A-Z_|]+).*\)\s+= (\d+)<([^>]*)>")
GROUPS = (
    ("derived store WAL", r"/derived/derived\.sqlite-wal$"),
    ("derived store", r"/derived/derived\.sqlite$"),
    ("vector graph files", r"/derived/graph-[^/]*$"),
    ("embedding cache WAL", r"/embeddings\.sqlite-wal$"),
    ("embedding cache", r"/embeddings\.sqlite$"),
    ("git objects", r"/\.git/objects/"),
    ("git index", r"/\.git/index(\.lock)?$"),
)


def group(path: str, root: str) -> str:
    for name, pattern in GROUPS:
        if re.search(pattern, path):
            return name
    if path.startswith(f"{root}/cache/"):
        return "cache directory, other"
    return "git refs, logs and work tree" if path.startswith(f"{root}/repo/") else "outside DIR"


class Pages:
    """Bytes handed over and 4 KB pages newly dirtied, by group, replayed from an strace log."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.handed: Counter[str] = Counter()
        self.dirtied: Counter[str] = Counter()
        self._dirty: set[tuple[str, int, int]] = set()
        self._position: dict[int, int] = {}
        self._generation: Counter[str] = Counter()

    def replay(self, lines: list[str]) -> None:
        for line in _joined(lines):
            if opened := OPENED.match(line):
                self._opened(*opened.groups())
            elif match := SYSCALL.match(line):
                call, fd, path, rest, result = match.groups()
                self._one(call, int(fd), path, rest, int(result))

    def _opened(self, flags: str, fd: str, path: str) -> None:
        """A new descriptor starts at offset 0; a created or truncated file is a new set of pages."""
        self._position[int(fd)] = 0
        if "O_TRUNC" in flags or "O_EXCL" in flags:
            self._generation[path] += 1

    def _one(self, call: str, fd: int, path: str, rest: str, result: int) -> None:
        if call in ("fsync", "fdatasync"):
            self._dirty = {page for page in self._dirty if page[0] != path}
        elif call in ("write", "pwrite64") and result > 0:
            offset = int(rest.rsplit(",", 1)[1]) if call == "pwrite64" else self._position.get(fd, 0)
            if call == "write":
                self._position[fd] = offset + result
            kind = group(path, self.root)
            self.handed[kind] += result
            generation = self._generation[path]
            for page in range(offset // PAGE, (offset + result - 1) // PAGE + 1):
                if (path, generation, page) not in self._dirty:
                    self._dirty.add((path, generation, page))
                    self.dirtied[kind] += PAGE


class Device:
    """Bytes written to the block device holding a folder so far (its /sys stat: every process's writes,
    and the file system's journal): a cross-check of the server's share on a quiet machine."""

    def __init__(self, folder: Path) -> None:
        number = folder.stat().st_dev
        self._stat = Path(f"/sys/dev/block/{os.major(number)}:{os.minor(number)}/stat")
        self._start = self._sectors()

    def _sectors(self) -> int:
        return int(self._stat.read_text().split()[6])

    def written(self) -> int:
        return (self._sectors() - self._start) * 512


def _evict(root: Path) -> None:
    """Write back, then drop from the page cache, every file under `root`: pages read back later come in
    as small folios, as after a reboot, rather than the large ones a bulk write left."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _joined(lines: list[str]) -> Iterator[str]:
    """strace's lines with each call another thread interrupted ("<unfinished ...>", later "<... resumed>")
    made whole again."""
    pending: dict[str, str] = {}
    for line in lines:
        pid, _, call = line.partition(" ")
        call = call.lstrip()
        if call.endswith(UNFINISHED):
            pending[pid] = call.removesuffix(UNFINISHED)
        elif call.startswith("<...") and pid in pending:
            yield f"{pid} {pending.pop(pid)}{call.split('resumed>', 1)[1]}"
        else:
            yield line


async def _remember_for(url: str, corpus: Corpus, seconds: float, idle: float) -> int:
    count = 0
    async with Client(f"{url}/mcp") as client:
        session = Session(client)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            memory = fresh_memory(corpus, count, "writes")
            await session.remember(memory.name, memory.content)
            count += 1
        await anyio.sleep(idle)
    return count


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("dir", type=Path)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--idle", type=float, default=40.0)
    parser.add_argument("--corpus", default="debian", choices=("debian", "generated"))
    parser.add_argument("--size", type=int, default=10_000, help="the corpus size DIR holds")
    parser.add_argument("--model", default=os.environ.get("MEMORY_MCP_MODEL"))
    parser.add_argument("--cold", action="store_true", help="evict DIR's files from the page cache first")
    args = parser.parse_args()
    root = args.dir.resolve()
    env = {
        **os.environ,
        "MEMORY_MCP_REPO_PATH": str(root / "repo"),
        "MEMORY_MCP_CACHE_DIR": str(root / "cache"),
        "MEMORY_MCP_MODEL": args.model,
        "MEMORY_MCP_LOG_LEVEL": "WARNING",
    }
    corpus = debian(args.size) if args.corpus == "debian" else generated(args.size, None)
    log = root / f"writes-{STAMP}.strace"
    server = Server(env)
    try:
        server.wait_ready()
        time.sleep(SETTLE)
        if args.cold:
            _evict(root)
        before, device = server.written_bytes(), Device(root)
        trace = subprocess.Popen(
            ["strace", "-f", "-qq", "-s", "0", "-y", "-o", str(log), "-p", str(server.process.pid),
             "-e", TRACED],
        )
        time.sleep(1.0)  # strace attaches to every thread
        remembers = anyio.run(_remember_for, server.url, corpus, args.seconds, args.idle)
        trace.send_signal(signal.SIGINT)
        trace.wait()
        total = server.written_bytes() - before
        os.sync()
        device_total = device.written()
    finally:
        server.stop(signal.SIGTERM)
    pages = Pages(str(root))
    pages.replay(log.read_text().splitlines())
    log.unlink()
    print(json.dumps(_report(pages, remembers, total, device_total), indent=1))


def _report(pages: Pages, remembers: int, total: int, device_total: int) -> dict:
    per = remembers * 1024

    def kb(counter: Counter[str], cache_only: bool) -> dict[str, float]:
        rows = {k: round(v / per, 1) for k, v in counter.most_common() if not cache_only or _in_cache(k)}
        return {**rows, "total": round(sum(rows.values()), 1)}

    return {
        "remembers": remembers,
        "proc_io_written_per_remember_kb": round(total / per, 1),
        "device_written_per_remember_kb": round(device_total / per, 1),
        "handed_per_remember_kb": kb(pages.handed, False),
        "pages_dirtied_per_remember_kb": kb(pages.dirtied, False),
        "cache_dir_pages_dirtied_per_remember_kb": kb(pages.dirtied, True)["total"],
        "cache_dir_handed_per_remember_kb": kb(pages.handed, True)["total"],
        "unattributed_per_remember_kb": round((total - sum(pages.dirtied.values())) / per, 1),
    }


def _in_cache(kind: str) -> bool:
    return not kind.startswith("git") and kind != "outside DIR"


if __name__ == "__main__":
    main()
