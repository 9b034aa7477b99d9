# The systems every flake output is built for. Plain data, so that tests can read it without nixpkgs.
[
  "x86_64-linux"
  "aarch64-linux"
]
