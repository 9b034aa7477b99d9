# The OCI image: a layered image of the program's closure (Python, llama.cpp, the model, CA certificates)
# plus one small layer with /etc/passwd, /etc/group, /tmp and the /data volume owned by the image's user.
# No shell and no package manager: nothing in it is started but memory-mcp. See image-config.nix.
{
  dockerTools,
  cacert,
  # image-config.nix applied to this build's program, model and CA bundle.
  settings,
  version,
}:
dockerTools.buildLayeredImage {
  inherit (settings) name config;
  tag = version;

  # /etc/ssl/certs for programs that look there rather than at SSL_CERT_FILE.
  contents = [ cacert ];

  extraCommands = ''
    mkdir -p etc tmp data/repo data/cache
    chmod 1777 tmp
    echo '${settings.passwd}' > etc/passwd
    echo '${settings.group}' > etc/group
  '';

  fakeRootCommands = ''
    chown -R ${toString settings.uid}:${toString settings.gid} data
  '';
}
