"""Three replicas, one remote, random work under faults: a seeded, model-based test.

Each replica is its own process (`tests.sync.replica_worker`: the real service and syncer, the token from the
environment) syncing with one bare remote served over git's smart HTTP on loopback. The driver sends random
remember / replace / edit / move / forget / import commands and syncs at random moments, leaves commands
outstanding on several replicas at once (so syncs race), takes the remote down and slows it at the HTTP
server, and kills replicas with SIGKILL at random points (then starts them again on the same folder).

After quiescence and a final sync everywhere: one tree on every replica and the remote, unique ids, `git fsck`
clean, every memory found by recall on its own text, and no acknowledged write lost. The model: names are
never reused, so two ids never contend for one path; then every id created and never forgotten must exist,
and hold the newest write to it (newest `updated_at`: its content if that write changed the content, its path
if it was a move), unless a write killed in flight may have come later.

`MEMORY_MCP_REPLICA_SEED` replays a run (the seed is printed, and named in every failure);
`MEMORY_MCP_REPLICA_OPS` sets its length. The default is CI's small run; a soak (no per-test timeout):

    MEMORY_MCP_REPLICA_OPS=1500 .venv/bin/python -m pytest -s -o timeout=0 tests/sync/test_replicas_random.py
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.sync.conftest import assert_healthy, git
from tests.sync.git_http import TOKEN, GitHttpServer, serve

ROOT = Path(__file__).resolve().parents[2]
ANSWER_TIMEOUT = 180.0
WORDS = (
    "cache latency index replica shard commit branch merge quorum lease token proxy tunnel backoff "
    "snapshot journal vector keyword embedding recall scope tag import export rollout canary budget"
).split()
WEIGHTS = {"remember": 22, "replace": 8, "edit": 18, "move": 10, "forget": 7, "import": 7, "sync": 28}
WRITES = {"remember", "replace", "edit", "move", "import"}


@dataclass
class Write:
    kind: str
    id: str
    content: str
    path: str
    updated_at: str


@dataclass
class Model:
    """What the replicas acknowledged, and what may have happened in commands killed in flight."""

    writes: dict[str, list[Write]] = field(default_factory=dict)
    created: set[str] = field(default_factory=set)
    forgotten: set[str] = field(default_factory=set)
    maybe: dict[str, set[str]] = field(default_factory=dict)
    """id (or name, for a new memory) → contents a killed command may have written."""
    counts: Counter[str] = field(default_factory=Counter)

    def acknowledge(self, command: dict[str, Any], answer: dict[str, Any]) -> None:
        self.counts["answers"] += 1
        if not answer["ok"]:
            self.counts["refused"] += 1
            return
        for item in answer.get("writes", ()):
            kind = "move" if command["op"] == "move" else "content"
            write = Write(kind, item["id"], item["content"], item["path"], item["updated_at"])
            if item["id"] not in self.writes:
                self.created.add(item["id"])
            self.writes.setdefault(item["id"], []).append(write)
            self.counts["acknowledged writes"] += 1
        if "forgot" in answer:
            self.forgotten.add(answer["forgot"])
            self.counts["acknowledged forgets"] += 1
        if "report" in answer:
            report = answer["report"]
            self.counts["syncs"] += 1
            self.counts["syncs with errors"] += bool(report["errors"])
            self.counts["conflicts reported"] += len(report["conflicts"])

    def in_flight(self, command: dict[str, Any]) -> None:
        """A command whose replica was killed before answering: it may or may not have happened."""
        self.counts["killed in flight"] += 1
        op = command["op"]
        if op == "forget":
            self.maybe.setdefault(command["id"], set()).add("<forget>")
        items = command.get("items") or ([command] if op in WRITES else [])
        for item in items:
            key = item.get("id") or item.get("name")
            self.maybe.setdefault(key, set()).add(item.get("content", "<move>"))


class Worker:
    """One replica process; at most one command outstanding."""

    def __init__(self, index: int, env: dict[str, str], log: Path) -> None:
        self.index = index
        self.env = env
        self.log = log
        self.ids: list[str] = []
        self.pending: dict[str, Any] | None = None
        self.process: subprocess.Popen[str] | None = None
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()

    def start(self) -> None:
        self.answers = queue.Queue()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.sync.replica_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log.open("a"),
            text=True,
            env=self.env,
            cwd=ROOT,
        )
        threading.Thread(target=self._read, args=(self.process, self.answers), daemon=True).start()
        ready = self.answers.get(timeout=ANSWER_TIMEOUT)
        assert ready == {"ready": True}, f"replica {self.index} did not start: {self.log.read_text()[-2000:]}"

    @staticmethod
    def _read(process: subprocess.Popen[str], answers: queue.Queue[dict[str, Any]]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            answers.put(json.loads(line))

    def send(self, command: dict[str, Any]) -> None:
        assert self.process is not None and self.process.stdin is not None and self.pending is None
        self.pending = command
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def collect(self, model: Model, *, wait: bool = True) -> dict[str, Any] | None:
        """The outstanding command's answer (recorded in the model), None when there is none (yet)."""
        if self.pending is None:
            return None
        try:
            answer = self.answers.get(timeout=ANSWER_TIMEOUT if wait else 0.0)
        except queue.Empty:
            if wait:
                raise AssertionError(f"replica {self.index} did not answer {self.pending}") from None
            return None
        model.acknowledge(self.pending, answer)
        self.pending = None
        self.ids = answer["ids"]
        return answer

    def kill(self, model: Model) -> None:
        """SIGKILL, whatever it is doing; an unanswered command may or may not have happened."""
        assert self.process is not None
        self.collect(model, wait=False)
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        if self.pending is not None:
            model.in_flight(self.pending)
            self.pending = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(60)


