"""Moving memories in and out: Serena's files, the reference server's repositories, the official
knowledge-graph server's `memory.jsonl`, and a lossless JSONL export, plus the parity check run before an
agent fleet switches over. Everything here composes the service's public methods; nothing writes files of
the repository directly."""
