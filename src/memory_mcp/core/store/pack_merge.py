"""Packs merged by copying, not by packing again. libgit2 computes every delta afresh when it packs objects
(it cannot reuse one), and a large folder leaves a tree of megabytes with each commit, so packing old packs
again costs seconds per commit they hold. A pack's entries need nothing from outside it (a delta names its
base by an offset back into the same pack, or by id), so packs laid end to end under one header are a valid
pack, and their index entries, shifted, its index. Format: git's `Documentation/gitformat-pack.txt`, index
version 2."""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from memory_mcp.files import fsync_path

_INDEX_MAGIC: Final = b"\xfftOc\x00\x00\x00\x02"
_FANOUT_END: Final = len(_INDEX_MAGIC) + 256 * 4
_ID: Final = 20
_TRAILER: Final = 20
_HEADER: Final = 12
_MSB: Final = 0x8000_0000
_FIRST_LARGE_OFFSET = 0x8000_0000
"""Offsets from here on go to the index's 64-bit table (git's `--index-version=2,<offset>` moves it)."""
_COPY_BLOCK: Final = 1 << 20
TEMPORARY_PREFIX: Final = "pack_git2_merge"
"""A merge's files before their rename: the prefix of libgit2's own, so a killed merge's are tidied alike."""


class UnreadablePack(Exception):
    """A pack whose index is not version 2, or whose files disagree: it is left out of a merge."""


@dataclass(frozen=True)
class PackIndex:
    pack: Path
    ids: list[bytes]
    crcs: list[int]
    offsets: list[int]
    checksum: bytes
    """The pack's trailing SHA-1, which its index repeats."""

    @property
    def count(self) -> int:
        return len(self.ids)


def object_count(pack: Path) -> int:
    """How many objects a pack holds, from its index's last fan-out entry (1 KB read)."""
    with pack.with_suffix(".idx").open("rb") as handle:
        head = handle.read(_FANOUT_END)
    if len(head) < _FANOUT_END or not head.startswith(_INDEX_MAGIC):
        raise UnreadablePack(f"{pack.name}: not a version 2 index")
    count: int = struct.unpack_from(">I", head, _FANOUT_END - 4)[0]
    return count


def read_index(pack: Path) -> PackIndex:
    data = pack.with_suffix(".idx").read_bytes()
    if len(data) < _FANOUT_END or not data.startswith(_INDEX_MAGIC):
        raise UnreadablePack(f"{pack.name}: not a version 2 index")
    count = struct.unpack_from(">I", data, _FANOUT_END - 4)[0]
    large_bytes = len(data) - _FANOUT_END - count * (_ID + 8) - 2 * _TRAILER
    if large_bytes < 0 or large_bytes % 8:
        raise UnreadablePack(f"{pack.name}: its index is cut short")
    at = _FANOUT_END
    ids = [data[at + i * _ID : at + (i + 1) * _ID] for i in range(count)]
    at += count * _ID
    crcs = list(struct.unpack_from(f">{count}I", data, at))
    at += count * 4
    small = struct.unpack_from(f">{count}I", data, at)
    at += count * 4
    large = data[at : len(data) - 2 * _TRAILER]
    try:
        offsets = [
            struct.unpack_from(">Q", large, (offset & ~_MSB) * 8)[0] if offset & _MSB else offset
            for offset in small
        ]
    except struct.error as exc:
        raise UnreadablePack(f"{pack.name}: its index names a large offset it lacks") from exc
    return PackIndex(pack, ids, crcs, offsets, data[len(data) - 2 * _TRAILER : len(data) - _TRAILER])


def distinct(indexes: list[PackIndex]) -> bool:
    """Whether no object is in two of the packs: a pack may hold each once, so only such packs merge."""
    return len({object_id for index in indexes for object_id in index.ids}) == sum(i.count for i in indexes)