def command(rng: random.Random, worker: Worker, serial: int) -> dict[str, Any]:
    op = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    text = f"note {serial} from replica {worker.index}: " + " ".join(rng.choices(WORDS, k=8))
    if op in ("replace", "edit", "move", "forget") and not worker.ids:
        op = "remember"
    target = rng.choice(worker.ids) if worker.ids else None
    if op == "remember":
        return {"op": op, "name": f"r{worker.index}-n{serial}", "content": text}
    if op in ("replace", "edit"):
        return {"op": op, "id": target, "content": text}
    if op == "move":
        return {"op": op, "id": target, "name": f"r{worker.index}-m{serial}"}
    if op == "forget":
        return {"op": op, "id": target}
    if op == "import":
        items: list[dict[str, str]] = [{"name": f"r{worker.index}-i{serial}", "content": text}]
        if worker.ids:
            items.append({"id": rng.choice(worker.ids), "content": f"import of {text}"})
        return {"op": op, "items": items}
    return {"op": "sync"}


def test_three_replicas_converge_and_lose_nothing_under_faults(
    tmp_path: Path, remote: Path, model_path: Path
) -> None:
    seed = int(os.environ.get("MEMORY_MCP_REPLICA_SEED") or random.SystemRandom().randrange(2**32))
    operations = int(os.environ.get("MEMORY_MCP_REPLICA_OPS") or 80)
    print(f"replica test seed {seed} (replay: MEMORY_MCP_REPLICA_SEED={seed}), {operations} operations")
    try:
        figures = _run(random.Random(seed), operations, tmp_path, remote, model_path)
    except AssertionError as exc:
        raise AssertionError(f"[seed {seed}] {exc}") from exc
    print("replica test figures:", json.dumps(figures, sort_keys=True))


def _run(rng: random.Random, operations: int, tmp_path: Path, remote: Path, model: Path) -> dict[str, int]:
    model_state = Model()
    with serve(remote) as server:
        workers = [_worker(i, tmp_path, server, model) for i in range(3)]
        try:
            for worker in workers:
                worker.start()
            for serial in range(operations):
                _fault(rng, server, model_state)
                worker = rng.choice(workers)
                worker.collect(model_state)
                worker.send(command(rng, worker, serial))
                if rng.random() < 0.06:
                    time.sleep(rng.uniform(0.0, 0.3))
                    worker.kill(model_state)
                    model_state.counts["kills"] += 1
                    worker.start()
                elif rng.random() < 0.6:
                    worker.collect(model_state)
            server.down, server.delay = False, 0.0
            final = _quiesce(workers, model_state)
        finally:
            for worker in workers:
                worker.stop()
        model_state.counts["requests failed by outages"] = server.faults
    _check(final, model_state, remote, [tmp_path / f"replica-{i}" for i in range(3)])
    return {**model_state.counts, "operations": operations, "memories": len(final[0]["memories"]), "lost": 0}


