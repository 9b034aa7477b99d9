"""The official knowledge-graph server (`@modelcontextprotocol/server-memory`) keeps one JSON object per line
in `memory.jsonl`: entities `{"type": "entity", "name", "entityType", "observations": [...]}` and relations
`{"type": "relation", "from", "to", "relationType"}`.

Each entity becomes one memory: a title, its type, its observations as a bullet list, and every relation
that touches it (outgoing and incoming), so recalling either end finds the link. The entity type is a tag.
Lines that are not valid records are reported and skipped; the rest still import.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from memory_mcp.core import MAX_TAG_CHARS, Memory, Scope, validate_content
from memory_mcp.errors import InvalidInput
from memory_mcp.migrate.names import Wanted, display, normalise_name, printable, source_text, unique_names
from memory_mcp.migrate.plan import Batch, Candidate, Skipped

TAG: Final = "server-memory"
_NOT_IN_TAG: Final = re.compile(r"[\s,\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass
class _Entity:
    name: str
    kind: str
    observations: list[str] = field(default_factory=list)
    relations: list[str] = field(default_factory=list)


_Relation = tuple[int, str, str, str]
"""(line number, from, relation type, to)"""
_Problem = tuple[int, str]
"""(line number, what is wrong with it)"""


def read(file: Path, scope: Scope) -> Batch:
    """One candidate per entity in `file`; bad lines and relations between unknown entities are reported."""
    file = file.expanduser().resolve()
    try:
        lines = file.read_bytes().split(b"\n")
    except OSError as exc:
        raise InvalidInput(f"cannot read {display(file)}: {exc.strerror}") from exc
    entities, relations, problems = _parse(lines)
    names = _names(entities, scope)
    problems += _relate(entities, relations, names)
    batch = Batch("server-memory", sources=[f"{display(file)} -> {scope}"])
    batch.skipped += [Skipped(f"line {number}", reason) for number, reason in sorted(problems)]
    for entity in entities.values():
        origin = f"{display(file)}#{printable(entity.name)}"
        try:
            content = validate_content(_content(entity))
        except InvalidInput as exc:
            batch.skipped.append(Skipped(origin, str(exc)))
            continue
        tags = (TAG, _tag(entity.kind)) if _tag(entity.kind) else (TAG,)
        memory = Memory(
            name=names[entity.name],
            scope=scope,
            content=content,
            tags=tags,
            source=source_text(f"server-memory:{origin}"),
        )
        batch.candidates.append(Candidate(memory, origin, printable(entity.name)))
    return batch


def _parse(lines: list[bytes]) -> tuple[dict[str, _Entity], list[_Relation], list[_Problem]]:
    """Entities by name, relations, and the problem of each line that holds neither."""
    entities: dict[str, _Entity] = {}
    relations: list[_Relation] = []
    problems: list[_Problem] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = _record(line)
        except InvalidInput as exc:
            problems.append((number, str(exc)))
            continue
        if record["type"] == "entity":
            entity = entities.setdefault(record["name"], _Entity(record["name"], record["entityType"]))
            entity.observations += record["observations"]  # listed twice: one memory, every observation
        else:
            relations.append((number, record["from"], record["relationType"], record["to"]))
    return entities, relations, problems


def _relate(
    entities: dict[str, _Entity], relations: list[_Relation], names: dict[str, str]
) -> list[_Problem]:
    """Write each relation into both of its ends; the (line, problem) of relations with no known end."""
    problems = []
    for number, source, verb, target in relations:
        if source not in entities and target not in entities:
            problems.append((number, "relation between two unknown entities"))
            continue
        sentence = f"- {_end(source, names)} {printable(verb)} {_end(target, names)}"
        for end in dict.fromkeys((source, target)):
            if end in entities:
                entities[end].relations.append(sentence)
    return problems


def _record(line: bytes) -> dict[str, Any]:
    """A checked entity or relation record."""
    try:
        record = json.loads(line)
    except ValueError as exc:  # also undecodable bytes
        raise InvalidInput(f"not a JSON object: {exc}") from exc
    if not isinstance(record, dict) or record.get("type") not in ("entity", "relation"):
        raise InvalidInput("not an entity or relation record")
    if record["type"] == "entity":
        observations = record.get("observations", [])
        if not _text(record.get("name")) or not isinstance(observations, list):
            raise InvalidInput("entity without a name or with observations that are not a list")
        kind = record.get("entityType")
        kind = kind if isinstance(kind, str) else ""
        return {**record, "entityType": kind, "observations": [str(o) for o in observations]}
    if not all(_text(record.get(key)) for key in ("from", "to", "relationType")):
        raise InvalidInput("relation without 'from', 'to' and 'relationType' strings")
    return record


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _names(entities: dict[str, _Entity], scope: Scope) -> dict[str, str]:
    """Memory names for entities; an entity name is one part even when it holds '/'."""
    wanted = [Wanted(scope, normalise_name([name.replace("/", "-")]), name, name) for name in entities]
    return dict(zip(entities, unique_names(wanted), strict=True))


def _end(entity: str, names: dict[str, str]) -> str:
    """An entity in a relation, with its memory name when that differs, so an agent can `read` it."""
    name = names.get(entity)
    link = f" (memory `{name}`)" if name is not None and name != entity else ""
    return printable(entity) + link


def _content(entity: _Entity) -> str:
    lines = [f"# {printable(entity.name)}", ""]
    if entity.kind:
        lines += [f"Type: {printable(entity.kind)}", ""]
    if entity.observations:
        lines += ["## Observations", "", *(_bullet(o) for o in entity.observations), ""]
    if entity.relations:
        lines += ["## Relations", "", *entity.relations, ""]
    return "\n".join(lines)


def _bullet(text: str) -> str:
    """A list item; further lines of a multi-line observation are indented to stay inside it."""
    return "- " + text.replace("\n", "\n  ")


def _tag(kind: str) -> str:
    return _NOT_IN_TAG.sub(" ", kind).strip()[:MAX_TAG_CHARS].strip()
