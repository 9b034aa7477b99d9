"""Talking to the git remote: fetch and push through libgit2, with credentials, host keys and proxies.

- The token is asked for only when the remote demands credentials, is sent only over HTTPS (or to a
  loopback address), and is never written into the URL, `.git/config`, a log line or an error message
  (every message is scrubbed).
- SSH host keys are checked against a known_hosts file (`~/.ssh/known_hosts`, or the one configured): an
  unknown or changed key refuses the connection.
- HTTPS remotes go through the proxy named by `HTTPS_PROXY` unless `NO_PROXY` exempts the host (the
  environment variables curl and git honour).
"""

from __future__ import annotations

import logging
import re
import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import pygit2
from pygit2.enums import CredentialType, FetchPrune, Option

from memory_mcp.core.store.git_store import GitStore
from memory_mcp.errors import InvalidInput, Unavailable
from memory_mcp.loopback import is_loopback_host

log = logging.getLogger(__name__)

REMOTE: Final = "origin"
TOKEN_USER: Final = "x-access-token"
"""The user name GitHub expects beside a token used as an HTTPS password."""
SSH_HOME: Final = "ssh-home"
"""Inside the repository's private folder: the home libgit2 reads `.ssh/known_hosts` from, when configured."""
_OFFERED: Final = (CredentialType.USERPASS_PLAINTEXT, CredentialType.SSH_KEY, CredentialType.USERNAME)
"""What the credentials callback can answer, in order of preference."""
_REJECTED = re.compile(r"non-fastforwardable|not present locally")
"""libgit2's words for a push refused before sending because the remote's branch moved."""
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_HOME_LOCK = threading.Lock()
"""libgit2's home folder (where it reads `.ssh/known_hosts`) is process-wide: one SSH operation at a time
sets it to its remote's."""

pygit2.option(Option.SET_SERVER_CONNECT_TIMEOUT, 15_000)
pygit2.option(Option.SET_SERVER_TIMEOUT, 60_000)
"""Milliseconds; a remote that stops answering fails the sync instead of hanging it (process-wide)."""


@dataclass(frozen=True)
class Credentials:
    """How to authenticate: an HTTPS token read on demand, and/or an SSH key file (else the SSH agent)."""

    token_provider: Callable[[], str | None] | None = None
    ssh_key: Path | None = None
    """A private key with no passphrase (`<key>.pub` is used if present); put encrypted keys in the agent."""
    known_hosts: Path | None = None
    """The SSH known_hosts file to check host keys against; None: `~/.ssh/known_hosts`."""


def safe_url(url: str) -> str:
    """The URL without any user information, for logs and messages."""
    return _USERINFO.sub("", url)


def proxy_for(url: str) -> str | None:
    """The proxy URL the environment names for this HTTPS remote, None for a direct connection.

    Only HTTPS goes through a proxy (a CONNECT tunnel): libgit2 sends a plain-HTTP remote's requests
    straight to the server even when given a proxy (libgit2 issue #5650), and does not proxy SSH.
    """
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return None
    proxies = urllib.request.getproxies_environment()
    if parts.scheme not in proxies:
        return None
    host = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    if urllib.request.proxy_bypass_environment(host, proxies):
        return None
    return proxies[parts.scheme]


class Remote:
    """The `origin` remote of one store's repository; one thread at a time (under the sync lock)."""

    def __init__(self, store: GitStore, url: str, credentials: Credentials = Credentials()) -> None:
        if urlsplit(url).password is not None:
            raise InvalidInput(
                f"the remote URL {safe_url(url)} must not carry a password or token; "
                "supply the token separately"
            )
        self.store = store
        self.url = url
        self._credentials = credentials
        remotes = store.repository.remotes
        existing = next((r for r in remotes if r.name == REMOTE), None)
        if existing is None:
            remotes.create(REMOTE, url)
        elif existing.url != url:
            log.info("pointing remote %s at %s", REMOTE, safe_url(url))
            remotes.set_url(REMOTE, url)
        self._home: str | None = None
        if credentials.known_hosts is not None:
            self._home = _known_hosts_home(credentials.known_hosts, store.private_dir / SSH_HOME)
        self._ssh = not urlsplit(url).scheme.startswith("http")

    @contextmanager
    def _connection(self) -> Iterator[None]:
        """Around one remote operation: SSH ones check host keys against this remote's known_hosts."""
        if not self._ssh:
            yield
            return
        with _HOME_LOCK:
            pygit2.option(Option.SET_HOMEDIR, self._home or str(Path.home()))
            yield

    def fetch(self, refspec: str) -> None:
        """Fetch into the tracking ref; raise `Unavailable` with a scrubbed message on any failure."""
        callbacks = _Callbacks(self._credentials)
        try:
            with self._connection():
                self.store.repository.remotes[REMOTE].fetch(
                    [refspec], callbacks=callbacks, prune=FetchPrune.PRUNE, proxy=proxy_for(self.url)
                )
        except Exception as exc:  # noqa: BLE001 - any network or credential failure becomes one error
            raise Unavailable(_explain(exc, callbacks, self._ssh)) from None

    def push(self, ref: str) -> str | None:
        """Push `ref`; the remote's reason when it refused the update (it moved meanwhile), else None.

        Any other failure raises `Unavailable` with a scrubbed message.
        """
        callbacks = _Callbacks(self._credentials)
        try:
            with self._connection():
                self.store.repository.remotes[REMOTE].push(
                    [f"{ref}:{ref}"], callbacks=callbacks, proxy=proxy_for(self.url)
                )
        except Exception as exc:  # noqa: BLE001 - any network or credential failure becomes one error
            if not _REJECTED.search(str(exc)):
                raise Unavailable(_explain(exc, callbacks, self._ssh)) from None
            callbacks.rejected.append(str(exc))
        if callbacks.rejected:
            return scrub("; ".join(callbacks.rejected), callbacks.secrets)
        return None


