"""Attach an artifact (an SBOM, a signature) to an image in a registry, and list what is
attached: OCI 1.1's ``subject``, with the referrers API where the registry has one and the
fall-back tag where it has not (distribution 2.8 and 3.1 answer 404: :mod:`.referrers`).

An attachment is an ordinary image manifest: the empty config (``{}``), one layer (the
file), an ``artifactType`` saying what it is, and ``subject``, the descriptor of the image it
is about. It is listed in the fall-back index tagged ``sha256-<hex of the subject>``, which
is what lets a reader (``oras discover``) find it. reglab also tags each attachment itself
(``sha256-<subject>.<its own digest, cut>``): the index is read, changed and written back by
each client, and that tag is what no other writer can lose (:func:`_settle_index`). The tags
also keep attachments through garbage collection, until their image is gone
(:func:`prune_orphans`).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from reglab.base.errors import ClientError, ConfigError
from reglab.base.wait import NotYet, poll
from reglab.registry.answers import MANIFEST_TYPES
from reglab.registry.client import RegistryClient
from reglab.registry.referrers import (
    INDEX_TYPE,
    MANIFEST_TYPE,
    descriptor,
    fallback_tag,
    index_bytes,
    read_index,
    with_referrer,
    without,
)

#: The OCI image spec's empty descriptor: the config of an artifact that has none.
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
#: What an SPDX SBOM is, as syft writes it and oras and cosign name it.
SPDX_JSON = "application/spdx+json"
#: How often a writer merges again when another's write hid its entry.
MERGES = 5


@dataclass(frozen=True)
class Referrers:
    """What is attached to one image, and how it was found."""

    subject: str
    descriptors: tuple[dict[str, Any], ...]
    #: "the referrers API" or "the fall-back tag sha256-..."
    via: str

    def of_type(self, artifact_type: str) -> list[dict[str, Any]]:
        return [d for d in self.descriptors if d.get("artifactType") == artifact_type]


def _put(api: RegistryClient, repository: str, reference: str, data: bytes, kind: str) -> str:
    api.request(
        "PUT",
        f"/v2/{repository}/manifests/{reference}",
        data=data,
        headers={"Content-Type": kind},
    )
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def subject_of(api: RegistryClient, repository: str, reference: str) -> dict[str, Any]:
    """The descriptor of ``repository:reference`` as the registry serves it (media type,
    digest and size of the very bytes it answers), for an attachment's ``subject``."""
    response = api.request(
        "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": MANIFEST_TYPES}
    )
    media_type = response.headers.get("Content-Type", MANIFEST_TYPE).split(";")[0]
    body = response.content
    return {
        "mediaType": media_type,
        "digest": f"sha256:{hashlib.sha256(body).hexdigest()}",
        "size": len(body),
    }


def artifact_manifest(
    subject: dict[str, Any],
    artifact_type: str,
    layer: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> bytes:
    """The manifest of one attached file, written the same way every time."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_TYPE, "digest": _digest(EMPTY), "size": len(EMPTY)},
        "layers": [layer],
        "subject": subject,
    }
    if annotations:
        manifest["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def attach(
    api: RegistryClient,
    repository: str,
    reference: str,
    data: bytes,
    artifact_type: str,
    media_type: str,
    annotations: dict[str, str] | None = None,
) -> str:
    """Attach ``data`` to ``repository:reference``; return the attachment's manifest digest.

    The file and the empty config go up as blobs, the manifest by digest, then under a tag of
    its own, ``sha256-<subject>.<16 hex of its digest>`` (cosign names its attachments the same
    way), and its descriptor into the fall-back index."""
    if not data:
        raise ConfigError("the file to attach is empty", "attach a file with content")
    subject = subject_of(api, repository, reference)
    api.upload_blob(repository, EMPTY)
    layer = {
        "mediaType": media_type,
        "digest": api.upload_blob(repository, data),
        "size": len(data),
    }
    manifest = artifact_manifest(subject, artifact_type, layer, annotations)
    digest = _put(api, repository, _digest(manifest), manifest, MANIFEST_TYPE)
    tag = fallback_tag(subject["digest"])
    _put(api, repository, f"{tag}.{digest.split(':')[1][:16]}", manifest, MANIFEST_TYPE)
    _settle_index(api, repository, tag)
    return digest


def _settle_index(api: RegistryClient, repository: str, tag: str) -> None:
    """Write the fall-back index until it lists every attachment tagged for its subject.

    Distribution has no conditional write: two clients that read the index, add their entry
    and write it back can each hide the other's. The attachments' own tags are the record that
    cannot be lost (each is written once, by its writer alone); a writer rewrites the index
    until, read back after its last write, it holds every one of them, entries written by
    other tools kept. The last write is then complete, whoever makes it."""
    for _ in range(MERGES):
        index = read_index(_index_at(api, repository, tag))
        listed = {m.get("digest") for m in index["manifests"]}
        missing = [d for d in _tagged(api, repository, tag) if d["digest"] not in listed]
        if not missing:
            return
        # The registry refuses an index naming a manifest it lacks (MANIFEST_BLOB_UNKNOWN):
        # an entry whose attachment someone deleted without detaching it is dropped.
        gone = {str(d) for d in listed if d and not _exists(api, repository, str(d))}
        index = without(index, gone)
        for entry in missing:
            index = with_referrer(index, entry)
        _put(api, repository, tag, index_bytes(index), INDEX_TYPE)
    raise ClientError(
        f"the fall-back tag {tag} still lacks attachments after {MERGES} writes",
        "another client rewrites that tag all the time: attach again once it is done",
    )


def _tagged(api: RegistryClient, repository: str, tag: str) -> list[dict[str, Any]]:
    """The descriptors of the attachments tagged ``TAG.*``, in tag order."""
    found = []
    for name in sorted(t for t in api.tags(repository) if t.startswith(f"{tag}.")):
        data = _manifest_bytes(api, repository, name, MANIFEST_TYPE)
        if data is None:  # deleted meanwhile (reglab gc of an orphan)
            continue
        manifest = json.loads(data)
        kind = str(manifest.get("artifactType", ""))
        found.append(descriptor(data, kind, manifest.get("annotations")))
    return found


def _index_at(api: RegistryClient, repository: str, tag: str) -> bytes | None:
    """The fall-back index's bytes, None when the tag does not exist yet."""
    return _manifest_bytes(api, repository, tag, INDEX_TYPE)


def _manifest_bytes(
    api: RegistryClient, repository: str, reference: str, accept: str
) -> bytes | None:
    """A manifest's bytes as served, None on 404. The filesystem driver writes a tag's link
    file in place: read while another client writes it, the registry answers 500 for a moment
    (seen with eight writers at once), so a 500 is asked again, for up to 5 s."""

    def ask() -> bytes | bool:
        try:
            response = api.request(
                "GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": accept}
            )
        except ClientError as exc:
            if exc.status == 404:
                return False
            if exc.status == 500:
                raise NotYet(str(exc)) from None
            raise
        return response.content

    found = poll(f"{repository}:{reference} to be readable", ask, timeout=5, interval=0.05)
    return found if isinstance(found, bytes) else None


