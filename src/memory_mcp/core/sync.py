"""Two-way sync of the memory branch with a git remote (GitHub, or any git server): fetch, integrate, push.

Why it is shaped this way:
- Nothing committed is ever dropped. Integration fast-forwards or builds a merge commit whose parents are
  both tips, pushes are never forced, and a rejected push (the remote moved meanwhile) is fetched, merged
  and pushed again, a bounded number of times.
- Merges are per file, never per line, so no conflict marker can reach a memory. A file changed on one side
  takes that side. A memory changed on both sides keeps the version with the newer `updated_at` (a version
  that parses beats one that does not; otherwise, and on ties, the remote's); a change beats a delete. The
  version not kept stays reachable through the merge commit's parents, and every such case is reported.
- Histories with no common commit are refused unless the caller asks (`allow_unrelated`): that means the
  remote was rewritten or the URL names another repository, and a union would spread memories into the
  wrong place. Local commits stay either way. A local branch with no commit simply takes the remote's (a
  clone), and replicas cloned from an empty remote all start from the same fixed first commit, so their
  histories are related from the start.
- The token is asked for only when the remote demands credentials and is never written into the URL,
  `.git/config`, a log line or an error message (every message is scrubbed).
- Network trouble never raises: `sync()` returns a report with errors, and `Backoff` spaces the retries.
- The branch moves under the repository's write lock, so no local write (from any process) races it; the
  slow network parts run outside it, under a separate sync lock.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import pygit2
from pygit2.enums import CredentialType, FetchPrune, FileMode, Option

from memory_mcp.core import markdown
from memory_mcp.core.model import Memory
from memory_mcp.core.store import Author, GitStore, is_memory_path
from memory_mcp.errors import Conflict, InvalidInput, MemoryMcpError, Unavailable

log = logging.getLogger(__name__)

REMOTE: Final = "origin"
TOKEN_USER: Final = "x-access-token"
"""The user name GitHub expects beside a token used as an HTTPS password."""
PUSH_ATTEMPTS: Final = 5
"""A push the remote rejects (it moved meanwhile) is fetched, merged and tried again: this many tries."""
RETRY_PAUSE: Final = 0.2
"""Seconds; a random pause of up to this times the attempt number keeps racing replicas out of lockstep."""
KEPT_LOCAL: Final = "kept-local"
KEPT_REMOTE: Final = "kept-remote"
KEPT_CHANGE: Final = "kept-change-over-delete"
ROOT_MESSAGE: Final = "memory-mcp: start of history\n"
ROOT_TIME: Final = 1_704_067_200
"""2024-01-01T00:00:00Z: the fixed time of the first commit every replica of an empty remote shares."""
_OFFERED: Final = (CredentialType.USERPASS_PLAINTEXT, CredentialType.SSH_KEY, CredentialType.USERNAME)
"""What the credentials callback can answer, in order of preference."""
_REJECTED = re.compile(r"non-fastforwardable|not present locally")
"""libgit2's words for a push refused before sending because the remote's branch moved."""
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")

pygit2.option(Option.SET_SERVER_CONNECT_TIMEOUT, 15_000)
pygit2.option(Option.SET_SERVER_TIMEOUT, 60_000)
"""Milliseconds; a remote that stops answering fails the sync instead of hanging it (process-wide)."""


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: an HTTPS token read on demand, and/or an SSH key file (else the SSH agent)."""

    token_provider: Callable[[], str | None] | None = None
    ssh_key: Path | None = None
    """A private key with no passphrase (`<key>.pub` is used if present); put encrypted keys in the agent."""


@dataclass(frozen=True)
class SyncConflict:
    """A file both sides changed: which version the merge kept; the other stays in the merge's parents."""

    path: str
    scope: str | None
    name: str | None
    resolution: str
    """`kept-local`, `kept-remote` or `kept-change-over-delete`."""
    kept: str
    """`local` or `remote`: the side whose version the merged branch holds."""
    kept_version: str
    other_version: str | None
    """Blob id of the version not kept (None: that side deleted the file)."""


