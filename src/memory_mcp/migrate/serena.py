"""Serena's memories: one markdown file per memory, global ones in `~/.serena/memories/` (newer Serena keeps
them in its `global/` folder, which is Serena's `global/` name prefix), project ones in
`<repo>/.serena/memories/`, with sub-folders as `/`-separated name parts.

Only `*.md` files are memories, as in Serena. Content is kept byte for byte, so a file that is not UTF-8
text cannot be a memory: it is reported and skipped (Serena itself fails to read it), as are empty files
and files over 1 MiB. Names are given to every file found, readable or not, before any is read, so the
numbering of clashing names does not change when a skipped file is fixed later; when a file at the top of
`~/.serena/memories/` and one in its `global/` want the same name, the `global/` one keeps it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from memory_mcp.core import MAX_CONTENT_BYTES, Memory, Scope, validate_content
from memory_mcp.errors import InvalidInput
from memory_mcp.migrate.names import (
    Wanted,
    display,
    normalise_name,
    normalise_scope,
    printable,
    source_text,
    unique_names,
)
from memory_mcp.migrate.plan import Batch, Candidate, Skipped

TAG: Final = "serena"
GLOBAL_FOLDER: Final = "global"
SUFFIX: Final = ".md"


def home_memories() -> Path:
    return Path.home() / ".serena" / "memories"


@dataclass(frozen=True)
class Root:
    """One memories folder and the scope its files go to."""

    path: Path
    scope: Scope

    @property
    def is_home(self) -> bool:
        return self.path == home_memories().resolve()


@dataclass(frozen=True)
class _File:
    root: Root
    path: Path
    parts: tuple[str, ...]
    """The Serena name's parts: the path below the root without `.md` (and without the home's `global/`)."""
    legacy: bool
    """Outside the home's `global/` folder, where Serena kept global memories before it had one."""


def locate(path: Path, scope: str | None = None) -> Root:
    """The memories folder at or below `path` and its scope: `--scope` if given, `global` for the home's
    folder (or its `global/`), else the name of the repository folder that holds `.serena/memories`."""
    path = path.expanduser().resolve()
    if (path / ".serena" / "memories").is_dir():
        path = path / ".serena" / "memories"
    if not path.is_dir():
        raise InvalidInput(f"{display(path)} is not a folder of Serena memories (~/src/app/.serena/memories)")
    if scope is not None:
        return Root(path, Scope.parse(scope))
    home = home_memories().resolve()
    if path in (home, home / GLOBAL_FOLDER):
        return Root(path, Scope())
    if path.name == "memories" and path.parent.name == ".serena":
        return Root(path, normalise_scope(path.parent.parent.name))
    raise InvalidInput(
        f"cannot tell which scope {display(path)} belongs to (neither ~/.serena/memories nor "
        "<repo>/.serena/memories); give it with --scope"
    )


def read(paths: list[Path], scope: str | None = None) -> Batch:
    """Every memory file under the given folders (default: the home's), as candidates and skipped files."""
    if not paths:
        if not home_memories().is_dir():
            raise InvalidInput(f"{display(home_memories())} does not exist; name the folders to import")
        paths = [home_memories()]
    roots = [locate(path, scope) for path in paths]
    files = _files(roots)
    wanted = [
        Wanted(f.root.scope, normalise_name(f.parts), _original(f), display(f.path), f.legacy) for f in files
    ]
    batch = Batch("serena", sources=[f"{display(root.path)} -> {root.scope}" for root in roots])
    for file, name in zip(files, unique_names(wanted), strict=True):
        try:
            content, modified = _load(file.path)
        except InvalidInput as exc:
            batch.skipped.append(Skipped(display(file.path), str(exc)))
            continue
        memory = Memory(
            name=name,
            scope=file.root.scope,
            content=content,
            tags=(TAG,),
            source=source_text(f"serena:{display(file.path)}"),
            created_at=modified,
            updated_at=modified,
        )
        batch.candidates.append(Candidate(memory, display(file.path), _original(file)))
    return batch


def _files(roots: list[Root]) -> list[_File]:
    """The `.md` files below each root in a fixed order; a file reachable from two roots counts once."""
    seen: set[Path] = set()
    found: list[_File] = []
    for root in roots:
        home = root.is_home
        for folder, dirs, names in os.walk(root.path):  # like Serena, not into symbolic links to folders
            dirs.sort()
            for name in sorted(names):
                path = Path(folder, name)
                if not name.endswith(SUFFIX) or path in seen:
                    continue
                seen.add(path)
                parts = path.relative_to(root.path).parts
                legacy = home and not (len(parts) > 1 and parts[0] == GLOBAL_FOLDER)
                if home and not legacy:
                    parts = parts[1:]
                found.append(_File(root, path, (*parts[:-1], parts[-1][: -len(SUFFIX)]), legacy))
    return found


def _load(path: Path) -> tuple[str, datetime]:
    """The file's text and modification time (the best record Serena keeps of when it was written); raises
    `InvalidInput` saying why the file cannot be a memory."""
    try:
        info = path.stat()
        if info.st_size > MAX_CONTENT_BYTES:
            raise InvalidInput(f"{info.st_size} bytes, over the 1 MiB a memory may hold; split the file")
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot be read: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"{exc.reason} at byte {exc.start}"
        raise InvalidInput(f"not UTF-8 ({reason}); convert it (e.g. iconv) and import it again") from exc
    if not text.strip():
        raise InvalidInput("empty")
    modified = datetime.fromtimestamp(info.st_mtime, UTC)
    return validate_content(text), modified.replace(microsecond=modified.microsecond // 1000 * 1000)


def _original(file: _File) -> str:
    return printable("/".join(file.parts))
