# What `nix flake check` builds, beside the packages it evaluates:
# - tests: the project's test suite against the packaged environment and the pinned model;
# - zero-config: the packaged program remembers and recalls with no MEMORY_MCP_MODEL set;
# - image: the OCI image's configuration and file system keep the contract in image-config.nix.
{
  lib,
  stdenvNoCC,
  runCommand,
  writeText,
  git,
  python3,
  root,
  testVenv,
  app,
  model,
  image,
  # image-config.nix as applied to this image.
  imageSettings,
}:
let
  # The suite's tests that are about the MiniLM test model itself (its reference embeddings file, which lives
  # outside the repository, its mean pooling without prefixes, and the second model derived from it); every
  # other test takes any model.
  modelSpecificTests = [
    "tests/integration/test_embedder.py::test_reproduces_reference_embeddings"
    "tests/integration/test_embedder.py::test_model_facts_come_from_the_file"
    "tests/integration/test_second_model.py"
  ];

  expectedImage = writeText "memory-mcp-image-expected.json" (
    builtins.toJSON {
      inherit (imageSettings) config uid gid;
      paths = [
        "${app}"
        "${model}"
      ];
    }
  );
in
{
  tests = stdenvNoCC.mkDerivation {
    name = "memory-mcp-${app.version}-tests";
    src = lib.fileset.toSource {
      inherit root;
      fileset = lib.fileset.unions [
        (root + "/pyproject.toml")
        (root + "/README.md")
        (root + "/src")
        (root + "/tests")
      ];
    };
    nativeBuildInputs = [
      testVenv
      git
    ];
    dontConfigure = true;
    buildPhase = ''
      runHook preBuild
      export HOME="$TMPDIR/home"
      mkdir -p "$HOME"
      export MEMORY_MCP_TEST_MODEL=${model}
      # Not here: the packaging tests (they need PyInstaller and nix-instantiate, which CI outside Nix has) and
      # the deployment tests (Kubernetes manifests, not the Python application).
      python -m pytest -p no:cacheprovider tests \
        --ignore=tests/packaging --ignore=tests/deploy \
        ${lib.concatMapStringsSep " " (test: "--deselect ${test}") modelSpecificTests}
      runHook postBuild
    '';
    installPhase = ''
      touch $out
    '';
  };

  zero-config = runCommand "memory-mcp-${app.version}-zero-config" { } ''
    export HOME="$TMPDIR/home"
    export MEMORY_MCP_REPO_PATH="$TMPDIR/repo" MEMORY_MCP_CACHE_DIR="$TMPDIR/cache"
    unset MEMORY_MCP_MODEL
    ${lib.getExe app} --version
    ${lib.getExe app} remember backups --tag ops \
      --content "The staging database is backed up every night at 02:00 UTC."
    ${lib.getExe app} recall "when does the database backup run" --json > hits.json
    cat hits.json
    grep -q '"name": "backups"' hits.json
    touch $out
  '';

  image = runCommand "memory-mcp-${app.version}-image-check" { } ''
    ${python3.interpreter} ${./check-image.py} ${image} ${expectedImage}
    touch $out
  '';
}
