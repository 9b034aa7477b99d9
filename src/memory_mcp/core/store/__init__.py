"""The store: the git repository memories live in, and the only code that touches pygit2.

Every commit of every kind (a write, a sync's merge, the shared root) and every fetch and push is made in
this package; the rest of the program sees plain records and the `Store` port. Its parts, each private:

- `git_store`: the `Store` port and its adapter `GitStore`, the facade the parts below are mixed into;
- `git_repository`: the plumbing (trees, blobs, commit objects, the diff between two commits);
- `git_history`: walking commits (first parents, one commit's author and message, revisions);
- `work_tree`: the checked-out files and git's index, kept in step with the branch after each commit;
- `git_merge`: a sync's merge commit, from the tree `core.merge` decided;
- `git_packing`: the loose objects commits leave, packed;
- `transport`: the remote (fetch, push, credentials, host keys, proxies);
- `git_records`: the plain records that leave the store.

Import from here only; the architecture test holds everything outside this package to that.
"""

from memory_mcp.core.layout import is_memory_path, is_safe_memory_path, memory_path
from memory_mcp.core.store.git_records import Author, Change, Commit, Revision
from memory_mcp.core.store.git_store import STATE_DIR, GitStore, Store
from memory_mcp.core.store.transport import REMOTE, Credentials, Remote, proxy_for, safe_url, scrub

__all__ = [
    "REMOTE",
    "STATE_DIR",
    "Author",
    "Change",
    "Commit",
    "Credentials",
    "GitStore",
    "Remote",
    "Revision",
    "Store",
    "is_memory_path",
    "is_safe_memory_path",
    "memory_path",
    "proxy_for",
    "safe_url",
    "scrub",
]
