"""Sync over real SSH: Debian's sshd on a loopback port, with a temporary host key and one authorized key,
serving the bare remote. Host keys are checked against a known_hosts file: unknown or changed is refused."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from memory_mcp.core.store import Credentials
from memory_mcp.errors import Unavailable
from tests.sync.conftest import Replica, assert_healthy

SSHD = Path("/usr/sbin/sshd")
Make = Callable[..., Replica]


@dataclass
class SshServer:
    url: str
    client_key: Path
    known_hosts: Path
    """A known_hosts file holding the server's real host key."""
    log: Path

    def credentials(self, known_hosts: Path | None = None) -> Credentials:
        return Credentials(ssh_key=self.client_key, known_hosts=known_hosts or self.known_hosts)


def keygen(path: Path) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path.with_name(path.name + ".pub").read_text().strip()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ssh_remote(tmp_path: Path, remote: Path) -> Iterator[SshServer]:
    if not SSHD.exists():
        pytest.fail("sshd is missing: apt-get install -y openssh-server (.ci/run does)")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    host_public = keygen(keys / "host_key")
    (keys / "authorized_keys").write_text(keygen(keys / "client_key") + "\n")
    port = free_port()
    config = keys / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\nPidFile {keys / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        f"PermitRootLogin prohibit-password\nAllowUsers {getpass.getuser()}\n"
        f"SetEnv PATH={os.environ['PATH']}\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation folder
    log = keys / "sshd.log"
    server = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stderr=log.open("wb"))
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"sshd did not start: {log.read_text()}")
            time.sleep(0.05)
    known = keys / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {host_public}\n")
    url = f"ssh://{getpass.getuser()}@127.0.0.1:{port}{remote}"
    yield SshServer(url=url, client_key=keys / "client_key", known_hosts=known, log=log)
    server.terminate()
    server.wait(10)


def test_clone_push_and_pull_over_ssh(replica: Make, ssh_remote: SshServer, remote: Path) -> None:
    a = replica("a", ssh_remote.url, ssh_remote.credentials())
    a.write("over-ssh", "pushed through sshd", 1)
    report = a.syncer.sync()
    assert report.ok and report.pushed == 2, report.errors
    b = replica("b", ssh_remote.url, ssh_remote.credentials())
    assert b.content("over-ssh") == "pushed through sshd", "cloned over SSH"
    b.write("reply", "from b", 2)
    assert b.syncer.sync().ok
    report = a.syncer.sync()
    assert report.ok and report.pulled == 1 and a.content("reply") == "from b"
    assert "Accepted publickey" in ssh_remote.log.read_text(), "the key really authenticated"
    for repo in (a.root, b.root, remote):
        assert_healthy(repo)


def test_an_unknown_host_key_is_refused(replica: Make, ssh_remote: SshServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    refused = "host key of 127.0.0.1 is unknown or has changed; refusing to connect"
    with pytest.raises(Unavailable, match=refused):
        replica("a", ssh_remote.url, ssh_remote.credentials(empty))
    assert "Accepted publickey" not in ssh_remote.log.read_text(), "no credentials were sent"


def test_a_changed_host_key_is_refused(replica: Make, ssh_remote: SshServer, tmp_path: Path) -> None:
    a = replica("a", ssh_remote.url, ssh_remote.credentials())
    a.write("before", "the key changes", 1)
    assert a.syncer.sync().ok
    impostor = keygen(tmp_path / "impostor_key")
    line = ssh_remote.known_hosts.read_text().split(" ", 1)[0]
    ssh_remote.known_hosts.write_text(f"{line} {impostor}\n")  # as if the server's key had changed
    a.write("after", "not pushed", 2)
    report = a.syncer.sync()
    assert not report.ok and report.pushed == 0
    assert any("refusing to connect" in error for error in report.errors), report.errors
    assert report.ahead == 1, "the local commit is kept for later"


def test_ssh_is_available_here() -> None:
    """The SSH tests need these; a machine without them fails here rather than passing silently."""
    assert shutil.which("ssh-keygen") and SSHD.exists()
