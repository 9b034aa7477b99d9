"""A model carried by the standalone executable, appended after PyInstaller's archive.

PyInstaller's one-file bootloader finds its archive through an ELF section, so bytes appended to the file
do not disturb it, and are not unpacked into a temporary folder at every start as bundled data files are.
llama.cpp needs the model as a file of its own, so the first start copies it once into the cache directory's
content-addressed place (`default_model.ModelCache`), verified like a download; every later start mmaps that
copy in place and reads nothing from the executable.

Layout at the end of the executable: the model's bytes, a JSON trailer (name, sha256, size, offset), the
trailer's length (8 bytes, little-endian) and MAGIC.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from memory_mcp.core.download import BLOCK, ProgressReport
from memory_mcp.files import file_sha256

MAGIC: Final = b"\x00memory-mcp-model-v1\x00"
_LENGTH: Final = 8


@dataclass(frozen=True)
class Bundle:
    executable: Path
    name: str
    sha256: str
    size: int
    offset: int

    def extract(self, target: Path, progress: ProgressReport | None = None) -> None:
        """Copy the model's bytes into `target` (a new file)."""
        with self.executable.open("rb") as source, target.open("wb") as out:
            source.seek(self.offset)
            done = 0
            while done < self.size:
                block = source.read(min(BLOCK, self.size - done))
                if not block:
                    raise OSError(f"{self.executable} ends inside its bundled model")
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, self.size)


def append(executable: Path, model: Path) -> Bundle:
    """Append `model` to `executable` (the build step)."""
    size = model.stat().st_size
    with executable.open("ab") as out:
        offset = out.tell()
        with model.open("rb") as source:
            shutil.copyfileobj(source, out, BLOCK)
        trailer = json.dumps(
            {"name": model.name, "sha256": file_sha256(model), "size": size, "offset": offset}
        ).encode()
        out.write(trailer + len(trailer).to_bytes(_LENGTH, "little") + MAGIC)
    found = read(executable)
    assert found is not None
    return found


def read(executable: Path) -> Bundle | None:
    """The model appended to `executable`, if there is one."""
    try:
        with executable.open("rb") as handle:
            end = handle.seek(0, os.SEEK_END)
            tail = len(MAGIC) + _LENGTH
            if end < tail:
                return None
            handle.seek(end - tail)
            footer = handle.read(tail)
            if footer[_LENGTH:] != MAGIC:
                return None
            length = int.from_bytes(footer[:_LENGTH], "little")
            handle.seek(end - tail - length)
            data = json.loads(handle.read(length))
    except (OSError, ValueError):
        return None
    return Bundle(executable=executable, **data)


def running_bundle() -> Bundle | None:
    """The model bundled with this process's executable, when it is the standalone build."""
    if not getattr(sys, "frozen", False):
        return None
    return read(Path(sys.executable))
