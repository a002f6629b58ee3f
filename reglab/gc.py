"""Deleting images from a registry (garbage collection will join it here).

A registry deletes a manifest by its **digest** only; a tag is refused. Deleting a digest removes
every tag that points to it, so :func:`delete_tag` first lists those tags, then deletes, and
says which went. Nothing is freed on disk yet: the blobs stay until garbage collection.
"""

from __future__ import annotations

from dataclasses import dataclass

from .client import RegistryClient
from .errors import ClientError


@dataclass(frozen=True)
class Deleted:
    """What one delete removed: the manifest's digest and every tag that pointed to it."""

    repository: str
    digest: str
    tags: tuple[str, ...]


def tags_of(api: RegistryClient, repository: str, digest: str) -> list[str]:
    """The tags of ``repository`` that point to ``digest`` (each asked by HEAD)."""
    return [t for t in api.tags(repository) if api.manifest_digest(repository, t) == digest]


def delete_tag(api: RegistryClient, repository: str, tag: str) -> Deleted:
    """Delete the image ``repository:tag`` points to (by its digest); return what went.

    CLI: ``curl -X DELETE .../v2/REPO/manifests/DIGEST`` after a HEAD for the digest.
    """
    try:
        digest = api.manifest_digest(repository, tag)
    except ClientError as exc:
        if exc.status != 404:
            raise
        known = _known_tags(api, repository)
        raise ClientError(
            f"{repository}:{tag} is not in the registry"
            + (f" (its tags: {', '.join(known)})" if known else ""),
            "check the name with 'reglab status' and the registry browser, or push it first",
            status=404,
        ) from exc
    going = tags_of(api, repository, digest)
    api.delete_manifest(repository, digest)
    return Deleted(repository, digest, tuple(going))


def _known_tags(api: RegistryClient, repository: str) -> list[str]:
    try:
        return api.tags(repository)
    except ClientError:
        return []
