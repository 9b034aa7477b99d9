"""Check a docker-archive image made by image.nix against its contract; `nix flake check` runs it.

    python3 check-image.py IMAGE.tar[.gz] EXPECTED.json

EXPECTED.json holds `config` (the OCI config image-config.nix produced), `uid`, `gid` and `paths`: store
paths that must be inside the image (the program and the model). Exits non-zero naming every broken promise.
Standard library only.
"""

from __future__ import annotations

import json
import sys
import tarfile
from typing import Any


def read_image(path: str) -> tuple[dict[str, Any], dict[str, tarfile.TarInfo], dict[str, bytes]]:
    """The image's config, every file system entry across its layers (later layers win), and small files."""
    entries: dict[str, tarfile.TarInfo] = {}
    small: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as archive:
        manifest = json.load(archive.extractfile("manifest.json"))
        if len(manifest) != 1:
            raise SystemExit(f"expected one image in {path}, found {len(manifest)}")
        config = json.load(archive.extractfile(manifest[0]["Config"]))
        for layer_name in manifest[0]["Layers"]:
            with tarfile.open(fileobj=archive.extractfile(layer_name), mode="r:*") as layer:
                for member in layer:
                    name = member.name.removeprefix("./").rstrip("/")
                    entries[name] = member
                    if member.isfile() and name.startswith("etc/") and member.size < 65536:
                        small[name] = layer.extractfile(member).read()
    return config, entries, small


def problems(config: dict[str, Any], entries: dict[str, tarfile.TarInfo], small: dict[str, bytes],
             expected: dict[str, Any]) -> list[str]:
    found: list[str] = []
    want = expected["config"]
    got = config.get("config", {})
    for key in ("Entrypoint", "Cmd", "User", "WorkingDir", "ExposedPorts", "Volumes", "Labels"):
        if got.get(key) != want[key]:
            found.append(f"config {key} is {got.get(key)!r}, expected {want[key]!r}")
    missing_env = [e for e in want["Env"] if e not in (got.get("Env") or [])]
    if missing_env:
        found.append(f"config Env lacks {missing_env}")
    user = got.get("User", "")
    if not all(part.isdigit() and int(part) != 0 for part in user.split(":")):
        found.append(f"the image must run as a numeric non-root user, not {user!r}")
    for path in expected["paths"]:
        if path.lstrip("/") not in entries:
            found.append(f"{path} is not in the image")
    uid, gid = expected["uid"], expected["gid"]
    for directory in ("data", "data/repo", "data/cache"):
        entry = entries.get(directory)
        if entry is None or not entry.isdir():
            found.append(f"/{directory} is not a directory in the image")
        elif (entry.uid, entry.gid) != (uid, gid):
            found.append(f"/{directory} belongs to {entry.uid}:{entry.gid}, not {uid}:{gid}")
    tmp = entries.get("tmp")
    if tmp is None or not tmp.isdir() or tmp.mode & 0o1777 != 0o1777:
        found.append("/tmp must be a world-writable sticky directory")
    passwd = small.get("etc/passwd", b"").decode()
    if not any(line.split(":")[2:4] == [str(uid), str(gid)] for line in passwd.splitlines() if line.count(":") >= 3):
        found.append(f"/etc/passwd has no entry for {uid}:{gid}")
    if "etc/ssl/certs/ca-bundle.crt" not in entries:
        found.append("/etc/ssl/certs/ca-bundle.crt is missing")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[1]) as handle:
        expected = json.load(handle)
    config, entries, small = read_image(argv[0])
    found = problems(config, entries, small, expected)
    for problem in found:
        print(f"check-image: {problem}", file=sys.stderr)
    if not found:
        print(f"check-image: {argv[0]} keeps its contract ({len(entries)} entries)")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
