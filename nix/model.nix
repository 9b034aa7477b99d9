# The default embedding model, baked into the package and the image (read-only in the Nix store).
# Plain data, so that tests can check the pin without nixpkgs.
#
# bge-small-en-v1.5 (BAAI, MIT licence) as a Q8_0 GGUF: 384 dimensions, CLS pooling, 512-token context.
# memory-mcp recognises the BGE family from the file and adds its query prefix by itself.
{
  name = "bge-small-en-v1.5-q8_0.gguf";
  url = "https://huggingface.co/CompendiumLabs/bge-small-en-v1.5-gguf/resolve/main/bge-small-en-v1.5-q8_0.gguf";
  # sha256 ec38e8da142596baa913124ae50550de284b6916bf59577ef2f0cb9660c2f514
  hash = "sha256-7Djo2hQllrqpExJK5QVQ3ihLaRa/WVd+8vDLlmDC9RQ=";
}
