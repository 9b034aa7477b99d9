# The default embedding model, baked into the package and the image (read-only in the Nix store): the
# fetchurl arguments for the pin in src/memory_mcp/default-model.json, which the Python code reads too (it
# downloads the same file when run outside Nix). Plain data, so that tests can check the pin without nixpkgs.
#
# bge-small-en-v1.5 (BAAI, MIT licence) as a Q8_0 GGUF: 384 dimensions, CLS pooling, 512-token context.
# memory-mcp recognises the BGE family from the file and adds its query prefix by itself.
let
  pin = builtins.fromJSON (builtins.readFile ../src/memory_mcp/default-model.json);
in
{
  inherit (pin) name url sha256;
}
