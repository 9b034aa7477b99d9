# memory-mcp's Python environments, built by uv2nix from uv.lock: the same pins the non-Nix set-up installs.
#
# Every locked package comes from its locked wheel (manylinux wheels are patched by autoPatchelf), except the
# two that PyPI ships as source only: llama-cpp-python and hnswlib are built from their locked sdists (version
# and hash from uv.lock) with the portable flags scripts/dev.py uses (native-build.nix). No -march=native and
# no AMX code, so the segfault of a -march=native llama.cpp on AMX CPUs with Q8_0 models (see README) cannot
# happen here, and the image embeds as fast as the build bench/ measures.
#
# The build systems come from pyproject-build-systems' wheel overlay: its sdist overlay (`default`) would
# build trove-classifiers, calver, libcst and others from source, against uv.lock's setuptools and packaging
# rather than the versions the build-system set pins for them.
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

  nativeBuild = import ./native-build.nix { cpu = pkgs.stdenv.hostPlatform.parsed.cpu.name; };

  # The sdists' build systems (uv.lock records only runtime dependencies) and the portable flags.
  sourceBuilds = final: prev: {
    llama-cpp-python = prev.llama-cpp-python.overrideAttrs (old: {
      nativeBuildInputs =
        old.nativeBuildInputs
        ++ [
          pkgs.cmake
          pkgs.ninja
        ]
        ++ final.resolveBuildSystem {
          scikit-build-core = [ ];
        };
      # scikit-build-core runs CMake and Ninja itself; their setup hooks must not take over the phases.
      dontUseCmakeConfigure = true;
      dontUseNinjaBuild = true;
      dontUseNinjaInstall = true;
      dontUseNinjaCheck = true;
      env = (old.env or { }) // nativeBuild.llama-cpp-python;
    });
    hnswlib = prev.hnswlib.overrideAttrs (old: {
      nativeBuildInputs =
        old.nativeBuildInputs
        ++ final.resolveBuildSystem {
          setuptools = [ ];
          wheel = [ ];
          pybind11 = [ ];
          numpy = [ ];
        };
      env = (old.env or { }) // nativeBuild.hnswlib;
    });
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
          pyproject-build-systems.overlays.wheel
          (workspace.mkPyprojectOverlay { sourcePreference = "wheel"; })
          sourceBuilds
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