def _known_hosts_home(known_hosts: Path, home: Path) -> str:
    """libgit2 checks SSH host keys against `<its home>/.ssh/known_hosts`: a private home folder whose
    known_hosts links to the configured file (so edits to that file count at once)."""
    known_hosts = known_hosts.expanduser().resolve()
    if not known_hosts.is_file():
        raise InvalidInput(f"the SSH known_hosts file {known_hosts} does not exist")
    link = home / ".ssh" / "known_hosts"
    link.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not link.is_symlink() or link.readlink() != known_hosts:
        link.unlink(missing_ok=True)
        link.symlink_to(known_hosts)
    return str(home)


def _explain(exc: Exception, callbacks: _Callbacks, ssh: bool) -> str:
    text = scrub(str(exc) or type(exc).__name__, callbacks.secrets)
    if callbacks.untrusted is None:
        return text
    if ssh:
        return (
            f"the SSH host key of {callbacks.untrusted} is unknown or has changed; refusing to connect. "
            "If the key is right, add it to the known_hosts file (MEMORY_MCP_SSH_KNOWN_HOSTS, default "
            "~/.ssh/known_hosts), having checked its fingerprint"
        )
    return f"the TLS certificate of {callbacks.untrusted} is not trusted; refusing to connect ({text})"


class _Callbacks(pygit2.RemoteCallbacks):
    """One remote operation's callbacks: credentials on demand, rejected ref updates, secrets to scrub.

    Host keys and certificates are trusted as libgit2 judges them (known_hosts, the system's CAs).
    """

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials
        self._asked: set[CredentialType] = set()
        self.secrets: list[str] = []
        self.rejected: list[str] = []
        self.untrusted: str | None = None
        """The host whose certificate or host key was refused."""

    def credentials(
        self, url: str, username_from_url: str | None, allowed_types: CredentialType
    ) -> pygit2.UserPass | pygit2.Username | pygit2.Keypair:
        kind = next((k for k in _OFFERED if allowed_types & k), None)
        if kind is None:
            raise Unavailable(f"the remote asks for credentials memory-mcp cannot give ({allowed_types!r})")
        if kind in self._asked:  # libgit2 asks again only when the remote refused the previous answer
            what = "the SSH key" if kind is CredentialType.SSH_KEY else f"the token (user {TOKEN_USER})"
            raise Unavailable(f"the remote refused {what}: authentication failed")
        self._asked.add(kind)
        user = username_from_url or "git"
        if kind is CredentialType.USERPASS_PLAINTEXT:
            return pygit2.UserPass(TOKEN_USER, self._token(url))
        if kind is CredentialType.USERNAME:
            return pygit2.Username(user)
        key = self._credentials.ssh_key
        if key is None:
            return pygit2.KeypairFromAgent(user)
        public = key.with_name(key.name + ".pub")
        return pygit2.Keypair(user, str(public) if public.exists() else None, str(key), "")

    def _token(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme != "https" and not is_loopback_host(parts.hostname):
            raise Unavailable("refusing to send the token over unencrypted HTTP; use an https:// remote URL")
        provider = self._credentials.token_provider
        try:
            token = provider() if provider is not None else None
        except Exception as exc:  # noqa: BLE001 - a token store's failure must not leak its details
            raise Unavailable(f"could not read the remote token ({type(exc).__name__})") from None
        if not token:
            raise Unavailable("the remote requires authentication but no token is configured")
        self.secrets.append(token)
        return token

    def certificate_check(self, certificate: None, valid: bool, host: bytes) -> bool:
        """Refuse what libgit2 found untrusted: a TLS certificate that does not verify, an SSH host key not in
        known_hosts or different from it (pygit2's default would accept every SSH host key)."""
        if not valid:
            self.untrusted = host.decode(errors="replace")
        return valid

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message is not None:
            self.rejected.append(f"the remote rejected {refname}: {message}")


def scrub(text: str, secrets: list[str]) -> str:
    """`text` without these secrets or any URL's user information."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return _USERINFO.sub("", text)
