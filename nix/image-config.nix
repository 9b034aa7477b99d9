# The OCI image's run-time contract as plain data: image.nix builds it, and tests evaluate it without nixpkgs.
#
# The image runs as a numeric non-root user, needs no shell, keeps all state under /data (one volume) and
# finds the model, the CA bundle and the program through store paths baked into its configuration.
{
  entrypoint, # the memory-mcp program (a store path)
  modelPath, # the GGUF model (a store path, read-only)
  caBundle, # a CA bundle file (a store path)
  version,
  revision,
}:
let
  uid = 10001;
  gid = 10001;
  port = 8080;
in
{
  inherit uid gid port;
  name = "memory-mcp";
  # /etc/passwd and /etc/group lines, so that the numeric user has a name and a home.
  passwd = "memory-mcp:x:${toString uid}:${toString gid}:memory-mcp:/data:/nonexistent";
  group = "memory-mcp:x:${toString gid}:";
  config = {
    Entrypoint = [ entrypoint ];
    Cmd = [
      "serve"
      "--bind"
      "0.0.0.0:${toString port}"
    ];
    User = "${toString uid}:${toString gid}";
    WorkingDir = "/data";
    ExposedPorts = {
      "${toString port}/tcp" = { };
    };
    Volumes = {
      "/data" = { };
    };
    Env = [
      "MEMORY_MCP_MODEL=${modelPath}"
      "MEMORY_MCP_REPO_PATH=/data/repo"
      "MEMORY_MCP_CACHE_DIR=/data/cache"
      "SSL_CERT_FILE=${caBundle}"
      "HOME=/data"
      "TMPDIR=/tmp"
      "PYTHONUNBUFFERED=1"
    ];
    Labels = {
      "org.opencontainers.image.title" = "memory-mcp";
      "org.opencontainers.image.description" =
        "Durable, searchable long-term memory for AI agents over the Model Context Protocol";
      "org.opencontainers.image.source" = "https://github.com/butterflyskies/memory-mcp";
      "org.opencontainers.image.url" = "https://github.com/butterflyskies/memory-mcp";
      "org.opencontainers.image.licenses" = "MIT";
      "org.opencontainers.image.version" = version;
      "org.opencontainers.image.revision" = revision;
    };
  };
}
