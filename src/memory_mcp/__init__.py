"""memory-mcp: durable, searchable long-term memory for AI agents over MCP."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("memory-mcp")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
