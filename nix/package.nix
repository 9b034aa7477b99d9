# The `memory-mcp` program for users: the locked virtualenv's entry point behind a small compiled wrapper
# (no shell needed) that defaults MEMORY_MCP_MODEL to the pinned model in the store. Any MEMORY_MCP_MODEL or
# --model the user gives still wins. The server only reads the model; it never writes beside it.
{
  lib,
  stdenvNoCC,
  makeBinaryWrapper,
  venv,
  model,
  version,
}:
stdenvNoCC.mkDerivation {
  pname = "memory-mcp";
  inherit version;

  dontUnpack = true;
  nativeBuildInputs = [ makeBinaryWrapper ];

  installPhase = ''
    runHook preInstall
    makeWrapper ${venv}/bin/memory-mcp $out/bin/memory-mcp \
      --set-default MEMORY_MCP_MODEL ${model}
    runHook postInstall
  '';

  passthru = {
    inherit venv model;
  };

  meta = {
    description = "Durable, searchable long-term memory for AI agents over the Model Context Protocol";
    homepage = "https://github.com/butterflyskies/memory-mcp";
    license = lib.licenses.mit;
    mainProgram = "memory-mcp";
    platforms = import ./systems.nix;
  };
}