def merge(indexes: list[PackIndex], folder: Path) -> Path:
    """One pack holding every entry of `indexes`' packs (`distinct` ones), written durably in `folder`; its
    path. The caller removes the old packs once this returns."""
    if not distinct(indexes):
        raise ValueError("packs that share objects cannot be laid end to end")
    token = secrets.token_hex(8)
    pack_temp, index_temp = (
        folder / f"{TEMPORARY_PREFIX}{token}.pack",
        folder / f"{TEMPORARY_PREFIX}{token}.idx",
    )
    try:
        checksum, starts = _write_pack(indexes, pack_temp)
        _write_index(indexes, starts, checksum, index_temp)
        target = folder / f"pack-{checksum.hex()}.pack"
        os.replace(pack_temp, target)
        os.replace(index_temp, target.with_suffix(".idx"))  # last: a pack without its index is not read
        fsync_path(folder)
        return target
    finally:
        pack_temp.unlink(missing_ok=True)
        index_temp.unlink(missing_ok=True)


class _HashedFile:
    """A file written with its SHA-1 kept, for a pack's trailer."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.digest = hashlib.sha1(usedforsecurity=False)

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)


def _write_pack(indexes: list[PackIndex], path: Path) -> tuple[bytes, list[int]]:
    """Each pack's entries copied in turn under one header; the new pack's checksum and where each began."""
    starts = []
    with path.open("xb") as out:
        os.fchmod(out.fileno(), 0o444)
        hashed = _HashedFile(out)
        hashed.write(b"PACK" + struct.pack(">II", 2, sum(index.count for index in indexes)))
        for index in indexes:
            starts.append(out.tell())
            _copy_entries(index, hashed)
        checksum = hashed.digest.digest()
        out.write(checksum)
        out.flush()
        os.fsync(out.fileno())
    return checksum, starts


def _copy_entries(index: PackIndex, out: _HashedFile) -> None:
    with index.pack.open("rb") as source:
        header = source.read(_HEADER)
        end = source.seek(0, os.SEEK_END) - _TRAILER
        if end < _HEADER or header[:4] != b"PACK" or struct.unpack(">I", header[8:])[0] != index.count:
            raise UnreadablePack(f"{index.pack.name}: its header disagrees with its index")
        source.seek(end)
        if source.read(_TRAILER) != index.checksum:
            raise UnreadablePack(f"{index.pack.name}: its checksum disagrees with its index")
        source.seek(_HEADER)
        left = end - _HEADER
        while left:
            block = source.read(min(left, _COPY_BLOCK))
            if not block:
                raise UnreadablePack(f"{index.pack.name}: shorter than it was")
            out.write(block)
            left -= len(block)


def _write_index(indexes: list[PackIndex], starts: list[int], checksum: bytes, path: Path) -> None:
    entries = sorted(
        (object_id, crc, start - _HEADER + offset)
        for index, start in zip(indexes, starts, strict=True)
        for object_id, crc, offset in zip(index.ids, index.crcs, index.offsets, strict=True)
    )
    fanout, below = [], 0
    for first in range(256):
        while below < len(entries) and entries[below][0][0] == first:
            below += 1
        fanout.append(below)
    small: list[int] = []
    large: list[int] = []
    for _, _, offset in entries:
        if offset < _FIRST_LARGE_OFFSET:
            small.append(offset)
        else:
            small.append(_MSB | len(large))
            large.append(offset)
    body = b"".join(
        [
            _INDEX_MAGIC,
            struct.pack(">256I", *fanout),
            b"".join(object_id for object_id, _, _ in entries),
            struct.pack(f">{len(entries)}I", *(crc for _, crc, _ in entries)),
            struct.pack(f">{len(entries)}I", *small),
            struct.pack(f">{len(large)}Q", *large),
            checksum,
        ]
    )
    with path.open("xb") as out:
        os.fchmod(out.fileno(), 0o444)
        out.write(body + hashlib.sha1(body, usedforsecurity=False).digest())
        out.flush()
        os.fsync(out.fileno())
