"""Untrusted memory text made safe to show: markdown with raw HTML off, snippets with the query's words
marked, and line diffs between two versions. Everything returned as markup has been escaped here."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Final, Literal

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from memory_mcp.core import Scope

_WORD = re.compile(r"\w{3,}", re.UNICODE)
"""Words of three letters or more: marking every "on" and "we" of a query would only add noise."""
MAX_MARKED_TERMS: Final = 32
DIFF_CONTEXT: Final = 3


def _markdown() -> MarkdownIt:
    """CommonMark plus tables and strikethrough; raw HTML is shown as text, unsafe link schemes are dropped
    (markdown-it's `validateLink`), and images become plain links so no page loads anything by itself."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])

    def image(renderer, tokens, idx, options, env) -> str:  # noqa: ANN001 - markdown-it's rule signature
        token = tokens[idx]
        alt = escape(token.content or "image")
        src = escape(str(token.attrGet("src") or ""))
        return f'<a class="image-link" href="{src}" rel="nofollow noopener noreferrer">[image: {alt}]</a>'

    def link_open(renderer, tokens, idx, options, env) -> str:  # noqa: ANN001
        tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
        return renderer.renderToken(tokens, idx, options, env)

    md.add_render_rule("image", image)
    md.add_render_rule("link_open", link_open)
    return md


_MD: Final = _markdown()


def markdown(text: str) -> Markup:
    return Markup(_MD.render(text))  # noqa: S704 - markdown-it escapes all text; raw HTML is disabled


def query_words(query: str) -> list[str]:
    words = sorted({w.lower() for w in _WORD.findall(query)}, key=len, reverse=True)
    return words[:MAX_MARKED_TERMS]


def mark(text: str, words: list[str]) -> Markup:
    """`text` escaped, with every word that starts with one of `words` wrapped in <mark>."""
    if not words:
        return escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE)
    out, last = [], 0
    for found in pattern.finditer(text):
        out.append(escape(text[last : found.start()]))
        out.append(Markup("<mark>%s</mark>") % found.group(0))
        last = found.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@dataclass(frozen=True)
class DiffLine:
    kind: Literal["add", "del", "same", "hunk"]
    text: str


def diff(old: str, new: str) -> list[DiffLine]:
    """A unified line diff, as rows for a template (which escapes them)."""
    rows = []
    lines = difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=DIFF_CONTEXT)
    for line in list(lines)[2:]:  # skip the ---/+++ file header
        if line.startswith("@@"):
            rows.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            rows.append(DiffLine("add", line[1:]))
        elif line.startswith("-"):
            rows.append(DiffLine("del", line[1:]))
        else:
            rows.append(DiffLine("same", line[1:]))
    return rows


def versioned_text(tags: tuple[str, ...], content: str) -> str:
    """What a diff compares: the tags line, then the content."""
    return f"tags: {', '.join(tags)}\n\n{content}"


@dataclass
class ScopeNode:
    """One scope in the tree: its own memories and those of everything below it."""

    label: str
    scope: str
    own: int = 0
    total: int = 0
    children: dict[str, ScopeNode] = field(default_factory=dict)

    @property
    def sorted_children(self) -> list[ScopeNode]:
        return sorted(self.children.values(), key=lambda node: node.label)


def scope_tree(counts: dict[Scope, int]) -> tuple[int, list[ScopeNode]]:
    """Global's count, and the path scopes as a tree of `/`-separated parts with subtree totals."""
    root = ScopeNode("", "")
    global_count = 0
    for scope, count in counts.items():
        if scope.is_global:
            global_count = count
            continue
        node = root
        node.total += count
        path = []
        for part in scope.path.split("/"):
            path.append(part)
            node = node.children.setdefault(part, ScopeNode(part, "/".join(path)))
            node.total += count
        node.own += count
    return global_count, root.sorted_children
