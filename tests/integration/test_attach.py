"""Attachments (an SBOM, a signature) on an image, through OCI 1.1's ``subject`` and the
referrers fall-back tag, against the real registry on both versions: neither has a referrers
API (404), the fall-back index lists what is attached, two writers at once both stay listed,
and what garbage collection does to attachments, live and orphaned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from common import MakeRegistry
from docker import DockerClient

import reglab
from reglab.base.errors import ClientError, ConfigError
from reglab.engine import transfer
from reglab.registry import attach, gc
from reglab.registry.referrers import fallback_tag

pytestmark = pytest.mark.docker
SBOM = json.dumps({"spdxVersion": "SPDX-2.3", "name": "hello-world"}).encode()


@pytest.fixture(params=["3", "2"], ids=["v3", "v2.8"])
def registry_version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pushed(engine: DockerClient, registry: reglab.Registry, repository: str) -> str:
    ref = registry.ref(repository)
    transfer.tag(engine, "hello-world", ref)
    try:
        return transfer.push(engine, ref)
    finally:
        transfer.remove(engine, ref)


def test_an_attachment_is_listed_by_the_fallback_tag_where_the_api_answers_404(
    engine: DockerClient, make_registry: MakeRegistry
) -> None:
    registry = make_registry("persistent")
    digest = pushed(engine, registry, "hello-world")
    with registry.client() as api:
        with pytest.raises(ClientError) as missing:
            api.request("GET", f"/v2/hello-world/referrers/{digest}")
        assert missing.value.status == 404  # no referrers API, on 2.8 and on 3.1
        sbom = attach.attach(api, "hello-world", "latest", SBOM, attach.SPDX_JSON, attach.SPDX_JSON)
        found = attach.referrers(api, "hello-world", "latest")
        assert found.via == f"the fall-back tag {fallback_tag(digest)}"
        assert [d["digest"] for d in found.of_type(attach.SPDX_JSON)] == [sbom]
        assert attach.fetch(api, "hello-world", sbom) == SBOM
        manifest = api.manifest("hello-world", sbom)
        assert manifest["subject"]["digest"] == digest  # the image it is about
        assert api.manifest_digest("hello-world", "latest") == digest  # the image is unchanged
        again = attach.attach(
            api, "hello-world", "latest", SBOM, attach.SPDX_JSON, attach.SPDX_JSON
        )
        assert again == sbom  # the same file attached twice: one entry
        assert len(attach.referrers(api, "hello-world", "latest").descriptors) == 1
        other = attach.attach(api, "hello-world", "latest", b"x", "test/x", "a/b")
        api.delete_manifest("hello-world", other)  # deleted, not detached: the index names it
        third = attach.attach(api, "hello-world", "latest", b"y", "test/y", "a/b")  # still works
        listed = [d["digest"] for d in attach.referrers(api, "hello-world", "latest").descriptors]
        assert listed == [sbom, third]  # the deleted one dropped from the index
        attach.detach(api, "hello-world", "latest", third)
        assert [
            d["digest"] for d in attach.referrers(api, "hello-world", "latest").descriptors
        ] == [sbom]


def test_two_attachments_at_once_are_both_listed(
    engine: DockerClient, make_registry: MakeRegistry
) -> None:
    """Each writer reads the index, adds itself and writes it back; the later write would hide
    the earlier one but for the check after each write."""
    registry = make_registry("persistent")
    pushed(engine, registry, "hello-world")
    digests: list[str] = []

    def one(n: int) -> None:
        with registry.client() as api:
            data = json.dumps({"n": n, "pad": "x" * n}).encode()
            digests.append(attach.attach(api, "hello-world", "latest", data, f"test/{n}", "a/b"))

    for _ in range(3):  # a race is a matter of timing: several rounds of eight writers
        threads = [
            threading.Thread(target=one, args=(n,)) for n in range(len(digests), len(digests) + 8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    with registry.client() as api:
        listed = {d["digest"] for d in attach.referrers(api, "hello-world", "latest").descriptors}
    assert len(digests) == 24 and listed == set(digests)


def test_collection_keeps_live_attachments_and_removes_orphans(
    engine: DockerClient, make_registry: MakeRegistry, registry_version: str
) -> None:
    """reglab gc first removes the attachments whose image is gone (and their fall-back
    index), then collects: their blobs go; the live image's SBOM, listed in its index, stays
    (on registry 3 even with --delete-untagged, which keeps an index's children)."""
    registry = make_registry("persistent")
    live = pushed(engine, registry, "hello-world")
    with registry.client() as api:
        kept = attach.attach(api, "hello-world", "latest", SBOM, attach.SPDX_JSON, attach.SPDX_JSON)
        gone_image = pushed_other(engine, registry)
        orphan = attach.attach(api, "other", "latest", b"orphan sbom", attach.SPDX_JSON, "a/b")
        orphan_blob = api.manifest("other", orphan)["layers"][0]["digest"]
        api.delete_manifest("other", gone_image)  # the image goes; its SBOM stays behind
    done = gc.collect(registry, delete_untagged=registry_version == "3")
    assert done.orphans == (orphan,)
    with registry.client() as api:
        assert attach.fetch(api, "hello-world", kept) == SBOM  # bytes and digest checked
        assert api.manifest_digest("hello-world", "latest") == live
        with pytest.raises(ClientError) as missing:
            api.manifest("other", orphan)
        assert missing.value.status == 404
        assert fallback_tag(gone_image) not in api.tags("other")
    assert orphan_blob in done.eligible  # the orphan's file was swept from the store


def pushed_other(engine: DockerClient, registry: reglab.Registry) -> str:
    return pushed(engine, registry, "other")


def test_bad_attachments_are_one_line(engine: DockerClient, make_registry: MakeRegistry) -> None:
    registry = make_registry("persistent")
    with registry.client() as api:
        with pytest.raises(ClientError, match="answered 404"):
            attach.attach(api, "nothing-here", "latest", SBOM, attach.SPDX_JSON, attach.SPDX_JSON)
        with pytest.raises(ConfigError, match="empty"):
            attach.attach(api, "nothing-here", "latest", b"", attach.SPDX_JSON, attach.SPDX_JSON)


def test_attach_writes_nothing_for_a_missing_image(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    registry = make_registry("persistent")
    with registry.client() as api, pytest.raises(ClientError):
        attach.referrers(api, "nothing-here", "latest")
    assert not (registry.config.paths.storage / "repositories" / "nothing-here").exists()


def test_reglab_sbom_attaches_syfts_sbom_and_its_typed_lines_do_the_same(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    """reglab sbom: syft's SPDX of the image, attached; its lines typed in bash (syft, oras
    attach, oras tag) attach the same file again, which oras discover and reglab referrers
    both list."""
    registry = make_registry("persistent", workdir=tmp_path / "workdir")
    digest = pushed(engine, registry, "hello-world")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REGLAB_")}  # a terminal
    # REGLAB_WORKDIR names the registry's folder, absolute: the lines then say
    # "$REGLAB_WORKDIR/...", which oras takes only with --disable-path-validation
    env = {**clean, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "REGLAB_NAME": registry.config.name,
           "REGLAB_WORKDIR": str(tmp_path / "workdir")}  # fmt: skip
    made = subprocess.run([sys.executable, "-m", "reglab", "sbom", "hello-world"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert made.returncode == 0, made.stderr
    sbom_file = tmp_path / "workdir" / "sbom" / "hello-world-latest.spdx.json"
    assert json.loads(sbom_file.read_text())["spdxVersion"].startswith("SPDX-")
    attached = made.stdout.splitlines()[-1].removeprefix("attached as ")
    with registry.client() as api:
        assert attach.fetch(api, "hello-world", attached) == sbom_file.read_bytes()
        attach.detach(api, "hello-world", "latest", attached)  # the typed lines attach again
    typed = [line[2:] for line in made.stdout.splitlines() if line.startswith("$ ")]
    assert '"$REGLAB_WORKDIR/sbom/hello-world-latest.spdx.json"' in typed[1]
    script = "set -euo pipefail\n" + "\n".join(typed) + "\n"
    again = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0, script + again.stderr
    with registry.client() as api:
        found = attach.referrers(api, "hello-world", "latest")
        oras_digest = next(d["digest"] for d in found.of_type(attach.SPDX_JSON)
                           if d["digest"] != attached)  # fmt: skip
        assert attach.fetch(api, "hello-world", oras_digest) == sbom_file.read_bytes()
        tags = api.tags("hello-world")
    assert f"{fallback_tag(digest)}.{oras_digest[7:23]}" in tags  # oras tag: its own tag
    listed = subprocess.run(
        ["oras", "discover", "--plain-http", "--format", "json", registry.ref("hello-world")],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert oras_digest in listed.stdout  # oras reads the same fall-back index
    referrers = subprocess.run([sys.executable, "-m", "reglab", "referrers", "hello-world"],
                               env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert f"from the fall-back tag {fallback_tag(digest)}" in referrers.stdout
    assert oras_digest in referrers.stdout
    wrong = subprocess.run([sys.executable, "-m", "reglab", "sbom", "nothing:1"], cwd=tmp_path,
                           env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert wrong.returncode == 1 and len(wrong.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "workdir" / "sbom" / "nothing-1.spdx.json").exists()
