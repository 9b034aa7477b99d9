"""The bench's generated corpus: memories of varied length, scope and tags in words drawn from a 6,000-word
Zipf vocabulary, and natural-language queries over it. The queries have no answers: nothing marks which
memory a query is about, so this corpus measures speed, not quality.
"""

from __future__ import annotations

import random
from pathlib import Path

from memory_mcp.core import Memory, Scope

WORDS = (
    "database index latency cache deploy rollback kubernetes cluster node pod service ingress gateway token auth "
    "oauth session cookie rust python golang async thread lock mutex channel queue worker batch stream kafka "
    "postgres sqlite redis vector embedding model prompt agent memory context window budget invoice customer "
    "meeting standup retro sprint roadmap design review incident outage pager alert metric dashboard grafana "
    "backup restore snapshot replica shard partition migration schema column table query plan optimizer"
).split()
TOPICS = ["infra", "backend", "frontend", "ml", "ops", "billing", "security", "data"]


def _vocabulary(size: int = 6000, seed: int = 3) -> tuple[list[str], list[float]]:
    """Real technical words plus pronounceable made-up ones, drawn with Zipf weights like natural text."""
    rng = random.Random(seed)
    syllables = [
        "ka",
        "lo",
        "mi",
        "ter",
        "san",
        "dro",
        "vel",
        "qui",
        "par",
        "nex",
        "tor",
        "bel",
        "fin",
        "gra",
    ]
    made_up = {"".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))) for _ in range(size)}
    words = WORDS + sorted(made_up - set(WORDS))
    rng.shuffle(words)
    return words, [1.0 / (rank + 1) for rank in range(len(words))]


VOCABULARY, ZIPF = _vocabulary()


def corpus(size: int, seed: int = 7, directory: Path | None = None) -> list[Memory]:
    """Memories of varied length, scope and tags; or the text files of `directory`, cycled to `size`."""
    rng = random.Random(seed)
    texts = [p.read_text(errors="replace") for p in sorted(directory.rglob("*.txt"))] if directory else []
    memories = []
    for i in range(size):
        topic = rng.choice(TOPICS)
        if texts:
            content = texts[i % len(texts)][: 64 * 1024] or "empty"
        else:
            sentences = rng.choices([1, 2, 3, 5, 8, 30], weights=[25, 25, 20, 15, 12, 3])[0]
            content = " ".join(_sentence(rng, topic) for _ in range(sentences))
        scope = rng.choice(["", f"org/{topic}", f"org/{topic}/svc{rng.randint(1, 5)}"])
        tags = tuple(sorted({topic, *rng.sample(WORDS, rng.randint(0, 3))}))
        memories.append(Memory(name=f"{topic}/note-{i}", scope=Scope(scope), content=content, tags=tags))
    return memories


def _sentence(rng: random.Random, topic: str) -> str:
    words = rng.choices(VOCABULARY, weights=ZIPF, k=rng.randint(6, 14))
    return f"The {topic} team noted that {' '.join(words)}."


def queries(count: int, seed: int = 11) -> list[str]:
    rng = random.Random(seed)
    return [
        f"what did the {rng.choice(TOPICS)} team say about {' '.join(rng.choices(VOCABULARY, weights=ZIPF, k=3))}"
        for _ in range(count)
    ]