@dataclass(frozen=True)
class SyncReport:
    pulled: int = 0
    """Commits brought into the local branch from the remote."""
    pushed: int = 0
    """Local commits the remote received."""
    conflicts: tuple[SyncConflict, ...] = ()
    errors: tuple[str, ...] = ()
    local_head: str | None = None
    remote_head: str | None = None
    ahead: int = 0
    """Local commits the remote does not have yet (the push backlog)."""
    behind: int = 0
    """Remote commits not integrated yet."""

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class Backoff:
    """Delays between failed syncs: doubling from `initial` up to `maximum`, jittered so replicas spread out.

    Call `failed()` after a report with errors and wait the seconds it returns, `succeeded()` after a clean
    one.
    """

    initial: float = 2.0
    maximum: float = 300.0
    failures: int = 0

    def failed(self) -> float:
        self.failures += 1
        ceiling = min(self.maximum, self.initial * 2 ** min(self.failures - 1, 32))
        return random.uniform(ceiling / 2, ceiling)

    def succeeded(self) -> None:
        self.failures = 0


def safe_url(url: str) -> str:
    """The URL without any user information, for logs and messages."""
    return _USERINFO.sub("", url)


def clone_or_open(
    root: Path,
    *,
    remote_url: str,
    branch: str,
    author: Author,
    credentials: Credentials = Credentials(),
    on_commit: Callable[[float], None] | None = None,
) -> tuple[GitStore, Syncer]:
    """Open the repository at `root` with `origin` set to `remote_url`; clone when the branch has no commit.

    An empty data dir (or a repository whose branch has no commit, such as one left by an interrupted
    clone) takes the remote's branch, or the shared first commit when the remote is empty. If the remote
    cannot be reached then, this raises `Unavailable` rather than starting a history that could never merge
    with the remote's: retry later. An existing history is only opened; call `Syncer.sync()` before serving.
    """
    store = GitStore(root, branch=branch, author=author, on_commit=on_commit)
    syncer = Syncer(store, remote_url, credentials)
    if store.head() is None:
        report = syncer.sync(push=False)
        if report.errors:
            raise Unavailable(f"cannot clone {safe_url(remote_url)}: {'; '.join(report.errors)}")
        if report.remote_head is None:
            _start_history(store)
        log.info("cloned %s (%d commits)", safe_url(remote_url), report.pulled)
    return store, syncer


def _start_history(store: GitStore) -> None:
    """Commit the fixed, empty first commit: identical on every replica, so their histories are related."""
    repo = store.repository
    signature = pygit2.Signature("memory-mcp", "memory-mcp@localhost", ROOT_TIME, 0)
    root = repo.create_commit(None, signature, signature, ROOT_MESSAGE, repo.TreeBuilder().write(), [])
    with store.write_lock():
        if store.head() is None:
            store.move_branch(None, str(root), "sync: start the shared history")


