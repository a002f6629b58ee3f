"""The OCI layout reglab writes offline (reglab.registry.ocilayout): the same bytes on every
run, every blob named by its digest, and an index that names each platform's manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from reglab.registry import ocilayout


def test_the_layout_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = ocilayout.write_layout(tmp_path / "a", "multi")
    again = ocilayout.write_layout(tmp_path / "b", "multi")
    assert first.index.digest == again.index.digest
    assert first.children == again.children


def test_every_blob_is_stored_under_its_digest_and_the_index_names_the_platforms(
    tmp_path: Path,
) -> None:
    layout = ocilayout.write_layout(tmp_path, "multi")
    blobs = tmp_path / "blobs" / "sha256"
    stored = {f"sha256:{p.name}" for p in blobs.iterdir()}
    expected = {layout.index.digest, *(d for image in layout.images for d in image.blobs)}
    assert stored == expected and len(expected) == 7
    for path in blobs.iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    top = json.loads((tmp_path / "index.json").read_text())
    entry = top["manifests"][0]
    assert (entry["digest"], entry["annotations"][ocilayout.REF_NAME]) == (
        layout.index.digest,
        "multi",
    )
    index = json.loads(layout.index.data)
    assert index["mediaType"] == ocilayout.INDEX_TYPE
    assert (
        {
            f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"]
        }
        == layout.children
        == dict(zip(ocilayout.PLATFORMS, layout.children.values(), strict=True))
    )
    arm = json.loads(layout.images[1].config.data)
    assert (arm["os"], arm["architecture"]) == ("linux", "arm64")
