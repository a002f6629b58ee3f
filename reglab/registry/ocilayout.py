"""A real multi-platform image, made offline: an OCI image layout written by reglab.

A multi-platform image is an **index** (``application/vnd.oci.image.index.v1+json``) that names
one manifest per platform; a client picks its platform's manifest from it. Those platform
manifests have no tag of their own: only the index is tagged. That is what garbage collection's
``--delete-untagged`` must understand (registry 3 does; 2.8 does not).

:func:`write_layout` writes such an image as an OCI image layout (a folder: ``oci-layout``,
``index.json``, ``blobs/sha256/...``) with one tiny layer per platform: a tar holding one file
that names the platform. Everything is deterministic (fixed times, owners and gzip header), so the
digests are the same on every machine and every run. skopeo pushes the folder as it is
(:func:`copy_command`), and pulls one platform back (:func:`pull_command`); no network and no
Docker Hub are needed. From a terminal: ``python -m reglab.registry.ocilayout FOLDER TAG``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
#: The annotation that gives an index.json entry its tag (what ``oci:DIR:TAG`` names).
REF_NAME = "org.opencontainers.image.ref.name"
#: The two platforms of the workshop's multi-platform image.
PLATFORMS = ("linux/amd64", "linux/arm64")


@dataclass(frozen=True)
class Blob:
    """One content-addressed blob: its media type, digest and bytes."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return f"sha256:{hashlib.sha256(self.data).hexdigest()}"

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": len(self.data),
            **extra,
        }


@dataclass(frozen=True)
class PlatformImage:
    """One platform's manifest and the blobs it names (its config and its one layer)."""

    platform: str
    manifest: Blob
    config: Blob
    layer: Blob

    @property
    def blobs(self) -> tuple[str, ...]:
        """Every digest this platform adds to the registry: manifest, config, layer."""
        return (self.manifest.digest, self.config.digest, self.layer.digest)


@dataclass(frozen=True)
class Layout:
    """An OCI image layout on disk: a tagged index of one image per platform."""

    folder: Path
    tag: str
    index: Blob
    images: tuple[PlatformImage, ...]

    @property
    def children(self) -> dict[str, str]:
        """Platform ("linux/arm64"): the digest of its manifest."""
        return {image.platform: image.manifest.digest for image in self.images}


def platform_image(platform: str) -> PlatformImage:
    """The image of one platform: a layer holding the file ``platform`` (its name), the config
    that says which os and architecture it is for, and the manifest that names both."""
    os_name, _, architecture = platform.partition("/")
    tar = _tar({"platform": f"{platform}\n".encode()})
    layer = Blob(LAYER_TYPE, gzip.compress(tar, mtime=0))
    config = Blob(
        CONFIG_TYPE,
        _json(
            {
                "architecture": architecture,
                "os": os_name,
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [Blob("", tar).digest]},
            }
        ),
    )
    manifest = Blob(
        MANIFEST_TYPE,
        _json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST_TYPE,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
            }
        ),
    )
    return PlatformImage(platform, manifest, config, layer)


def write_layout(folder: Path, tag: str, platforms: tuple[str, ...] = PLATFORMS) -> Layout:
    """Write an OCI image layout of a multi-platform image tagged ``tag`` into ``folder``
    (replacing the index.json of an earlier one; blobs are content-addressed, so they stay)."""
    images = tuple(platform_image(p) for p in platforms)
    entries = [image.manifest.descriptor(platform=_platform(image.platform)) for image in images]
    index = Blob(
        INDEX_TYPE, _json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": entries})
    )
    blobs = folder / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for blob in (index, *(b for i in images for b in (i.manifest, i.config, i.layer))):
        (blobs / blob.digest.removeprefix("sha256:")).write_bytes(blob.data)
    (folder / "oci-layout").write_bytes(_json({"imageLayoutVersion": "1.0.0"}))
    top = {"schemaVersion": 2, "manifests": [index.descriptor(annotations={REF_NAME: tag})]}
    (folder / "index.json").write_bytes(_json(top))
    return Layout(folder, tag, index, images)


def copy_command(folder: str, tag: str, ref: str) -> list[str]:
    """``skopeo copy --all`` of the layout's ``tag`` to ``ref`` (HOST:PORT/REPO:TAG) over
    plain HTTP: the index and every platform's image, byte for byte."""
    return [
        "skopeo", "copy", "--all", "--retry-times=3", "--dest-tls-verify=false",
        f"oci:{folder}:{tag}", f"docker://{ref}",
    ]  # fmt: skip


def pull_command(ref: str, platform: str, folder: str) -> list[str]:
    """``skopeo copy`` of one platform of ``ref`` into a ``dir:`` folder: what a client of that
    platform pulls (skopeo picks the manifest from the index and checks every digest)."""
    os_name, _, architecture = platform.partition("/")
    return [
        "skopeo", "copy", "--src-tls-verify=false",
        f"--override-os={os_name}", f"--override-arch={architecture}",
        f"docker://{ref}", f"dir:{folder}",
    ]  # fmt: skip


def pulled_digest(folder: Path) -> str:
    """The digest of the manifest a ``dir:`` copy holds: the platform manifest it pulled."""
    return f"sha256:{hashlib.sha256((folder / 'manifest.json').read_bytes()).hexdigest()}"


def _platform(platform: str) -> dict[str, str]:
    os_name, _, architecture = platform.partition("/")
    return {"architecture": architecture, "os": os_name}


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _tar(files: dict[str, bytes]) -> bytes:
    """A tar of ``files``, the same bytes every time (times 0, owner root, mode 0644)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def main(argv: list[str]) -> int:
    """``python -m reglab.registry.ocilayout FOLDER TAG``: write the layout, print its index."""
    if len(argv) != 2:
        print("usage: python -m reglab.registry.ocilayout FOLDER TAG", file=sys.stderr)
        return 2
    layout = write_layout(Path(argv[0]), argv[1])
    print(f"{layout.folder}:{layout.tag} index {layout.index.digest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

__all__ = [
    "INDEX_TYPE",
    "REF_NAME",
    "PLATFORMS",
    "Layout",
    "PlatformImage",
    "copy_command",
    "platform_image",
    "pull_command",
    "pulled_digest",
    "write_layout",
]