class Syncer:
    """Syncs one `GitStore`'s branch with the same-named branch of one remote. Thread-safe; blocks."""

    def __init__(self, store: GitStore, remote_url: str, credentials: Credentials = Credentials()) -> None:
        parts = urlsplit(remote_url)
        if parts.password is not None:
            raise InvalidInput(
                f"the remote URL {safe_url(remote_url)} must not carry a password or token; "
                "supply the token separately"
            )
        self.store = store
        self._credentials = credentials
        with store.sync_lock():
            remotes = store.repository.remotes
            existing = next((r for r in remotes if r.name == REMOTE), None)
            if existing is None:
                remotes.create(REMOTE, remote_url)
            elif existing.url != remote_url:
                log.info("pointing remote %s at %s", REMOTE, safe_url(remote_url))
                remotes.set_url(REMOTE, remote_url)

    @property
    def _tracking(self) -> str:
        return f"refs/remotes/{REMOTE}/{self.store.branch}"

    def sync(self, *, pull: bool = True, push: bool = True, allow_unrelated: bool = False) -> SyncReport:
        """Fetch and integrate the remote's branch (`pull`), then push local commits (`push`).

        Never raises for network or remote trouble: those end up in the report's `errors`.
        `allow_unrelated` merges histories with no common commit as if both started empty (an operator's
        explicit choice, e.g. to adopt a remote into an existing local history).
        """
        run = _Run()
        with self.store.sync_lock():
            for attempt in range(PUSH_ATTEMPTS):
                if attempt:
                    time.sleep(random.uniform(0, RETRY_PAUSE * attempt))
                if pull and not self._pull(run, allow_unrelated):
                    break
                if not push or self._push(run, retry=pull):
                    break
            else:
                reason = f"rejected {PUSH_ATTEMPTS} times, last: {run.rejection}; sync again later"
                run.fail("push", Unavailable(reason), [])
            return self._report(run)

    # ---------------------------------------------------------------- pull

    def _pull(self, run: _Run, allow_unrelated: bool) -> bool:
        """Fetch, then integrate under the write lock; False (with an error recorded) when that failed."""
        callbacks = _Callbacks(self._credentials)
        try:
            self.store.repository.remotes[REMOTE].fetch(
                [f"+{self.store.ref}:{self._tracking}"], callbacks=callbacks, prune=FetchPrune.PRUNE
            )
        except Exception as exc:  # noqa: BLE001 - any network or credential failure becomes a report entry
            run.fail("fetch", exc, callbacks.secrets)
            return False
        remote = self._remote_head()
        if remote is None:
            return True  # the remote has no such branch yet: the push creates it
        try:
            with self.store.write_lock():
                self._integrate(remote, run, allow_unrelated)
        except (pygit2.GitError, OSError, MemoryMcpError) as exc:
            run.fail("merge", exc, callbacks.secrets)
            return False
        return True

    def _integrate(self, remote: str, run: _Run, allow_unrelated: bool) -> None:
        repo = self.store.repository
        local = self.store.head()
        if local == remote or (local is not None and repo.descendant_of(local, remote)):
            return
        label = f"{REMOTE}/{self.store.branch}"
        if local is None or repo.descendant_of(remote, local):
            self.store.move_branch(local, remote, f"sync: fast-forward to {label}")
        else:
            base = repo.merge_base(local, remote)
            if base is None and not allow_unrelated:
                raise Conflict(
                    f"the local branch and {label} share no history (was the remote rewritten, or is it "
                    "another repository?); refusing to merge them. Local commits are kept; fix the remote, "
                    "or sync with allow_unrelated to merge both histories"
                )
            merger = _Merger(repo)
            tree = merger.merge(
                None if base is None else repo[base].peel(pygit2.Tree),
                repo[local].peel(pygit2.Tree),
                repo[remote].peel(pygit2.Tree),
            )
            message = _merge_message(label, merger.conflicts)
            author = pygit2.Signature(self.store.author.name, self.store.author.email)
            commit = repo.create_commit(None, author, author, message, tree, [local, remote])
            self.store.move_branch(local, str(commit), f"sync: merge {label}")
            run.conflicts.extend(merger.conflicts)
            for conflict in merger.conflicts:
                log.warning("sync conflict on %s: %s", conflict.path, conflict.resolution)
        run.pulled += _count(repo, remote, local)

    # ---------------------------------------------------------------- push

    def _push(self, run: _Run, *, retry: bool) -> bool:
        """Push the branch: True when done (pushed, nothing to push, error recorded), False to pull again."""
        local = self.store.head()
        ahead = 0 if local is None else _count(self.store.repository, local, self._remote_head())
        if ahead == 0:
            return True
        callbacks = _Callbacks(self._credentials)
        try:
            ref = self.store.ref
            self.store.repository.remotes[REMOTE].push([f"{ref}:{ref}"], callbacks=callbacks)
        except Exception as exc:  # noqa: BLE001 - any network or credential failure becomes a report entry
            if not _REJECTED.search(str(exc)):
                run.fail("push", exc, callbacks.secrets)
                return True
            callbacks.rejected.append(str(exc))
        if callbacks.rejected:
            run.rejection = _scrub("; ".join(callbacks.rejected), callbacks.secrets)
            if retry:
                return False
            run.fail("push", Unavailable(run.rejection), [])
            return True
        run.pushed += ahead
        return True

    # ---------------------------------------------------------------- report

    def _remote_head(self) -> str | None:
        ref = self.store.repository.references.get(self._tracking)
        return None if ref is None else str(ref.resolve().target)

    def _report(self, run: _Run) -> SyncReport:
        repo = self.store.repository
        local, remote = self.store.head(), self._remote_head()
        return SyncReport(
            pulled=run.pulled,
            pushed=run.pushed,
            conflicts=tuple(run.conflicts),
            errors=tuple(run.errors),
            local_head=local,
            remote_head=remote,
            ahead=_count(repo, local, remote),
            behind=_count(repo, remote, local),
        )


