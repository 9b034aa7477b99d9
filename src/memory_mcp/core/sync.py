"""Two-way sync of the memory branch with a git remote (GitHub, or any git server): fetch, integrate, push.

Why it is shaped this way:
- Nothing committed is ever dropped. Integration fast-forwards or builds a merge commit whose parents are
  both tips, pushes are never forced, and a rejected push (the remote moved meanwhile) is fetched, merged
  and pushed again, a bounded number of times.
- Merges match memories by id, never lines, so no conflict marker can reach a memory (`core.merge` has the
  rules). The version not kept stays reachable through the merge commit's parents, and every such case is
  reported.
- Histories with no common commit are refused unless the caller asks (`allow_unrelated`): that means the
  remote was rewritten or the URL names another repository, and a union would spread memories into the
  wrong place. Local commits stay either way. A local branch with no commit simply takes the remote's (a
  clone), and replicas cloned from an empty remote all start from the same fixed first commit, so their
  histories are related from the start.
- Network trouble never raises: `sync()` returns a report with errors (`core.store.transport` scrubs secrets
  from them), and `core.backoff` spaces the retries.
- The branch moves under the repository's write lock, so no local write (from any process) races it; the
  slow network parts run outside it, under a separate sync lock.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from memory_mcp.core import markdown
from memory_mcp.core.markdown import MAX_FILE_BYTES
from memory_mcp.core.merge import BLOB_MODE, File, SyncConflict, merge
from memory_mcp.core.model import Memory
from memory_mcp.core.store import REMOTE, Author, Credentials, GitStore, Remote, is_memory_path, safe_url, scrub
from memory_mcp.errors import Conflict, InvalidInput, MemoryMcpError, Unavailable

log = logging.getLogger(__name__)

PUSH_ATTEMPTS: Final = 5
"""A push the remote rejects (it moved meanwhile) is fetched, merged and tried again: this many tries."""
RETRY_PAUSE: Final = 0.2
"""Seconds; a random pause of up to this times the attempt number keeps racing replicas out of lockstep."""
ROOT_MESSAGE: Final = "memory-mcp: start of history\n"
ROOT_TIME: Final = 1_704_067_200
"""2024-01-01T00:00:00Z: the fixed time of the first commit every replica of an empty remote shares."""
_EXECUTABLE: Final = 0o100755


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
    refused: tuple[str, ...] = ()
    """Pulled files kept out of the work tree (unsafe paths, oversized files): they stay in git only."""

    @property
    def ok(self) -> bool:
        return not self.errors


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
            store.start_history(ROOT_MESSAGE, ROOT_TIME)
        log.info("cloned %s (%d commits)", safe_url(remote_url), report.pulled)
    return store, syncer


class Syncer:
    """Syncs one `GitStore`'s branch with the same-named branch of one remote. Thread-safe; blocks."""

    def __init__(self, store: GitStore, remote_url: str, credentials: Credentials = Credentials()) -> None:
        self.store = store
        with store.sync_lock():
            self._remote = Remote(store, remote_url, credentials)

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
                run.fail("push", Unavailable(reason))
            return self._report(run)

    # ---------------------------------------------------------------- pull

    def _pull(self, run: _Run, allow_unrelated: bool) -> bool:
        """Fetch, then integrate under the write lock; False (with an error recorded) when that failed."""
        try:
            self._remote.fetch(f"+{self.store.ref}:{self._tracking}")
        except Unavailable as exc:
            run.fail("fetch", exc)
            return False
        remote = self._remote_head()
        if remote is None:
            return True  # the remote has no such branch yet: the push creates it
        try:
            with self.store.write_lock():
                self._integrate(remote, run, allow_unrelated)
        except (OSError, MemoryMcpError) as exc:
            run.fail("merge", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - a git library error must not end the sync loop
            log.exception("merging %s failed", self._tracking)
            run.fail("merge", exc)
            return False
        return True

    def _integrate(self, remote: str, run: _Run, allow_unrelated: bool) -> None:
        store = self.store
        local = store.head()
        if local is not None and store.contains(local, remote):
            return
        label = f"{REMOTE}/{store.branch}"
        if local is None or store.contains(remote, local):
            run.refused += store.move_branch(local, remote, f"sync: fast-forward to {label}")
        else:
            base = store.merge_base(local, remote)
            if base is None and not allow_unrelated:
                raise Conflict(
                    f"the local branch and {label} share no history (was the remote rewritten, or is it "
                    "another repository?); refusing to merge them. Local commits are kept; fix the remote, "
                    "or sync with allow_unrelated to merge both histories"
                )
            merged = merge(*store.merge_inputs(base, local, remote), self._load)
            message = _merge_message(label, merged.conflicts)
            commit = store.merge_commit(local, remote, merged.changes, message)
            run.refused += store.move_branch(local, commit, f"sync: merge {label}")
            run.conflicts.extend(merged.conflicts)
            for conflict in merged.conflicts:
                log.warning("sync conflict on %s: %s", conflict.path, conflict.resolution)
        run.pulled += store.count(remote, local)

    def _load(self, path: str, file: File) -> Memory | None:
        """The memory a pulled file holds, for the merge; None when it is not one or does not parse."""
        if file.mode not in (BLOB_MODE, _EXECUTABLE) or not is_memory_path(path):
            return None
        if self.store.blob_size(file.blob) > MAX_FILE_BYTES:
            return None  # never read whole: no memory is this large
        try:
            return markdown.parse(self.store.blob(file.blob))
        except InvalidInput:
            return None

    # ---------------------------------------------------------------- push

    def _push(self, run: _Run, *, retry: bool) -> bool:
        """Push the branch: True when done (pushed, nothing to push, error recorded), False to pull again."""
        local = self.store.head()
        ahead = self.store.count(local, self._remote_head())
        if ahead == 0:
            return True
        try:
            rejection = self._remote.push(self.store.ref)
        except Unavailable as exc:
            run.fail("push", exc)
            return True
        if rejection is not None:
            run.rejection = rejection
            if retry:
                return False
            run.fail("push", Unavailable(rejection))
            return True
        run.pushed += ahead
        return True

    # ---------------------------------------------------------------- report

    def _remote_head(self) -> str | None:
        return self.store.reference(self._tracking)

    def _report(self, run: _Run) -> SyncReport:
        local, remote = self.store.head(), self._remote_head()
        return SyncReport(
            pulled=run.pulled,
            pushed=run.pushed,
            conflicts=tuple(run.conflicts),
            errors=tuple(run.errors),
            local_head=local,
            remote_head=remote,
            ahead=self.store.count(local, remote),
            behind=self.store.count(remote, local),
            refused=tuple(run.refused),
        )


@dataclass
class _Run:
    """What one `sync()` call did so far."""

    pulled: int = 0
    pushed: int = 0
    conflicts: list[SyncConflict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    rejection: str = ""
    """Why the remote last refused a push (it moved meanwhile, or a hook declined)."""

    def fail(self, step: str, exc: BaseException) -> None:
        message = f"{step} failed: {scrub(str(exc) or type(exc).__name__, [])}"
        log.warning("sync %s", message)
        self.errors.append(message)


def _merge_message(label: str, conflicts: list[SyncConflict]) -> str:
    lines = [f"sync: merge {label}"]
    if conflicts:
        lines += ["", "Both sides changed these files; the version not kept is in the other parent:"]
        lines += [f"- {c.path}: {c.resolution}" for c in conflicts]
    return "\n".join(lines) + "\n"
