"""memory-mcp: durable, searchable long-term memory for AI agents over MCP."""

__version__ = "0.1.0"
"""pyproject.toml's version (a test keeps the two equal): a constant, as reading the installed package's
metadata costs every start ~80 ms (importlib.metadata and a scan of sys.path)."""

__all__ = ["__version__"]
