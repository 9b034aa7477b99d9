"""What counts as this machine: the one test of whether a host is reachable only from here, which decides
where the server may run without tokens and where a token may travel over plain http (git remotes, GitHub
URLs), and the names this machine's clients put in the Host header."""

from __future__ import annotations

import ipaddress
from typing import Final

LOOPBACK_NAMES: Final = ("localhost",)
"""Names that resolve to this machine by convention; any other name might resolve anywhere."""
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
"""The Host header forms a local client sends, allowed by the HTTP server whatever else is configured."""


def is_loopback_host(host: str | None) -> bool:
    """Whether a host name or address (IPv6 bracketed or not) can only be reached from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return host is not None and ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
