{
  description = "memory-mcp: durable, searchable long-term memory for AI agents over the Model Context Protocol";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";

    pyproject-nix = {
      url = "github:pyproject-nix/pyproject.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    uv2nix = {
      url = "github:pyproject-nix/uv2nix";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };

    pyproject-build-systems = {
      url = "github:pyproject-nix/build-system-pkgs";
      inputs.pyproject-nix.follows = "pyproject-nix";
      inputs.uv2nix.follows = "uv2nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      pyproject-nix,
      uv2nix,
      pyproject-build-systems,
    }:
    let
      systems = import ./nix/systems.nix;

      # Built from builtins only, so the output names below are known without evaluating nixpkgs (the packaging
      # tests rely on that to check them offline).
      forAllSystems =
        f:
        builtins.listToAttrs (
          map (system: {
            name = system;
            value = f system;
          }) systems
        );

      # Everything for one system, evaluated lazily.
      build = forAllSystems (
        system:
        import ./nix {
          pkgs = nixpkgs.legacyPackages.${system};
          inherit pyproject-nix uv2nix pyproject-build-systems;
          root = ./.;
          revision = self.rev or self.dirtyRev or "unknown";
        }
      );

      description = "Durable, searchable long-term memory for AI agents over the Model Context Protocol";
    in
    {
      packages = forAllSystems (system: {
        memory-mcp = build.${system}.memory-mcp;
        default = build.${system}.memory-mcp;
        model = build.${system}.model;
        image = build.${system}.image;
        standalone = build.${system}.standalone;
      });

      apps = forAllSystems (
        system:
        let
          app = {
            type = "app";
            program = "${build.${system}.memory-mcp}/bin/memory-mcp";
            meta = { inherit description; };
          };
        in
        {
          memory-mcp = app;
          default = app;
        }
      );

      devShells = forAllSystems (system: {
        default = build.${system}.devShell;
      });

      checks = forAllSystems (system: {
        inherit (build.${system}.checks) tests zero-config image;
      });

      formatter = forAllSystems (system: nixpkgs.legacyPackages.${system}.nixfmt-tree);
    };
}