@dataclass
class _Run:
    """What one `sync()` call did so far."""

    pulled: int = 0
    pushed: int = 0
    conflicts: list[SyncConflict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rejection: str = ""
    """Why the remote last refused a push (it moved meanwhile, or a hook declined)."""

    def fail(self, step: str, exc: BaseException, secrets: list[str]) -> None:
        message = f"{step} failed: {_scrub(str(exc) or type(exc).__name__, secrets)}"
        log.warning("sync %s", message)
        self.errors.append(message)


class _Callbacks(pygit2.RemoteCallbacks):
    """One remote operation's callbacks: credentials on demand, rejected ref updates, secrets to scrub."""

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials
        self._asked: set[CredentialType] = set()
        self.secrets: list[str] = []
        self.rejected: list[str] = []

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.UserPass | pygit2.Username | pygit2.Keypair:
        kind = next((k for k in _OFFERED if allowed_types & k), None)
        if kind is None:
            raise Unavailable(f"the remote asks for credentials memory-mcp cannot give ({allowed_types!r})")
        if kind in self._asked:  # libgit2 asks again only when the remote refused the previous answer
            what = "the SSH key" if kind is CredentialType.SSH_KEY else f"the token (user {TOKEN_USER})"
            raise Unavailable(f"the remote refused {what}: authentication failed")
        self._asked.add(kind)
        user = username_from_url or "git"
        if kind is CredentialType.USERPASS_PLAINTEXT:
            return pygit2.UserPass(TOKEN_USER, self._token(url))
        if kind is CredentialType.USERNAME:
            return pygit2.Username(user)
        key = self._credentials.ssh_key
        if key is None:
            return pygit2.KeypairFromAgent(user)
        public = key.with_name(key.name + ".pub")
        return pygit2.Keypair(user, str(public) if public.exists() else None, str(key), "")

    def _token(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" and not _is_loopback(parts.hostname):
            raise Unavailable("refusing to send the token over unencrypted HTTP; use an https:// remote URL")
        provider = self._credentials.token_provider
        try:
            token = provider() if provider is not None else None
        except Exception as exc:  # noqa: BLE001 - a token store's failure must not leak its details
            raise Unavailable(f"could not read the remote token ({type(exc).__name__})") from None
        if not token:
            raise Unavailable("the remote requires authentication but no token is configured")
        self.secrets.append(token)
        return token

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message is not None:
            self.rejected.append(f"the remote rejected {refname}: {message}")


_Entry = tuple[pygit2.Oid, int] | None
"""A tree entry as (object id, file mode); None = absent."""
_Tree = pygit2.Tree | None

_FILES: Final = (FileMode.BLOB, FileMode.BLOB_EXECUTABLE)


class _Merger:
    """A three-way merge of trees, file by file; resolves every conflict and records it."""

    def __init__(self, repo: pygit2.Repository) -> None:
        self.repo = repo
        self.conflicts: list[SyncConflict] = []

    def merge(self, base: _Tree, local: _Tree, remote: _Tree, prefix: str = "") -> pygit2.Oid:
        builder = self.repo.TreeBuilder()
        names = {entry.name for tree in (base, local, remote) if tree is not None for entry in tree}
        for name in sorted(names):
            kept = self._entry(f"{prefix}{name}", *(_entry(tree, name) for tree in (base, local, remote)))
            if kept is not None:
                builder.insert(name, *kept)
        return builder.write()

    def _entry(self, path: str, base: _Entry, local: _Entry, remote: _Entry) -> _Entry:
        """The merged entry at `path`: the side that changed, a merged folder, or a resolved conflict."""
        if local == remote or base == remote:
            return local
        if base == local:
            return remote
        if all(side is None or side[1] == FileMode.TREE for side in (local, remote)):
            sub = self.merge(*(self._tree(side) for side in (base, local, remote)), prefix=f"{path}/")
            return None if len(self.repo[sub].peel(pygit2.Tree)) == 0 else (sub, FileMode.TREE)
        if any(side is not None and side[1] == FileMode.TREE for side in (local, remote)):
            raise Conflict(f"cannot merge {path}: a file on one side and a folder on the other")
        return self._resolve(path, local, remote)

    def _tree(self, entry: _Entry) -> pygit2.Tree | None:
        is_tree = entry is not None and entry[1] == FileMode.TREE
        return self.repo[entry[0]].peel(pygit2.Tree) if is_tree else None  # type: ignore[index]

    def _resolve(self, path: str, local: _Entry, remote: _Entry) -> _Entry:
        """Both sides changed one file: a change beats a delete, then the newer memory, else the remote's."""
        if local is None or remote is None:
            side = "remote" if local is None else "local"
            resolution = KEPT_CHANGE
        else:
            mine, theirs = self._memory(path, local), self._memory(path, remote)
            newer = mine is not None and (theirs is None or mine.updated_at > theirs.updated_at)
            side, resolution = ("local", KEPT_LOCAL) if newer else ("remote", KEPT_REMOTE)
        kept, other = (local, remote) if side == "local" else (remote, local)
        memory = self._memory(path, kept) or self._memory(path, other)
        self.conflicts.append(
            SyncConflict(
                path=path,
                scope=None if memory is None else str(memory.scope),
                name=None if memory is None else memory.name,
                resolution=resolution,
                kept=side,
                kept_version=str(kept[0]),  # type: ignore[index]  # the sides differ, so one exists
                other_version=None if other is None else str(other[0]),
            )
        )
        return kept

    def _memory(self, path: str, entry: _Entry) -> Memory | None:
        if entry is None or entry[1] not in _FILES or not is_memory_path(path):
            return None
        try:
            return markdown.parse(self.repo[entry[0]].peel(pygit2.Blob).data)
        except InvalidInput:
            return None


def _entry(tree: pygit2.Tree | None, name: str) -> _Entry:
    if tree is None or name not in tree:
        return None
    item = tree[name]
    return (item.id, item.filemode)


def _merge_message(label: str, conflicts: list[SyncConflict]) -> str:
    lines = [f"sync: merge {label}"]
    if conflicts:
        lines += ["", "Both sides changed these files; the version not kept is in the other parent:"]
        lines += [f"- {c.path}: {c.resolution}" for c in conflicts]
    return "\n".join(lines) + "\n"


def _count(repo: pygit2.Repository, include: str | None, exclude: str | None) -> int:
    """Commits reachable from `include` but not from `exclude`."""
    if include is None:
        return 0
    if exclude is None:
        return sum(1 for _ in repo.walk(include))
    return repo.ahead_behind(include, exclude)[0]


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ip_address(host).is_loopback
    except ValueError:
        return False


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return _USERINFO.sub("", text)
