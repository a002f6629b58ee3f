"""Deleting images from a registry, and collecting the garbage they leave.

Registry 3 deletes a **tag**: ``DELETE /v2/REPO/manifests/TAG`` removes that one tag, and the
manifest stays, reachable by its digest and its other tags. Both versions delete a manifest by
its **digest**, and every tag that points to it goes with it. Registry 2.8 has no tag delete
(it refuses one), so :func:`delete_tag` takes the digest route there, and says which tags went.
Nothing is freed on disk yet: the blobs stay until garbage collection.

:func:`collect` runs ``registry garbage-collect`` safely, as the distribution docs ask: never
while the registry accepts pushes (a blob uploaded during the mark phase would be swept). The
running registry is restarted read-only, the collector runs in a one-off container on the same
folder, and the registry restarts read-write. That restart matters too: a registry keeps an
in-memory cache of blob descriptors, and until it restarts it may still answer 200 for a blob
the collector deleted.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reglab.base.errors import AuthenticationRequired, ClientError, ConfigError, RegistryError
from reglab.base.versions import V3, RegistryVersion
from reglab.engine.oneoff import one_off, run_once
from reglab.engine.spec import ContainerSpec, Mount
from reglab.registry import attach
from reglab.registry.client import RegistryClient
from reglab.registry.container import Registry
from reglab.registry.disk import volume_file_bytes
from reglab.registry.workdir import Workdir

#: Where the blobs are, below /var/lib/registry.
BLOBS = "docker/registry/v2/blobs"
#: The collector's line for an untagged manifest: 2.8 prints the digest, registry 3 the
#: whole record ``{REPO DIGEST [TAGS]}``.
UNLINKED = r"manifest eligible for deletion: (?:\{\S+ )?(sha256:[0-9a-f]{64})"


@dataclass(frozen=True)
class Deleted:
    """What one delete removed: the tags that went, and the manifest's digest.

    ``manifest_deleted`` is False for registry 3's tag delete: the manifest stays (by digest,
    and by any other tag), so nothing becomes garbage unless that was its last tag."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    manifest_deleted: bool = True

    def describe(self) -> list[str]:
        """What happened, in a line or two a user reads."""
        if not self.manifest_deleted:
            return [
                f"untagged {self.repository}:{self.tags[0]} (it was {self.digest})",
                "the manifest stays: by its digest and any other tag",
            ]
        return [
            f"deleted {self.repository}@{self.digest}",
            f"tags that went with it: {', '.join(self.tags)}",
        ]


def tags_of(api: RegistryClient, repository: str, digest: str) -> list[str]:
    """The tags of ``repository`` that point to ``digest`` (each asked by HEAD)."""
    return [t for t in api.tags(repository) if api.manifest_digest(repository, t) == digest]


def delete_tag(
    api: RegistryClient, repository: str, tag: str, version: RegistryVersion = V3
) -> Deleted:
    """Delete ``repository:tag`` the way ``version`` can: registry 3 removes that one tag
    (:func:`untag`); 2.8, which has no tag delete, deletes the image by its digest, and every
    tag of it goes (:func:`delete_image`)."""
    if version.v3:
        return untag(api, repository, tag)
    return delete_image(api, repository, tag)


def untag(api: RegistryClient, repository: str, tag: str) -> Deleted:
    """Registry 3's tag delete: ``tag`` goes, the manifest and its other tags stay.

    CLI: ``curl -X DELETE .../v2/REPO/manifests/TAG``.
    """
    digest = _digest_of(api, repository, tag)
    api.delete_manifest(repository, tag)
    return Deleted(repository, digest, (tag,), manifest_deleted=False)


def delete_image(api: RegistryClient, repository: str, tag: str) -> Deleted:
    """Delete the image ``repository:tag`` points to, by its digest: the manifest and every
    tag that points to it go (listed first, to say which).

    CLI: ``curl -X DELETE .../v2/REPO/manifests/DIGEST`` after a HEAD for the digest.
    """
    digest = _digest_of(api, repository, tag)
    going = tags_of(api, repository, digest)
    api.delete_manifest(repository, digest)
    return Deleted(repository, digest, tuple(going))


def _digest_of(api: RegistryClient, repository: str, tag: str) -> str:
    """The digest ``repository:tag`` points to; a one-line error naming the tags there are."""
    try:
        return api.manifest_digest(repository, tag)
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


def _known_tags(api: RegistryClient, repository: str) -> list[str]:
    try:
        return api.tags(repository)
    except ClientError:
        return []


@dataclass(frozen=True)
class Collection:
    """What one garbage collection did: bytes of blobs before and after, the blobs the
    collector named, and the untagged manifests it unlinked (``--delete-untagged``)."""

    before: int
    after: int
    eligible: tuple[str, ...]
    dry_run: bool
    manifests: tuple[str, ...] = ()
    #: For each watched blob, what HEAD answered: before the sweep, after it (the same registry
    #: process, read-only), and after the restart.
    watched: dict[str, tuple[int, int, int]] = dataclasses.field(default_factory=dict)
    #: Attachments (SBOMs, signatures) whose image was gone, deleted before the sweep (with
    #: a dry run: that would be); None when the registry asked for a login reglab lacked.
    orphans: tuple[str, ...] | None = ()

    @property
    def reclaimed(self) -> int:
        return self.before - self.after


