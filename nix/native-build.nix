# The environment of the two source builds (llama-cpp-python, hnswlib) for one CPU architecture: the same
# packaging/native-build.json that scripts/dev.py reads, so the image runs the llama.cpp we measure.
# x86-64: GGML_NATIVE=OFF with AVX2/FMA/F16C stated explicitly (inside a Nix build SOURCE_DATE_EPOCH is set,
# and ggml then turns every instruction-set option off unless told otherwise); aarch64: ggml's armv8 defaults.
# Plain data, so that tests can check it without nixpkgs.
{
  # "x86_64" or "aarch64" (stdenv.hostPlatform.parsed.cpu.name).
  cpu,
}:
let
  flags = builtins.fromJSON (builtins.readFile ../packaging/native-build.json);
in
flags.${cpu} or (throw "packaging/native-build.json has no portable build flags for ${cpu}")
