"""Every digest a registry serves, listed: ``repository@digest`` of each manifest (an index's
platform manifests included) and of each blob they name.

Before an upgrade (notebook 10), the lists say what the new registry must serve, digest by
digest, and the same lists check it again after a rollback. From a terminal::

    python -m reglab.registry.inventory http://127.0.0.1:5000 workdir/upgrade

writes ``manifests.txt`` and ``blobs.txt`` in the folder, one reference per line, sorted.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from reglab.base.errors import ClientError, ReglabError
from reglab.base.files import write_atomic
from reglab.registry.client import RegistryClient

FILES = ("manifests.txt", "blobs.txt")


@dataclass
class Inventory:
    """Every digest a registry served: ``repository@digest`` of each manifest and each blob."""

    manifests: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)

    def write(self, folder: Path) -> tuple[Path, Path]:
        """The two lists, written atomically into ``folder``; return their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = (folder / FILES[0], folder / FILES[1])
        for path, refs in zip(paths, (self.manifests, self.blobs), strict=True):
            write_atomic(path, "".join(f"{r}\n" for r in refs).encode())
        return paths


def take(api: RegistryClient) -> Inventory:
    """Each repository of the catalog, each tag, its manifest and what it names."""
    found = Inventory()
    for repository in api.catalog():
        try:
            tags = api.tags(repository)
        except ClientError:  # every tag deleted (notebook 05): nothing left to serve
            continue
        for tag in tags:
            _add(api, found, repository, api.manifest_digest(repository, tag))
    found.manifests = sorted(set(found.manifests))
    found.blobs = sorted(set(found.blobs))
    return found


def _add(api: RegistryClient, found: Inventory, repository: str, digest: str) -> None:
    """A manifest and what it names: blobs, or (an index) the manifest of each platform."""
    manifest = api.manifest(repository, digest)
    found.manifests.append(f"{repository}@{digest}")
    for child in manifest.get("manifests", []):
        _add(api, found, repository, str(child["digest"]))
    for blob in [manifest.get("config"), *manifest.get("layers", [])]:
        if blob:
            found.blobs.append(f"{repository}@{blob['digest']}")


def main(argv: list[str]) -> int:
    """``python -m reglab.registry.inventory URL FOLDER [CA]``: one line on error."""
    if len(argv) not in (2, 3):
        print("usage: python -m reglab.registry.inventory URL FOLDER [CA.crt]", file=sys.stderr)
        return 2
    try:
        with RegistryClient(argv[0], ca=argv[2] if len(argv) == 3 else None) as api:
            found = take(api)
        found.write(Path(argv[1]))
    except (ReglabError, OSError) as exc:
        print(f"inventory: error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(found.manifests)} manifests and {len(found.blobs)} blobs listed in {argv[1]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

__all__ = ["FILES", "Inventory", "main", "take"]