def referrers(api: RegistryClient, repository: str, reference: str) -> Referrers:
    """What is attached to ``repository:reference``: the registry's referrers API when it
    answers, else the fall-back tag (its 404 is what says the registry has no such API)."""
    subject = subject_of(api, repository, reference)["digest"]
    try:
        answer = api.request("GET", f"/v2/{repository}/referrers/{subject}")
    except ClientError as exc:
        if exc.status != 404:
            raise
    else:
        if answer.headers.get("Content-Type", "").startswith(INDEX_TYPE):
            found = tuple(answer.json().get("manifests") or ())
            return Referrers(subject, found, "the referrers API")
    tag = fallback_tag(subject)
    index = read_index(_index_at(api, repository, tag))
    return Referrers(subject, tuple(index["manifests"]), f"the fall-back tag {tag}")


def detach(api: RegistryClient, repository: str, reference: str, attachment: str) -> None:
    """Remove one attachment: out of the fall-back index first, then its manifest (and with
    it its own tag). In the other order the index names a manifest that is gone, and the
    registry refuses every later write of it (``MANIFEST_BLOB_UNKNOWN``): ``oras attach``
    then fails for that image."""
    tag = fallback_tag(subject_of(api, repository, reference)["digest"])
    data = _index_at(api, repository, tag)
    if data is not None:
        _put(api, repository, tag, index_bytes(without(read_index(data), {attachment})), INDEX_TYPE)
    if _exists(api, repository, attachment):
        api.delete_manifest(repository, attachment)


#: A fall-back index's tag (:func:`fallback_tag` for a SHA-256 subject), or an attachment's.
FALLBACK_TAG = re.compile(r"^sha256-(?P<hex>[0-9a-f]{64})(?P<own>\.[0-9a-f]{16})?$")


def prune_orphans(api: RegistryClient, dry_run: bool = False) -> tuple[str, ...]:
    """Delete the attachments whose image is gone, and their fall-back index; return their
    digests (with ``dry_run``, only say which). Their tags would keep them forever."""
    orphans: list[str] = []
    for repository in api.catalog():
        subjects: dict[str, list[str]] = {}
        for tag in api.tags(repository):
            match = FALLBACK_TAG.match(tag)
            if match is not None:
                subjects.setdefault(f"sha256:{match['hex']}", []).append(tag)
        for subject, tags in sorted(subjects.items()):
            if _exists(api, repository, subject):
                continue
            index_tag = fallback_tag(subject)
            data = _index_at(api, repository, index_tag) if index_tag in tags else None
            listed = [str(m["digest"]) for m in read_index(data)["manifests"]]
            owned = [_digest_of(api, repository, t) for t in sorted(tags) if t != index_tag]
            found = [d for d in dict.fromkeys([*listed, *owned]) if d]
            orphans += found
            if dry_run:
                continue
            for digest in found:  # by digest: every tag of it goes too (2.8 as well)
                if _exists(api, repository, digest):
                    api.delete_manifest(repository, digest)
            if data is not None:
                api.delete_manifest(repository, _digest(data))
    return tuple(orphans)


def _digest_of(api: RegistryClient, repository: str, tag: str) -> str:
    data = _manifest_bytes(api, repository, tag, MANIFEST_TYPE)
    return _digest(data) if data is not None else ""


def _exists(api: RegistryClient, repository: str, digest: str) -> bool:
    try:
        api.manifest_digest(repository, digest)
    except ClientError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def fetch(api: RegistryClient, repository: str, attachment: str) -> bytes:
    """The file of one attachment (its manifest's only layer), checked against its digest."""
    manifest = api.manifest(repository, attachment)
    layers = manifest.get("layers") or []
    if len(layers) != 1:
        raise ClientError(
            f"{attachment} has {len(layers)} layers, not the one file of an attachment",
            "name an attachment's digest (reglab referrers lists them)",
        )
    data = api.request("GET", f"/v2/{repository}/blobs/{layers[0]['digest']}").content
    if _digest(data) != layers[0]["digest"]:
        raise ClientError(f"the file of {attachment} does not match its digest", "attach again")
    return data


__all__ = [
    "EMPTY", "EMPTY_TYPE", "FALLBACK_TAG", "Referrers", "SPDX_JSON", "artifact_manifest",
    "attach", "detach", "fetch", "prune_orphans", "referrers", "subject_of",
]  # fmt: skip
