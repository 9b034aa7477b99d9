"""Where `auth login` puts a token and `auth logout` takes it away: a private file, a Kubernetes Secret, or stdout.

Each store is opened before any token exists (`open_store`), so a missing kubeconfig or a bad namespace fails
before the user has gone through the device flow, not after.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Protocol, TextIO

from memory_mcp.auth.github_token import GitHubToken, file_store_path
from memory_mcp.config import APP, Settings
from memory_mcp.errors import Conflict, InvalidInput, NotFound, Unavailable
from memory_mcp.files import fsync_path, write_atomic

log = logging.getLogger(__name__)

STORES: Final = ("file", "k8s-secret", "stdout")
SECRET_NAME: Final = "memory-mcp-github-token"
SECRET_KEY: Final = "token"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
K8S_TIMEOUT: Final = 30.0
_DNS_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


class TokenStore(Protocol):
    def save(self, token: GitHubToken) -> str | None:
        """Keep the token; return where it went (None when there is nothing to name)."""

    def remove(self) -> bool:
        """Delete the token; False when there was none."""

    @property
    def where(self) -> str: ...


def open_store(kind: str, settings: Settings, kube_env: Mapping[str, str]) -> TokenStore:
    """The store `kind`; `kube_env` holds the Kubernetes client's own variables (`KUBECONFIG`,
    `KUBERNETES_SERVICE_HOST`), which choose the cluster the k8s-secret store talks to."""
    if kind == "file":
        return FileStore(file_store_path(settings))
    if kind == "k8s-secret":
        return SecretStore(settings.k8s_namespace, kube_env)
    if kind == "stdout":
        return StdoutStore(sys.stdout)
    raise InvalidInput(f"unknown token store {kind!r}; choose one of {', '.join(STORES)}")


class FileStore:
    """A file only its owner can read, in a folder only its owner can enter, replaced atomically.

    The temporary file is created 0600 (`mkstemp`) before a byte is written, so the token is never readable
    by others even briefly, whatever the umask; fsync before rename and of the folder after it mean a crash
    leaves the old token or the new one, never a truncated file.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def where(self) -> str:
        return str(self.path)

    def save(self, token: GitHubToken) -> str:
        folder = self.path.parent
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask, and an older folder may be looser
        except OSError as exc:
            raise Unavailable(f"cannot write the token file in {folder}: {exc.strerror}") from None
        try:
            write_atomic(self.path, (token.reveal() + "\n").encode(), mode=0o600)
        except OSError as exc:
            raise Unavailable(f"cannot write the token file {self.path}: {exc.strerror}") from None
        return str(self.path)

    def remove(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise Unavailable(f"cannot remove the token file {self.path}: {exc.strerror}") from None
        fsync_path(self.path.parent)
        return True


class StdoutStore:
    """Prints the token for piping into another secret manager; keeps nothing, so there is nothing to remove."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    @property
    def where(self) -> str:
        return "stdout"

    def save(self, token: GitHubToken) -> None:
        print(token.reveal(), file=self.stream, flush=True)
        return None

    def remove(self) -> bool:
        raise InvalidInput("the stdout store keeps nothing, so there is nothing to remove")


class SecretStore:
    """The Secret `memory-mcp-github-token` (key `token`) that the deployment mounts as the token file.

    Configuration: `KUBECONFIG` when set (an explicit choice wins), else the in-cluster service account when
    running in a pod, else `~/.kube/config`. Login creates the Secret, or on 409 AlreadyExists patches only our
    key and label, so annotations or other keys that tools such as Argo CD added survive. Logout deletes it
    unless another tool's managed-by label claims it (that tool would only recreate it); an unlabelled Secret
    is ours by name, as when made by hand with kubectl (docs/operations.md, option C).
    """

    def __init__(self, namespace: str, env: Mapping[str, str]) -> None:
        if not _DNS_LABEL.fullmatch(namespace):
            raise InvalidInput(f"namespace {namespace!r} is not a valid Kubernetes namespace name")
        self.namespace = namespace
        self.api, self.server = _core_api(env)

    @property
    def where(self) -> str:
        return f"Secret {self.namespace}/{SECRET_NAME} at {self.server}"

    def save(self, token: GitHubToken) -> str:
        from kubernetes.client import V1ObjectMeta, V1Secret
        from kubernetes.client.exceptions import ApiException

        data = {SECRET_KEY: base64.b64encode(token.reveal().encode()).decode()}
        secret = V1Secret(
            metadata=V1ObjectMeta(name=SECRET_NAME, namespace=self.namespace, labels={MANAGED_BY_LABEL: APP}),
            type="Opaque",
            data=data,
        )
        with self._calls("store the token in"):
            try:
                self.api.create_namespaced_secret(self.namespace, secret, _request_timeout=K8S_TIMEOUT)
            except ApiException as exc:
                if exc.status != 409:
                    raise
                patch = {"metadata": {"labels": {MANAGED_BY_LABEL: APP}}, "data": data}
                self.api.patch_namespaced_secret(
                    SECRET_NAME, self.namespace, patch, _request_timeout=K8S_TIMEOUT
                )
        return self.where

    def remove(self) -> bool:
        from kubernetes.client.exceptions import ApiException

        with self._calls("remove the token from"):
            try:
                found = self.api.read_namespaced_secret(
                    SECRET_NAME, self.namespace, _request_timeout=K8S_TIMEOUT
                )
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
            manager = ((found.metadata.labels if found.metadata else None) or {}).get(MANAGED_BY_LABEL, APP)
            if manager != APP:
                raise Conflict(f"{self.where} is managed by {manager}; remove it there, not with memory-mcp")
            try:
                self.api.delete_namespaced_secret(SECRET_NAME, self.namespace, _request_timeout=K8S_TIMEOUT)
            except ApiException as exc:
                if exc.status == 404:
                    return False
                raise
        return True

    @contextlib.contextmanager
    def _calls(self, doing: str):
        """Turn client failures into our errors, built from the API's Status message only: the client's own
        exception text dumps whole response bodies and headers."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            yield
        except ApiException as exc:
            message = f"cannot {doing} {self.where}: {_status_message(exc)}"
            raise (NotFound if exc.status == 404 else Unavailable)(message) from None
        except (HTTPError, OSError) as exc:
            raise Unavailable(f"cannot {doing} {self.where}: {getattr(exc, 'reason', None) or exc}") from None


def _status_message(exc: Any) -> str:
    """The `message` of the Kubernetes Status object in the error body, else the HTTP status and reason."""
    try:
        status = json.loads(exc.body)
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            return f"{status['message']} (HTTP {exc.status})"
    except (TypeError, ValueError):
        pass
    return f"HTTP {exc.status} {exc.reason or ''}".strip()


def _core_api(env: Mapping[str, str]) -> tuple[Any, str]:
    """A CoreV1Api on its own ApiClient (never the client library's process-wide default), and its server URL."""
    from kubernetes import client, config

    kubeconfig = env.get("KUBECONFIG")
    try:
        if not kubeconfig and env.get("KUBERNETES_SERVICE_HOST"):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            api_client = client.ApiClient(configuration)
        else:
            path = kubeconfig or os.path.expanduser("~/.kube/config")
            api_client = config.new_client_from_config(config_file=path, persist_config=False)
    except config.ConfigException as exc:
        where = "KUBECONFIG, in-cluster or ~/.kube/config"
        raise Unavailable(f"no usable Kubernetes configuration ({where}): {exc}") from None
    return client.CoreV1Api(api_client), api_client.configuration.host
