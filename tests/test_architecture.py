"""The shape of the code: the domain core reaches for no edge, each heavy library has its owner, and the
edges use the core's declared surface (`memory_mcp.core`) rather than its insides."""

from __future__ import annotations

import ast
from pathlib import Path

import memory_mcp.core
import memory_mcp.core.store

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "memory_mcp"
CORE = PACKAGE / "core"
FORBIDDEN = (
    "mcp",
    "mcp_types",
    "starlette",
    "uvicorn",
    "memory_mcp.server",
    "memory_mcp.cli",
    "memory_mcp.bootstrap",
    "memory_mcp.supervisor",
    "memory_mcp.auth",
    "memory_mcp.migrate",
    "memory_mcp.views",
    "memory_mcp.config",
    "memory_mcp.metrics",
)
OWNERS = {
    # The store package makes every commit (merges included) and talks to remotes (fetch, push, proxies).
    "pygit2": {
        f"core/store/{m}.py"
        for m in (
            "git_store",
            "git_repository",
            "git_history",
            "git_merge",
            "git_packing",
            "released_diff",
            "work_tree",
            "transport",
        )
    },
    "llama_cpp": {"core/embedder.py"},
    "hnswlib": {"core/vector_index.py"},
    # The derived state's databases (catalog, keyword index, embedding cache) have one owner.
    "sqlite3": {"core/derived_store.py"},
    "kubernetes": {"auth/stores.py"},
    # The HTTP edge: the app that mounts everything, and the web UI's request handling.
    "starlette": {
        "server/http_app.py",
        *(f"server/ui/{m}.py" for m in ("__init__", "app", "guard", "limits", "pages", "actions")),
    },
    "jinja2": {"server/ui/app.py"},
    "markdown_it": {"server/ui/render.py"},
    "uvicorn": {"server/http_serve.py"},
}
STORE = "core/store/"
"""The package that owns pygit2: outside it, code imports `memory_mcp.core.store` and none of its parts."""
COMPOSITION = {"bootstrap.py", "supervisor.py"}
"""The modules that build and run the core's parts, so the only ones outside it that may name them."""


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def modules() -> dict[str, set[str]]:
    return {str(m.relative_to(PACKAGE)): imports(m) for m in PACKAGE.rglob("*.py")}


def test_core_imports_no_edge() -> None:
    core = sorted(CORE.rglob("*.py"))
    assert len(core) >= 8
    for module in core:
        for name in imports(module):
            assert not any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN), (
                f"{module.name}: {name}"
            )


def test_each_heavy_library_has_its_owner() -> None:
    found = modules()
    for library, owners in OWNERS.items():
        users = {path for path, names in found.items() if any(n.split(".")[0] == library for n in names)}
        assert users == owners, f"{library} is imported by {users}"


def store_names(path: Path) -> set[str]:
    """What a module takes from the store package: its parts by module path, or names imported from it."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("memory_mcp.core.store."))
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("memory_mcp.core.store."):
                found.add(node.module)
            elif node.module == "memory_mcp.core.store":
                found.update(alias.name for alias in node.names)
    return found


def test_only_the_store_touches_pygit2_and_its_parts_stay_inside() -> None:
    declared = set(memory_mcp.core.store.__all__)
    for path, names in modules().items():
        if path.startswith(STORE):
            continue
        assert not any(n.split(".")[0] == "pygit2" for n in names), f"{path} imports pygit2"
        taken = store_names(PACKAGE / path)
        assert taken <= declared, f"{path} reaches into the store's parts: {sorted(taken - declared)}"


def reads_environment(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            if node.attr in ("environ", "environb", "getenv", "getenvb"):
                return True
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            if any(a.name in ("environ", "environb", "getenv", "getenvb") for a in node.names):
                return True
    return False


def test_only_the_settings_read_the_environment() -> None:
    readers = {str(m.relative_to(PACKAGE)) for m in PACKAGE.rglob("*.py") if reads_environment(m)}
    assert readers == {"config.py"}, f"the environment is read by {sorted(readers)}"


def test_edges_use_the_declared_core_api() -> None:
    for path, names in modules().items():
        if path.startswith("core/") or path in COMPOSITION:
            continue
        inside = sorted(n for n in names if n.startswith("memory_mcp.core."))
        assert not inside, f"{path} reaches into {inside}; import from memory_mcp.core"
        taken = core_names(PACKAGE / path) - set(memory_mcp.core.__all__)
        assert not taken, f"{path} takes {sorted(taken)} from memory_mcp.core, which does not declare them"


def test_the_declared_api_is_what_it_says() -> None:
    exported = memory_mcp.core.__all__
    assert len(set(exported)) == len(exported)
    assert all(hasattr(memory_mcp.core, name) for name in exported)
    for name in ("MemoryService", "Saved", "Hit", "Page", "Locator", "MemoryMcpError", "NotFound"):
        assert name in exported


def test_every_use_case_states_its_contract() -> None:
    service = memory_mcp.core.MemoryService
    members = {name: value for part in reversed(service.__mro__) for name, value in vars(part).items()}
    public = [name for name, value in members.items() if callable(value) and not name.startswith("_")]
    assert {"remember", "recall", "read", "edit", "forget", "list", "move", "history"} <= set(public)
    for name in public:
        doc = getattr(service, name).__doc__ or ""
        assert len(doc.split()) >= 8, f"MemoryService.{name} needs a docstring stating its contract"


BENCH = PACKAGE.parents[1] / "bench"
BENCH_WINDOW = "inside.py"
"""The bench's one module that reads the server's insides (its vectors and rankings, its file format)."""
BENCH_ENTRIES = {
    "memory_mcp.core",
    "memory_mcp.core.hashing_embedder",  # the test embedder, injected through the composition root
    "memory_mcp.bootstrap",
    "memory_mcp.config",
    "memory_mcp.supervisor",
    "memory_mcp.server.http_app",
    "memory_mcp.server.mcp_app",
}


def test_the_bench_measures_through_the_declared_api() -> None:
    for path in BENCH.glob("*.py"):
        if path.name == BENCH_WINDOW:
            continue
        ours = {n for n in imports(path) if n.split(".")[0] == "memory_mcp"}
        assert ours <= BENCH_ENTRIES, f"bench/{path.name} reaches into {sorted(ours - BENCH_ENTRIES)}"
        taken = core_names(path)
        assert taken <= set(memory_mcp.core.__all__), f"bench/{path.name} takes {sorted(taken)} from the core"


def core_names(path: Path) -> set[str]:
    """What `from memory_mcp.core import ...` takes: a module of the core taken this way is its insides."""
    return {
        alias.name
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "memory_mcp.core"
        for alias in node.names
    }


LONGEST = 420
"""Lines a source file may have (~400); past it a file holds more than one concern."""


def test_no_source_file_holds_more_than_one_concern() -> None:
    for path in (*PACKAGE.rglob("*.py"), *BENCH.glob("*.py")):
        lines = len(path.read_text().splitlines())
        assert lines <= LONGEST, f"{path.name} has {lines} lines: split it by concern"
