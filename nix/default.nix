# Every memory-mcp build product for one system; flake.nix exposes them as outputs.
{
  pkgs,
  pyproject-nix,
  uv2nix,
  pyproject-build-systems,
  # The repository root (a path) and the revision to label the image with.
  root,
  revision,
}:
let
  python = pkgs.callPackage ./python.nix {
    inherit
      pyproject-nix
      uv2nix
      pyproject-build-systems
      root
      ;
  };

  model = pkgs.fetchurl (import ./model.nix);

  memory-mcp = pkgs.callPackage ./package.nix {
    inherit (python) venv version;
    inherit model;
  };

  imageSettings = import ./image-config.nix {
    entrypoint = "${memory-mcp}/bin/memory-mcp";
    modelPath = "${model}";
    caBundle = "${pkgs.cacert}/etc/ssl/certs/ca-bundle.crt";
    inherit (python) version;
    inherit revision;
  };

  image = pkgs.callPackage ./image.nix {
    settings = imageSettings;
    inherit (python) version;
  };

  standalone = pkgs.callPackage ./standalone.nix {
    inherit root model;
    inherit (python) testVenv version;
  };
in
{
  inherit
    model
    memory-mcp
    image
    imageSettings
    standalone
    ;
  inherit (python) venv testVenv pythonSet;
  # The Python side (package sets and virtualenvs), for the packaging tests and `nix repl`.
  environments = python;

  checks = pkgs.callPackage ./checks.nix {
    inherit root model image imageSettings;
    inherit (python) testVenv;
    app = memory-mcp;
  };

  devShell = pkgs.callPackage ./shell.nix {
    inherit (python) python devVenv;
    inherit model;
  };
}
