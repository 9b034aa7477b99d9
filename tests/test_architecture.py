"""The domain core never reaches for an edge: no MCP SDK, no HTTP stack, no CLI."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "src" / "memory_mcp" / "core"
FORBIDDEN = (
    "mcp",
    "mcp_types",
    "starlette",
    "uvicorn",
    "memory_mcp.server",
    "memory_mcp.cli",
    "memory_mcp.bootstrap",
)
OWNERS = {"pygit2": {"store.py", "transport.py"}, "llama_cpp": {"embedder.py"}, "hnswlib": {"vector_index.py"}}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_core_imports_no_edge() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) >= 8
    for module in modules:
        for name in imports(module):
            assert not any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN), (
                f"{module.name}: {name}"
            )


def test_each_native_library_has_one_owner() -> None:
    for library, owners in OWNERS.items():
        users = {
            m.name for m in CORE.parent.rglob("*.py") if any(n.split(".")[0] == library for n in imports(m))
        }
        assert users == owners, f"{library} is imported by {users}"
