# memory-mcp's Python environments, built by uv2nix from uv.lock: the same pins the non-Nix set-up installs.
#
# Every locked package comes from its locked wheel (manylinux wheels are patched by autoPatchelf), except the
# two that PyPI ships as source only. llama-cpp-python and hnswlib are taken prebuilt from nixpkgs, built for
# the same Python; their dependency metadata still comes from uv.lock. Both nixpkgs builds are portable:
# llama-cpp-python builds llama.cpp with GGML_NATIVE=off, hnswlib gets an AVX2/FMA/F16C baseline on x86-64
# (below), and nixpkgs' compiler wrapper strips any -march=native (NIX_ENFORCE_NO_NATIVE, on by default) from
# both. No AMX code is compiled, so the segfault of a -march=native llama.cpp on AMX CPUs with Q8_0 models
# (see README) cannot happen here.
# Their versions follow the nixpkgs pin rather than uv.lock (hnswlib 0.8.0 is the same; llama-cpp-python is
# whatever 0.3.x the pin has): memory-mcp only uses llama-cpp-python APIs that 0.3.x has had throughout.
{
  lib,
  pkgs,
  pyproject-nix,
  uv2nix,
  pyproject-build-systems,
  # The repository root (a path).
  root,
}:
let
  python = pkgs.python3;

  workspace = uv2nix.lib.workspace.loadWorkspace { workspaceRoot = root; };

  hacks = pkgs.callPackage pyproject-nix.build.hacks { };

  sourceOnlyFromNixpkgs = _final: prev: {
    llama-cpp-python = hacks.nixpkgsPrebuilt {
      from = python.pkgs.llama-cpp-python;
      prev = prev.llama-cpp-python;
    };
    hnswlib = hacks.nixpkgsPrebuilt {
      # On x86-64, the llama.cpp build's baseline (AVX2, FMA, F16C): without it hnswlib's distance loops are
      # SSE2 only, and a recall's graph search took 30-40% longer.
      from = python.pkgs.hnswlib.overrideAttrs (
        old:
        lib.optionalAttrs pkgs.stdenv.hostPlatform.isx86_64 {
          env = (old.env or { }) // {
            NIX_CFLAGS_COMPILE = "-mavx2 -mfma -mf16c";
          };
        }
      );
      prev = prev.hnswlib;
    };
  };

  # Only what hatchling needs for the wheel: edits to tests, docs or Nix files do not rebuild the application.
  appSource = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      (root + "/pyproject.toml")
      (root + "/README.md")
      (root + "/src")
    ];
  };

  appFixups = _final: prev: {
    memory-mcp = prev.memory-mcp.overrideAttrs (_old: {
      src = appSource;
    });
  };

  pythonSet =
    (pkgs.callPackage pyproject-nix.build.packages {
      inherit python;
    }).overrideScope
      (
        lib.composeManyExtensions [
          pyproject-build-systems.overlays.default
          (workspace.mkPyprojectOverlay { sourcePreference = "wheel"; })
          sourceOnlyFromNixpkgs
          appFixups
        ]
      );

  # For `nix develop`: memory-mcp installed editable from $REPO_ROOT/src, so source edits need no rebuild.
  editableSet = pythonSet.overrideScope (
    lib.composeManyExtensions [
      (workspace.mkEditablePyprojectOverlay { root = "$REPO_ROOT"; })
      (final: prev: {
        memory-mcp = prev.memory-mcp.overrideAttrs (old: {
          src = lib.fileset.toSource {
            inherit root;
            fileset = lib.fileset.unions [
              (root + "/pyproject.toml")
              (root + "/README.md")
              (root + "/src/memory_mcp/__init__.py")
            ];
          };
          # hatchling's PEP 660 hook may ask for `editables`; Nix has to provide it up front.
          nativeBuildInputs =
            old.nativeBuildInputs
            ++ final.resolveBuildSystem {
              editables = [ ];
            };
        });
      })
    ]
  );

  inherit (pythonSet.memory-mcp) version;
in
{
  inherit
    python
    workspace
    pythonSet
    editableSet
    version
    ;

  # The application's run-time environment: memory-mcp and its locked dependencies, nothing else.
  venv = pythonSet.mkVirtualEnv "memory-mcp-${version}-env" workspace.deps.default;

  # The same plus the `test` extra (pytest, pytest-timeout, hypothesis), for the checks.
  testVenv = pythonSet.mkVirtualEnv "memory-mcp-${version}-test-env" { memory-mcp = [ "test" ]; };

  # Every extra and group, memory-mcp editable: the development shell's environment.
  devVenv = editableSet.mkVirtualEnv "memory-mcp-dev-env" workspace.deps.all;
}
