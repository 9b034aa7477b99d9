"""The domain's exceptions, mapped once at each edge (MCP tool errors, CLI exit codes, HTTP statuses).

MemoryMcpError
├── InvalidInput      the caller's arguments break a rule; nothing was written
├── NotFound          no memory matches the name/scope or id
├── AlreadyExists     remember/move onto a name that is taken (and replacing was not asked for)
├── Conflict          the memory changed since `expected_version`, or two memories would share a file
├── Forbidden         the caller's token may not do this (read-only, or another scope)
├── Busy              too much work queued; retry later
├── Cancelled         the caller cancelled or went away before the work was done
└── Unavailable       a part (model, repository) is not ready or not configured
"""


class MemoryMcpError(Exception):
    """Base of every error the service raises on purpose; its message is meant for the caller."""


class InvalidInput(MemoryMcpError):
    """The arguments break a validation rule."""


class NotFound(MemoryMcpError):
    """No memory matches. `findable`: listing or searching may find what the caller meant, which each edge
    words in its own terms (the `list` and `recall` tools, the CLI's commands)."""

    def __init__(self, message: str, *, findable: bool = False) -> None:
        super().__init__(message)
        self.findable = findable


class AlreadyExists(MemoryMcpError):
    """The target name is taken. `replaceable`: the call could overwrite it if asked to, which each edge words
    in its own terms (the `replace` argument of a tool, a command-line flag)."""

    def __init__(self, message: str, *, replaceable: bool = False) -> None:
        super().__init__(message)
        self.replaceable = replaceable


class Conflict(MemoryMcpError):
    """A concurrent change or a file-path collision."""


class Forbidden(MemoryMcpError):
    """The caller's credentials do not allow this."""


class Busy(MemoryMcpError):
    """A bounded queue is full."""


class Cancelled(MemoryMcpError):
    """The caller cancelled the request or disconnected; its remaining work was dropped."""


class Unavailable(MemoryMcpError):
    """A required part is not ready or not configured."""
