# nix/python.nix evaluated with the real flake inputs, offline, for the packaging tests.
#
# pyproject.nix, uv2nix and build-system-pkgs are the sources at flake.lock's revisions and `lib` is nixpkgs'
# (../shared/nix-inputs, unpacked by the test). Only nixpkgs' package builders are stand-ins: stdenv.mkDerivation
# (a derivation's attributes, with overrideAttrs, never built), fetchurl (its arguments), the interpreter's
# facts, and named placeholders for tools and hooks. So uv2nix's real reading of uv.lock, its wheel selection for
# the platform and Python version, pyproject.nix's build-system resolution and our overlays all run for real.
#
# Debian's Nix 2.8 lacks builtins.readFileType, which lib.filesystem.pathType is (and lib.fileset uses): this
# copy of lib gets a fallback from builtins.readDir of the parent folder. The flake itself is not changed.
{
  # A folder holding the unpacked inputs: pyproject.nix, uv2nix, build-system-pkgs, nixpkgs.lib.
  inputs,
  # The repository to evaluate.
  root,
  system,
  # The pinned nixpkgs' python3 version.
  pythonVersion,
}:
let
  lib = (import (inputs + "/nixpkgs.lib/lib")).extend (
    _final: prev: {
      filesystem = prev.filesystem // {
        pathType =
          path:
          if builtins ? readFileType then
            builtins.readFileType path
          else if dirOf path == path then
            "directory"
          else
            (builtins.readDir (dirOf path)).${baseNameOf path}
              or (throw "lib.filesystem.pathType: ${toString path} does not exist");
      };
    }
  );

  pyproject-nix = import (inputs + "/pyproject.nix") { inherit lib; };
  uv2nix = import (inputs + "/uv2nix") { inherit lib pyproject-nix; };
  pyproject-build-systems = {
    overlays = (import (inputs + "/build-system-pkgs") { inherit lib uv2nix pyproject-nix; }).overlays;
  };

  platform = lib.systems.elaborate system;
  store = name: "/nix/store/00000000000000000000000000000000-${name}";
  standIn = name: {
    inherit name;
    pname = name;
    outPath = store name;
  };

  # A derivation's attributes as mkDerivation would see them, overridable the way nixpkgs' are.
  mkDerivationFrom =
    rattrs:
    let
      attrs = lib.fix rattrs;
      passthru = attrs.passthru or { };
      name = attrs.name or "${attrs.pname}-${attrs.version}";
    in
    attrs
    // passthru
    // {
      inherit passthru name;
      outPath = store name;
      overrideAttrs =
        f:
        mkDerivationFrom (
          final:
          let
            prev = rattrs final;
            applied = f prev;
          in
          prev // (if builtins.isFunction applied then f final prev else applied)
        );
    };

  glibc = standIn "glibc" // {
    version = "2.42";
    linuxHeaders.version = "6.12";
  };

  stdenv = {
    mkDerivation = fnOrAttrs: mkDerivationFrom (if builtins.isFunction fnOrAttrs then fnOrAttrs else _: fnOrAttrs);
    hostPlatform = platform;
    buildPlatform = platform;
    targetPlatform = platform;
    inherit (platform) isLinux isDarwin;
    cc = standIn "gcc" // {
      libc = glibc;
    };
  };

  python =
    let
      short = lib.versions.majorMinor pythonVersion;
    in
    standIn "python3"
    // {
      version = pythonVersion;
      pythonVersion = short;
      implementation = "cpython";
      passthru = {
        implementation = "cpython";
        pythonVersion = short;
        sourceVersion = {
          major = lib.versions.major pythonVersion;
          minor = lib.versions.minor pythonVersion;
          patch = lib.versions.patch pythonVersion;
          suffix = "";
        };
      };
      sitePackages = "lib/python${short}/site-packages";
      interpreter = "${store "python3"}/bin/python${short}";
      inherit stdenv;
      pythonOnBuildForHost = python;
    };

  tools = map standIn [
    "autoPatchelfHook"
    "unzip"
    "cmake"
    "ninja"
    "runCommand"
    "writeText"
    "git"
  ];

  pkgs =
    builtins.listToAttrs (
      map (tool: {
        inherit (tool) name;
        value = tool;
      }) tools
    )
    // {
      inherit lib stdenv pkgs;
      python3 = python;
      buildPackages = pkgs;
      fetchurl =
        args:
        standIn (args.name or (baseNameOf args.url))
        // {
          inherit (args) url;
          hash = args.hash or args.sha256;
          passthru.url = args.url;
        };
      makeSetupHook = attrs: _script: standIn (attrs.name or "setup-hook");
      replaceVars = script: _replacements: script;
      pythonManylinuxPackages = {
        manylinux1 = [ ];
        manylinux2010 = [ ];
        manylinux2014 = [ ];
      };
      callPackage = lib.callPackageWith pkgs;
      newScope = extra: lib.callPackageWith (pkgs // extra);
    };

  environments = pkgs.callPackage (root + "/nix/python.nix") {
    inherit pyproject-nix uv2nix pyproject-build-systems root;
  };
  set = environments.pythonSet;

  name = drv: drv.pname or drv.name;
  describe = drv: {
    name = name drv;
    version = drv.version or null;
    format = drv.passthru.format or null;
    src = drv.src.url or null;
    srcHash = drv.src.hash or null;
    env = drv.env or { };
    nativeBuildInputs = map name (drv.nativeBuildInputs or [ ]);
  };
  # Every package a build of `drv` needs, as described above: its build systems, theirs, and so on.
  buildClosure =
    drvs:
    let
      step =
        seen: todo:
        if todo == [ ] then
          seen
        else
          let
            drv = builtins.head todo;
            rest = builtins.tail todo;
          in
          if seen ? ${name drv} || !(drv ? passthru) then
            step seen rest
          else
            step (seen // { ${name drv} = describe drv; }) (rest ++ (drv.nativeBuildInputs or [ ]));
    in
    builtins.attrValues (step { } drvs);
in
{
  inherit (environments) version;
  # The environments flake outputs install (with the development one's every extra and group).
  runtime = map describe (set.resolveVirtualEnv environments.workspace.deps.default);
  all = buildClosure (set.resolveVirtualEnv environments.workspace.deps.all);
}
