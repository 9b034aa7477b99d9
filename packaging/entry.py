"""PyInstaller entry point: the `memory-mcp` console script, frozen."""

import sys

from memory_mcp.cli import main

if __name__ == "__main__":
    sys.exit(main())
