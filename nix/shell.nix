# `nix develop`: the locked Python environment with memory-mcp editable from the working tree, uv for lock
# changes, and the deployment tools (kubectl, kustomize, skopeo). MEMORY_MCP_MODEL defaults to the pinned model.
{
  mkShell,
  git,
  uv,
  kubectl,
  kustomize,
  skopeo,
  python,
  devVenv,
  model,
}:
mkShell {
  packages = [
    devVenv
    git
    uv
    kubectl
    kustomize
    skopeo
  ];

  env = {
    # uv must not manage a virtualenv of its own here, nor download interpreters: Nix provides both.
    UV_NO_SYNC = "1";
    UV_PYTHON = python.interpreter;
    UV_PYTHON_DOWNLOADS = "never";
  };

  shellHook = ''
    unset PYTHONPATH
    export REPO_ROOT="$(git rev-parse --show-toplevel)"
    export MEMORY_MCP_MODEL="''${MEMORY_MCP_MODEL:-${model}}"
  '';
}
