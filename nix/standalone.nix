# `nix build .#standalone`: the single-file executable of scripts/build-standalone.py, made from the same locked
# environment as the image (the test environment, which has PyInstaller) and carrying the pinned model, so
# that it serves with no configuration and no download. The model is appended after PyInstaller's archive;
# the first start copies it once into the cache dir (src/memory_mcp/core/bundled_model.py).
#
# Its loader and libraries are this nixpkgs' glibc and Python, so it runs where that glibc (or a newer one) is;
# for older distributions build it with scripts/build-standalone.py on the oldest one you support.
{
  lib,
  stdenvNoCC,
  root,
  testVenv,
  model,
  version,
}:
stdenvNoCC.mkDerivation {
  pname = "memory-mcp-standalone";
  inherit version;

  src = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/scripts/build-standalone.py")
      (root + "/packaging")
    ];
  };

  nativeBuildInputs = [ testVenv ];
  dontConfigure = true;

  buildPhase = ''
    runHook preBuild
    export HOME="$TMPDIR/home" PYTHONHASHSEED=0
    python scripts/build-standalone.py --python ${testVenv}/bin/python --model ${model} \
      --dist "$TMPDIR/dist" --work "$TMPDIR/work"
    runHook postBuild
  '';

  installPhase = ''
    runHook preInstall
    install -Dm755 "$TMPDIR/dist/memory-mcp" "$out/bin/memory-mcp"
    runHook postInstall
  '';

  # Stripping or patching the ELF file would cut off the archive and the model appended to it.
  dontStrip = true;
  dontPatchELF = true;

  meta = {
    description = "memory-mcp as one self-contained executable, with its embedding model";
    mainProgram = "memory-mcp";
    platforms = import ./systems.nix;
  };
}
