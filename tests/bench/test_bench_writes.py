"""bench/writes.py's accounting, on a real strace of a real process: bytes handed to the kernel and 4 KB pages
dirtied, by group of files, with the calls strace shows split by another thread's joined whole again."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import writes

WRITER = """
import os, sys, threading
root = sys.argv[1]
wal = os.open(f"{root}/cache/state/derived/derived.sqlite-wal", os.O_RDWR | os.O_CREAT | os.O_TRUNC)
os.pwrite(wal, b"a" * 5000, 0)  # pages 0 and 1
os.pwrite(wal, b"b" * 100, 4200)  # page 1 again, still dirty: no new page
os.fsync(wal)
os.pwrite(wal, b"c" * 100, 0)  # page 0 again after the sync: dirtied anew

def objects(thread):
    for i in range(FILES):
        path = f"{root}/repo/.git/objects/tmp_{thread}_{i}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, b"d" * 3000)
        os.write(fd, b"e" * 3000)  # crosses into the file's second page
        os.close(fd)

threads = [threading.Thread(target=objects, args=(n,)) for n in range(THREADS)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""
FILES, THREADS = 300, 2


def test_a_real_trace_counts_bytes_and_pages_by_group(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is missing: .ci/run installs Debian's strace package"
    (tmp_path / "cache" / "state" / "derived").mkdir(parents=True)
    (tmp_path / "repo" / ".git" / "objects").mkdir(parents=True)
    log = tmp_path / "trace"
    script = WRITER.replace("FILES", str(FILES)).replace("THREADS", str(THREADS))
    subprocess.run(
        [strace, "-f", "-qq", "-s", "0", "-y", "-o", str(log), "-e", writes.TRACED,
         sys.executable, "-c", script, str(tmp_path)],
        check=True,
    )
    pages = writes.Pages(str(tmp_path))
    pages.replay(log.read_text().splitlines())
    files = FILES * THREADS
    assert pages.handed["derived store WAL"] == 5000 + 100 + 100
    assert pages.dirtied["derived store WAL"] == 3 * writes.PAGE
    assert pages.handed["git objects"] == files * 6000
    assert pages.dirtied["git objects"] == files * 2 * writes.PAGE


def test_calls_interrupted_by_another_thread_are_joined() -> None:
    lines = [
        '7  write(3</r/repo/.git/index.lock>, ""..., 8192 <unfinished ...>',
        '8  pwrite64(5</r/cache/s/embeddings.sqlite-wal>, ""..., 1024, 4096) = 1024',
        "7  <... write resumed>)              = 8192",
    ]
    pages = writes.Pages("/r")
    pages.replay(lines)
    assert pages.handed == {"git index": 8192, "embedding cache WAL": 1024}
    assert pages.dirtied == {"git index": 2 * writes.PAGE, "embedding cache WAL": writes.PAGE}
