"""Git credentials for syncing the memory repository with GitHub: `memory-mcp auth` and where tokens live.

A token is looked for in this order, first match wins (`resolve_github_token`, given the settings):

1. the environment variable `MEMORY_MCP_GITHUB_TOKEN` (CI, one-off runs);
2. the file store written by `memory-mcp auth login --store file`: `<config dir>/github-token`, where the config
   dir is `MEMORY_MCP_CONFIG_DIR` or the platformdirs user config dir (`~/.config/memory-mcp`);
3. a mounted secret file, `MEMORY_MCP_GITHUB_TOKEN_FILE` (default `/var/run/secrets/memory-mcp/github/token`:
   the Secret that `auth login --store k8s-secret` writes, mounted into the pod).

Tokens are `GitHubToken` objects whose repr and str show at most the last 4 characters; `reveal()` is the one
deliberate way to the value, so a token never lands in a log line, an error or a traceback by accident.
"""

from memory_mcp.auth.github_token import GitHubToken, ResolvedToken, resolve_github_token

__all__ = ["GitHubToken", "ResolvedToken", "resolve_github_token"]