def blob_bytes(paths: Workdir) -> int:
    """Bytes of every blob stored in ``registry-data`` (what garbage collection frees)."""
    blobs = paths.storage / "blobs"
    return sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file()) if blobs.is_dir() else 0


def stored_blob_bytes(registry: Registry) -> int:
    """Bytes of every blob the registry stores, in registry-data/ or in its named volume."""
    source = registry.data_source()
    if isinstance(source, str):
        return volume_file_bytes(registry.engine, source, BLOBS)
    return blob_bytes(registry.config.paths)


def collect(
    registry: Registry,
    dry_run: bool = False,
    delete_untagged: bool = False,
    watch: Sequence[tuple[str, str]] = (),
) -> Collection:
    """Collect the registry's garbage safely (see the module's docstring); return the bytes.

    The collector is :func:`collector_spec`'s one-off container. ``delete_untagged`` also
    removes manifests no tag points to. Registry 3 keeps the platform manifests an index
    names; 2.8 counts only tags, so it removes them (and their blobs) and leaves the index
    pointing to nothing: on 2.8, use it only where no multi-platform image is stored.

    ``watch``: (repository, digest) of blobs to ask for with HEAD before the sweep, after it and
    after the restart; this shows the stale cache the restart clears (notebook 05).
    """
    config = registry.config
    collector = collector_spec(registry, dry_run, delete_untagged)
    orphans = _prune(registry, dry_run)
    before = stored_blob_bytes(registry)
    if not dry_run:  # no push may land while blobs are swept
        Registry(dataclasses.replace(config, read_only=True), registry.engine).start()
    seen_before = _heads(registry, watch)
    try:
        output = run_once(
            registry.engine,
            collector,
            what="the garbage collector failed",
            fix=f"read its output above, and 'docker logs {config.name}'",
            error=RegistryError,
        )
        seen_after = _heads(registry, watch)
    finally:
        if not dry_run:  # read-write again, and a new process: its blob cache starts empty
            Registry(config, registry.engine).start()
    seen_restarted = _heads(registry, watch)
    eligible = eligible_blobs(output)
    manifests = tuple(dict.fromkeys(re.findall(UNLINKED, output)))
    watched = {
        digest: (seen_before[i], seen_after[i], seen_restarted[i])
        for i, (_, digest) in enumerate(watch)
    }
    after = stored_blob_bytes(registry)
    return Collection(before, after, eligible, dry_run, manifests, watched, orphans)


def _prune(registry: Registry, dry_run: bool) -> tuple[str, ...] | None:
    """The attachments of deleted images, deleted through the API while it still takes
    deletes (before the read-only restart); None when it asks for a login."""
    try:
        with registry.client() as api:
            return attach.prune_orphans(api, dry_run)
    except AuthenticationRequired:
        return None


def eligible_blobs(output: str) -> tuple[str, ...]:
    """The blobs the collector named ("blob eligible for deletion: sha256:..."), once each."""
    found = re.findall(r"blob eligible for deletion: (sha256:[0-9a-f]{64})", output)
    return tuple(dict.fromkeys(found))


def collector_spec(
    registry: Registry, dry_run: bool = False, delete_untagged: bool = False
) -> ContainerSpec:
    """``registry garbage-collect`` in a one-off container of the registry's image, on the
    registry's storage (read-only for a dry run). One-line errors when the registry keeps its
    data where a collector cannot reach it."""
    config, paths = registry.config, registry.config.paths
    source = registry.data_source()
    if source is None:
        raise ConfigError(
            f"registry {config.name} keeps its data in an anonymous volume (the local stage)",
            "collect garbage on a registry with registry-data: reglab up persistent (or tls, auth)",
        )
    if isinstance(source, Path) and source != paths.data:
        raise ConfigError(
            f"registry {config.name} stores its data in {source}, not in {paths.data}",
            f"give the folder it was started with: --workdir {source.parent}",
        )
    flags = ["--dry-run"] * dry_run + ["--delete-untagged"] * delete_untagged
    return one_off(
        config.image,
        ("garbage-collect", config.version.config_path, *flags),
        entrypoint=("/bin/registry",),
        mounts=(Mount(source, "/var/lib/registry", read_only=dry_run),),
    )


def _heads(registry: Registry, watch: Sequence[tuple[str, str]]) -> list[int]:
    if not watch:
        return []
    with registry.client() as api:
        return [api.blob_status(repository, digest) for repository, digest in watch]


__all__ = [
    "Collection",
    "Deleted",
    "blob_bytes",
    "collect",
    "collector_spec",
    "delete_image",
    "delete_tag",
    "eligible_blobs",
    "stored_blob_bytes",
    "tags_of",
    "untag",
]
