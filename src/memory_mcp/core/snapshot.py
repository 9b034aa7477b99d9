"""Saved catalogs in the cache directory, so a restart loads instead of re-reading and re-indexing git.

A snapshot is a folder (`catalog.sqlite`: entries and metadata; `lexical.sqlite`: the keyword index;
`vectors.hnsw`: the graph) named in `manifest.json`. Folders are complete before they are renamed into
place and the manifest is replaced atomically, so a crash at any instant leaves the old snapshot or the new
one, never a mix.
Snapshots are derived data: any doubt (format, damage) means "no snapshot" and a rebuild from git.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
import uuid
from contextlib import AbstractContextManager, closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from memory_mcp.core.catalog import Catalog, Entry
from memory_mcp.core.lexical_index import LexicalIndex
from memory_mcp.core.model import Memory, Scope
from memory_mcp.core.vector_index import VectorIndex
from memory_mcp.files import fsync_path, locked, write_atomic

log = logging.getLogger(__name__)

FORMAT: Final = 3
"""Layout version (2: contentless keyword index; 3: in a file of its own, so loading it copies nothing else
into memory). Version 2 still loads; older ones are rebuilt from git and the embedding cache."""
_FILES: Final = ("catalog.sqlite", "lexical.sqlite", "vectors.hnsw")
MANIFEST: Final = "manifest.json"
GRACE_SECONDS: Final = 60.0
"""Old folders outlive their replacement this long, for a process still loading them."""


@dataclass(frozen=True)
class Loaded:
    catalog: Catalog
    dirty_paths: list[str]
    """Entries saved from uncommitted files: the loader re-checks them against git and the work tree."""
    outdated: bool
    """Saved in an older layout: worth saving again."""


def save(catalog: Catalog, directory: Path, model: str, still: AbstractContextManager[object]) -> None:
    """Write `catalog` as the current snapshot.

    `still` must keep the catalog from changing while held. It is held only while the catalog is read and the
    two indexes are written; the catalog file is written after (at 100k memories writers waited 0.85-1.07 s
    of a 1.2-1.5 s save, where they used to wait for all of it).
    """
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    with locked(directory / "snapshot.lock"):
        folder = directory / f".tmp-{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            with still:
                rows = [_row(entry) for entry in catalog.entries()]
                meta = {
                    "commit": catalog.commit,
                    "counters": catalog.counters,
                    "problems": dict(catalog.problems),
                }
                dimensions = catalog.vector_index.dimensions
                catalog.lexical.save(folder / "lexical.sqlite")
                catalog.vector_index.save(str(folder / "vectors.hnsw"))
            _write_catalog(rows, meta, folder / "catalog.sqlite")
            for name in _FILES:
                fsync_path(folder / name)
            final = directory / f"{(meta['commit'] or 'empty')[:12]}-{uuid.uuid4().hex[:8]}"
            folder.rename(final)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        fsync_path(directory)
        manifest = {
            "format": FORMAT,
            "model": model,
            "dimensions": dimensions,
            "commit": meta["commit"],
            "folder": final.name,
        }
        write_atomic(directory / MANIFEST, json.dumps(manifest).encode())
        _prune(directory, keep=final.name)


def load(directory: Path, model: str, dimensions: int) -> Loaded | None:
    """The current snapshot, or None when there is none or it cannot be trusted."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable snapshot manifest: %s", exc)
        return None
    try:
        if manifest["format"] not in (2, FORMAT):
            return None
        folder = directory / manifest["folder"]
        same_model = manifest["model"] == model and manifest["dimensions"] == dimensions
        vector_index = None
        with closing(sqlite3.connect(f"file:{folder / 'catalog.sqlite'}?mode=ro", uri=True)) as db:
            entries, meta = _read_catalog(db)
            if same_model:
                labels = {label for entry in entries for label in entry.labels}
                vector_index = VectorIndex.load(str(folder / "vectors.hnsw"), dimensions, labels)
        # Version 2 kept the keyword index in the catalog file (its other tables are dropped once loaded).
        lexical_file = "lexical.sqlite" if manifest["format"] == FORMAT else "catalog.sqlite"
        lexical = LexicalIndex.load(folder / lexical_file)
        catalog = Catalog.restore(dimensions, vector_index, lexical, entries, tuple(meta["counters"]))
        catalog.commit = meta["commit"]
        catalog.problems = dict(meta["problems"])
        dirty = [entry.path for entry in entries if entry.dirty]
        return Loaded(catalog, dirty, outdated=manifest["format"] != FORMAT)
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, sqlite3.Error) as exc:
        log.warning("ignoring damaged snapshot (it will be rebuilt from git): %s", exc)
        return None


def _write_catalog(rows: list[tuple], meta: dict, path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE snapshot_meta (key TEXT PRIMARY KEY, value TEXT)")
        db.execute(
            "CREATE TABLE snapshot_entries (doc INTEGER, path TEXT, version TEXT, labels TEXT, dirty INTEGER, "
            "id TEXT, name TEXT, scope TEXT, tags TEXT, content TEXT, source TEXT, created TEXT, updated TEXT)"
        )
        db.executemany("INSERT INTO snapshot_entries VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany(
            "INSERT INTO snapshot_meta VALUES (?, ?)", ((k, json.dumps(v)) for k, v in meta.items())
        )
        db.commit()


def _row(entry: Entry) -> tuple:
    m = entry.memory
    return (
        entry.doc,
        entry.path,
        entry.version,
        json.dumps(entry.labels),
        int(entry.dirty),
        m.id,
        m.name,
        m.scope.path,
        json.dumps(m.tags),
        m.content,
        m.source,
        m.created_at.isoformat(),
        m.updated_at.isoformat(),
    )


def _read_catalog(db: sqlite3.Connection) -> tuple[list[Entry], dict]:
    meta = {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM snapshot_meta")}
    entries = []
    for (
        doc,
        path,
        version,
        labels,
        dirty,
        mid,
        name,
        scope,
        tags,
        content,
        source,
        created,
        updated,
    ) in db.execute("SELECT * FROM snapshot_entries"):
        memory = Memory(
            name=name,
            scope=Scope(scope),
            content=content,
            tags=tuple(json.loads(tags)),
            source=source,
            id=mid,
            created_at=datetime.fromisoformat(created),
            updated_at=datetime.fromisoformat(updated),
        )
        entries.append(Entry(doc, memory, path, version, json.loads(labels), bool(dirty)))
    return entries, meta


def _prune(directory: Path, keep: str) -> None:
    cutoff = time.time() - GRACE_SECONDS
    for folder in directory.iterdir():
        if folder.is_dir() and folder.name != keep and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