def _worker(index: int, tmp_path: Path, server: GitHttpServer, model: Path) -> Worker:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MEMORY_MCP_", "GIT_"))},
        "MEMORY_MCP_REPO_PATH": str(tmp_path / f"replica-{index}"),
        "MEMORY_MCP_CACHE_DIR": str(tmp_path / f"cache-{index}"),
        "MEMORY_MCP_MODEL": str(model),
        "MEMORY_MCP_THREADS": "1",
        "MEMORY_MCP_REMOTE_URL": server.url,
        "MEMORY_MCP_GITHUB_TOKEN": TOKEN,
        "MEMORY_MCP_AUTHOR_NAME": f"replica-{index}",
        "HOME": str(tmp_path / "home"),
    }
    return Worker(index, env, tmp_path / f"replica-{index}.log")


def _fault(rng: random.Random, server: GitHttpServer, model: Model) -> None:
    if rng.random() < 0.05:
        server.down = not server.down
        model.counts["outages"] += server.down
    if rng.random() < 0.05:
        server.delay = rng.choice((0.0, 0.0, 0.05, 0.3))
        model.counts["slow periods"] += server.delay > 0


def _quiesce(workers: list[Worker], model: Model) -> list[dict[str, Any]]:
    """Sync every replica until all hold the remote's head, then ask each for its state."""
    for worker in workers:
        worker.collect(model)
    for _ in range(6):
        heads = set()
        for worker in workers:
            worker.send({"op": "sync"})
            answer = worker.collect(model)
            assert answer is not None and answer["ok"] and answer["report"]["ok"], answer
            heads.add(answer["report"]["local_head"])
        if len(heads) == 1:
            break
    states = []
    for worker in workers:
        worker.send({"op": "check"})
        state = worker.collect(model)
        assert state is not None and state["ok"], state
        states.append(state)
    return states


def _check(states: list[dict[str, Any]], model: Model, remote: Path, roots: list[Path]) -> None:
    heads = {state["head"] for state in states}
    assert heads == {git(remote, "rev-parse", "main").strip()}, f"replicas disagree: {heads}"
    memories = states[0]["memories"]
    assert all(state["memories"] == memories for state in states), "same tree, same index everywhere"
    ids = [m["id"] for m in memories]
    assert len(ids) == len(set(ids)), f"duplicate ids: {[i for i, n in Counter(ids).items() if n > 1]}"
    for index, state in enumerate(states):
        assert state["unfound"] == [], f"replica {index}: recall misses {state['unfound']}"
    for root in [*roots, remote]:
        assert_healthy(root)
    final = {m["id"]: m for m in memories}
    lost = [
        i
        for i in model.created
        if i not in final and i not in model.forgotten and "<forget>" not in model.maybe.get(i, ())
    ]
    assert lost == [], f"acknowledged memories lost: {lost}"
    for memory_id, memory in final.items():
        written = {w.content for w in model.writes.get(memory_id, ())}
        possible = model.maybe.get(memory_id, set()) | model.maybe.get(memory["name"], set())
        assert memory["content"] in written | possible, f"{memory_id} holds content nobody wrote"
        if memory_id in model.forgotten or memory_id in model.maybe or memory_id not in model.writes:
            continue
        newest = max(w.updated_at for w in model.writes[memory_id])
        last = [w for w in model.writes[memory_id] if w.updated_at == newest]
        assert memory["updated_at"] == newest, f"{memory_id}: not its newest write ({memory} vs {last})"
        kept = [w for w in last if memory["content" if w.kind == "content" else "path"] == _value(w)]
        assert kept, f"{memory_id}: the newest write was superseded: {memory} vs {last}"


def _value(write: Write) -> str:
    """What a write set: the content, or (a move) the path."""
    return write.content if write.kind == "content" else write.path
