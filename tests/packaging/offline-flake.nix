# flake.nix evaluated offline, for the packaging tests: the real flake.nix and nix/*.nix, stand-in inputs.
#
# The stand-in nixpkgs checks every callPackage call the way nixpkgs would (each argument without a default
# comes from nixpkgs or from the caller, and the caller passes nothing the file does not take) and returns a
# named stand-in, so the output names and the wiring between the files are proven without network or store.
# The other inputs throw when touched: no output name may depend on them.
{
  # The repository to evaluate (tests point it at broken copies too).
  root,
}:
let
  flake = import (root + "/flake.nix");
  systems = import (root + "/nix/systems.nix");

  # nixpkgs attributes the Nix files take by name; every one of them exists in nixpkgs.
  nixpkgsNames = [
    "lib"
    "pkgs"
    "stdenvNoCC"
    "runCommand"
    "writeText"
    "git"
    "python3"
    "makeBinaryWrapper"
    "dockerTools"
    "cacert"
    "mkShell"
    "uv"
    "kubectl"
    "kustomize"
    "skopeo"
    "nixfmt-tree"
  ];

  # Files whose value is a plain attribute set that their callers read attributes from.
  attrsetFiles = [
    "python.nix"
    "checks.nix"
  ];

  standIn = what: {
    __standIn = what;
    outPath = "/nix/store/00000000000000000000000000000000-${what}";
  };

  fakePkgs =
    system:
    let
      named = builtins.listToAttrs (
        map (name: {
          inherit name;
          value = standIn name;
        }) nixpkgsNames
      );
      self = named // {
        inherit system;
        pkgs = self;
        fetchurl =
          args:
          if builtins.attrNames args == [ "name" "sha256" "url" ] then
            standIn "fetchurl:${args.name}"
          else
            throw "fetchurl takes name, url and sha256, not ${toString (builtins.attrNames args)}";
        callPackage =
          fn: args:
          let
            file = baseNameOf (toString fn);
            f = import fn;
            formals = builtins.functionArgs f;
            required = builtins.filter (n: !formals.${n}) (builtins.attrNames formals);
            missing = builtins.filter (n: !(args ? ${n}) && !(builtins.elem n nixpkgsNames)) required;
            unexpected = builtins.filter (n: !(formals ? ${n})) (builtins.attrNames args);
            fromNixpkgs = builtins.filter (n: builtins.elem n nixpkgsNames && !(args ? ${n})) (
              builtins.attrNames formals
            );
            auto = builtins.listToAttrs (
              map (n: {
                name = n;
                value = self.${n};
              }) fromNixpkgs
            );
          in
          if missing != [ ] then
            throw "callPackage ${file}: nothing provides ${toString missing}"
          else if unexpected != [ ] then
            throw "callPackage ${file}: it takes no ${toString unexpected}"
          else
            (standIn file)
            // {
              __args = builtins.attrNames args;
              __fromNixpkgs = fromNixpkgs;
            }
            // (if builtins.elem file attrsetFiles then f (auto // args) else { });
      };
    in
    self;

  offline = name: throw "offline evaluation touched the ${name} input";

  out = flake.outputs {
    self = {
      rev = "0000000000000000000000000000000000000000";
    };
    nixpkgs.legacyPackages = builtins.listToAttrs (
      map (system: {
        name = system;
        value = fakePkgs system;
      }) systems
    );
    pyproject-nix = offline "pyproject-nix";
    uv2nix = offline "uv2nix";
    pyproject-build-systems = offline "pyproject-build-systems";
  };

  # nix/default.nix on its own, to reach the calls the flake's outputs do not force (python.nix).
  built = import (root + "/nix") {
    pkgs = fakePkgs "x86_64-linux";
    pyproject-nix = offline "pyproject-nix";
    uv2nix = offline "uv2nix";
    pyproject-build-systems = offline "pyproject-build-systems";
    inherit root;
    revision = "0000000000000000000000000000000000000000";
  };

  described = value: {
    file = value.__standIn;
    args = value.__args or [ ];
    fromNixpkgs = value.__fromNixpkgs or [ ];
  };
in
{
  inherit (flake) description inputs;
  inherit systems;
  outputs = builtins.attrNames out;
  packages = builtins.mapAttrs (_: builtins.mapAttrs (_: described)) out.packages;
  apps = builtins.mapAttrs (
    _:
    builtins.mapAttrs (
      _: app: {
        inherit (app) type program;
        description = app.meta.description;
      }
    )
  ) out.apps;
  devShells = builtins.mapAttrs (_: builtins.mapAttrs (_: described)) out.devShells;
  checks = builtins.mapAttrs (_: builtins.attrNames) out.checks;
  formatter = builtins.mapAttrs (_: described) out.formatter;
  wiring = {
    outputs = builtins.attrNames built;
    environments = described built.environments // {
      attributes = builtins.attrNames built.environments;
    };
    checks = described built.checks // {
      attributes = builtins.attrNames built.checks;
    };
    devShell = described built.devShell;
    image = described built.image;
    standalone = described built.standalone;
    # (not the version label: the version comes from uv2nix's reading of pyproject.toml, which needs the input)
    imageSettings = {
      inherit (built.imageSettings.config) Entrypoint Env User;
      revision = built.imageSettings.config.Labels."org.opencontainers.image.revision";
    };
    memory-mcp = described built.memory-mcp;
    model = described built.model;
  };
}
