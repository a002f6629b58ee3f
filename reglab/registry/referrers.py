"""What points at an image (an SBOM, a signature) on a registry without a referrers API.

OCI distribution 1.1 lets a manifest name the image it is about in its ``subject``, and a
registry list those manifests at ``GET /v2/NAME/referrers/DIGEST``. distribution, 2.8 and 3.x,
has no such endpoint (404). The spec's fall-back is kept by the client instead: an image index
tagged ``sha256-<hex of the subject>`` whose ``manifests`` are the descriptors of the
referrers ("Referrers Tag Schema" in the distribution spec; the same index the API would
answer). Whoever attaches something reads that index, adds its descriptor and pushes it back.

The index's rules, pure (no registry here): the tag for a subject, the descriptor of a
referrer, and the index with one descriptor added or removed, written the same way every
time so that a reader and a writer agree byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from reglab.base.errors import ConfigError

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
#: A digest as the image spec writes it: ``algorithm:encoded``.
DIGEST = re.compile(r"^(?P<alg>[a-z0-9]+(?:[+._-][a-z0-9]+)*):(?P<hex>[a-zA-Z0-9=_-]+)$")


def fallback_tag(subject: str) -> str:
    """The tag that holds the referrers of ``subject``: the algorithm cut to 32 characters, a
    dash, the encoded part cut to 64, every character a tag may not hold replaced by a dash
    (the spec's "Referrers Tag Schema"; ``sha256:abc...`` gives ``sha256-abc...``)."""
    match = DIGEST.match(subject)
    if match is None:
        raise ConfigError(
            f"not a digest: {subject!r}",
            "give the subject as algorithm:hex, for example sha256:<64 hex digits>",
        )
    return re.sub(r"[^a-zA-Z0-9._-]", "-", f"{match['alg'][:32]}-{match['hex'][:64]}")


def descriptor(
    manifest: bytes,
    artifact_type: str,
    annotations: dict[str, str] | None = None,
    media_type: str = MANIFEST_TYPE,
) -> dict[str, Any]:
    """The descriptor of a referrer's manifest, as the index lists it: its media type,
    digest and size, and its ``artifactType`` (what it is: an SBOM's, a signature's), with
    the manifest's annotations, so a client can choose without fetching it."""
    found: dict[str, Any] = {
        "mediaType": media_type,
        "digest": f"sha256:{hashlib.sha256(manifest).hexdigest()}",
        "size": len(manifest),
        "artifactType": artifact_type,
    }
    if annotations:
        found["annotations"] = dict(sorted(annotations.items()))
    return found


def empty_index() -> dict[str, Any]:
    return {"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": []}


def read_index(data: bytes | None) -> dict[str, Any]:
    """The fall-back index from its bytes (None: no such tag yet, an empty index). Anything
    that is not an image index is one line: the tag holds something else."""
    if data is None:
        return empty_index()
    try:
        index = json.loads(data)
    except ValueError:
        index = None
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list):
        raise ConfigError(
            "the referrers tag holds something that is not an image index",
            "another tool uses that tag: move it aside, then attach again",
        )
    return index


def with_referrer(index: dict[str, Any], referrer: dict[str, Any]) -> dict[str, Any]:
    """``index`` with ``referrer`` listed once (a second attach of the same manifest changes
    nothing), in the order they were added."""
    manifests = [m for m in index["manifests"] if m.get("digest") != referrer["digest"]]
    return {**index, "manifests": [*manifests, referrer]}


def without(index: dict[str, Any], digests: set[str]) -> dict[str, Any]:
    """``index`` without the referrers ``digests`` name (their manifests were deleted)."""
    return {**index, "manifests": [m for m in index["manifests"] if m["digest"] not in digests]}


def index_bytes(index: dict[str, Any]) -> bytes:
    """The index as pushed: keys in a fixed order, no spaces, so the same list gives the same
    digest whoever writes it."""
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


__all__ = [
    "INDEX_TYPE", "MANIFEST_TYPE", "descriptor", "empty_index", "fallback_tag", "index_bytes",
    "read_index", "with_referrer", "without",
]  # fmt: skip
