"""Deleting images by digest, and the catalog read page by page, against the real registry."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from common import MakeRegistry, container_of, push_as
from docker import DockerClient
from test_cli import assert_one_line_error, run

import reglab
from reglab.base.settings import TOOLS_IMAGE
from reglab.base.versions import V2, V3
from reglab.engine import transfer
from reglab.registry import gc, ocilayout, replicate
from reglab.registry.answers import MANIFEST_TYPES
from reglab.registry.disk import SmallDisk

pytestmark = pytest.mark.docker


def test_on_3_a_tag_delete_untags_and_a_digest_delete_takes_every_tag(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("persistent")
    digest = push_as(engine, registry, "hello-world", "app", "v1", cleanup_images)
    assert push_as(engine, registry, "hello-world", "app", "v1-alias", cleanup_images) == digest
    assert push_as(engine, registry, "hello-world", "app", "v1-other", cleanup_images) == digest
    kept = push_as(engine, registry, TOOLS_IMAGE, "app", "v2", cleanup_images)
    with registry.client() as api:
        untagged = gc.delete_tag(api, "app", "v1", registry.config.version)
        assert (untagged.digest, untagged.tags, untagged.manifest_deleted) == (
            digest,
            ("v1",),
            False,
        )
        assert sorted(api.tags("app")) == ["v1-alias", "v1-other", "v2"]  # only that tag went
        assert api.manifest_digest("app", digest) == digest  # the manifest stays
        with pytest.raises(reglab.ClientError) as missing:
            api.manifest_digest("app", "v1")
        assert missing.value.status == 404

        deleted = gc.delete_image(api, "app", "v1-alias")
        assert (deleted.digest, set(deleted.tags)) == (digest, {"v1-alias", "v1-other"})
        assert deleted.describe()[1] == "tags that went with it: " + ", ".join(deleted.tags)
        assert api.tags("app") == ["v2"]
        with pytest.raises(reglab.ClientError) as gone:
            api.manifest_digest("app", digest)
        assert gone.value.status == 404
        api.verify_image("app", "v2")  # the other image is whole
        assert api.manifest_digest("app", "v2") == kept
        gc.untag(api, "app", "v2")  # its last tag: the manifest stays, untagged
        assert api.request("GET", "/v2/app/tags/list").json() == {"name": "app", "tags": []}
    assert registry.config.paths.blob(digest).is_file()  # nothing freed until collection
    assert gc.collect(registry, dry_run=True).manifests == ()
    assert gc.collect(registry, dry_run=True, delete_untagged=True).manifests == (kept,)


def test_on_2_8_a_tag_delete_is_refused_so_a_delete_goes_by_digest(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("persistent", version="2")
    digest = push_as(engine, registry, "hello-world", "app", "v1", cleanup_images)
    assert push_as(engine, registry, "hello-world", "app", "v1-alias", cleanup_images) == digest
    kept = push_as(engine, registry, TOOLS_IMAGE, "app", "v2", cleanup_images)
    with registry.client() as api:
        with pytest.raises(reglab.ClientError, match="DIGEST_INVALID") as by_tag:
            api.delete_manifest("app", "v1")  # 2.8 has no tag delete
        assert by_tag.value.status == 400
        assert api.manifest_digest("app", "v1") == digest  # nothing went

        deleted = gc.delete_tag(api, "app", "v1", registry.config.version)
        assert (deleted.digest, set(deleted.tags)) == (digest, {"v1", "v1-alias"})
        assert deleted.manifest_deleted
        assert api.tags("app") == ["v2"]
        for gone in ("v1", "v1-alias", digest):
            with pytest.raises(reglab.ClientError) as missing:
                api.manifest_digest("app", gone)
            assert missing.value.status == 404
        assert api.manifest_digest("app", "v2") == kept
        api.verify_image("app", "v2")  # the other image is whole
        gc.delete_tag(api, "app", "v2", registry.config.version)  # the last tag: 2.8 says null
        assert api.request("GET", "/v2/app/tags/list").json() == {"name": "app", "tags": None}
    # Nothing is freed yet: the deleted manifest's blob is still on disk, until collection.
    assert registry.config.paths.blob(digest).is_file()


def test_delete_from_the_command_line(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str], tmp_path: Path
) -> None:
    registry = make_registry("persistent")
    digest = push_as(engine, registry, "hello-world", "cli", "one", cleanup_images)
    push_as(engine, registry, "hello-world", "cli", "same", cleanup_images)
    args = ["--workdir", str(registry.config.workdir), "--name", registry.config.name]
    result = run("delete", "cli:one", *args)
    assert result.returncode == 0, result.stderr
    assert digest in result.stdout and "one" in result.stdout
    with registry.client() as api:  # registry 3 untags: the other tag, and the image, stay
        assert (api.tags("cli"), api.manifest_digest("cli", "same")) == (["same"], digest)

    assert_one_line_error(run("delete", "cli:one", *args), "cli:one is not in the registry")
    assert_one_line_error(run("delete", "cli", *args), "is not REPO:TAG")
    missing = ["--workdir", str(tmp_path), "--name", f"reglab-test-{uuid.uuid4().hex[:8]}"]
    assert_one_line_error(run("delete", "cli:one", *missing), "no registry named")
    foreign = engine.containers.create("hello-world", name=f"reglab-test-{uuid.uuid4().hex[:8]}")
    try:
        not_ours = ["--workdir", str(tmp_path), "--name", foreign.name]
        assert_one_line_error(run("delete", "cli:one", *not_ours), "was not created by reglab")
    finally:
        foreign.remove(force=True)


def test_delete_on_the_auth_stage_asks_for_a_login(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    moby = reglab.Credentials.generate("moby")
    registry = make_registry("auth", users=[moby])
    ref = registry.ref("private", "v1")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    transfer.push(engine, ref, auth=moby.auth_config())
    args = ["--workdir", str(registry.config.workdir), "--name", registry.config.name]
    assert_one_line_error(run("delete", "private:v1", *args), "asks for a login")
    result = run(
        "delete",
        "private:v1",
        *args,
        "--image",
        "--user",
        "moby",
        "--password-stdin",
        stdin=moby.password + "\n",
    )  # fmt: skip  (--image: by digest, every tag)
    assert result.returncode == 0, result.stderr
    assert "tags that went with it: v1" in result.stdout


def test_the_catalog_is_read_page_by_page(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("local")
    names = [f"paged/repo{n}" for n in range(5)]
    for name in names:
        push_as(engine, registry, "hello-world", name, "latest", cleanup_images)
    with registry.client() as api:
        assert api.catalog(page_size=2) == names  # three pages, followed by their Link headers
        assert api.catalog() == names
        with pytest.raises(reglab.ClientError, match="PAGINATION_NUMBER_INVALID"):
            api.request("GET", "/v2/_catalog?n=1001")  # why a page holds at most 1000


def test_collection_reclaims_exactly_what_only_the_deleted_image_used(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("persistent")
    old = push_as(engine, registry, "hello-world", "app", "old", cleanup_images)
    new = push_as(engine, registry, TOOLS_IMAGE, "app", "new", cleanup_images)
    with registry.client() as api:
        manifest = api.manifest("app", "old")
        head = api.request("HEAD", "/v2/app/manifests/old", headers={"Accept": MANIFEST_TYPES})
        only_old = [manifest["config"], *manifest["layers"]]
        expected = {old, *(blob["digest"] for blob in only_old)}
        expected_bytes = int(head.headers["Content-Length"]) + sum(b["size"] for b in only_old)
        gc.delete_image(api, "app", "old")
    before = gc.blob_bytes(registry.config.paths)

    dry = gc.collect(registry, dry_run=True)
    assert set(dry.eligible) == expected and dry.before == dry.after == before

    done = gc.collect(registry)
    assert set(done.eligible) == expected
    assert done.reclaimed == expected_bytes  # the manifest, config and layer of the old image
    assert container_of(registry).status == "running"
    with registry.client() as api:
        assert api.manifest_digest("app", "new") == new
        api.verify_image("app", "new")  # every blob of the kept image hashes right
        for blob in only_old:  # restarted: no stale cache answers 200 for a deleted blob
            with pytest.raises(reglab.ClientError) as gone:
                api.request("HEAD", f"/v2/app/blobs/{blob['digest']}")
            assert gone.value.status == 404


def test_a_read_only_registry_serves_pulls_and_refuses_pushes(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("persistent")
    push_as(engine, registry, "hello-world", "ro", "v1", cleanup_images)
    registry = make_registry("persistent", port=registry.config.port, name=registry.config.name,
                             read_only=True)  # fmt: skip
    with registry.client() as api:
        api.verify_image("ro", "v1")
    with pytest.raises(reglab.ImageError):
        push_as(engine, registry, TOOLS_IMAGE, "ro", "v2", cleanup_images)


def test_gc_from_the_command_line_and_its_refusals(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str], tmp_path: Path
) -> None:
    registry = make_registry("persistent")
    push_as(engine, registry, "hello-world", "cmd", "v1", cleanup_images)
    args = ["--workdir", str(registry.config.workdir), "--name", registry.config.name]
    assert run("delete", "cmd:v1", *args).returncode == 0
    kept = run("gc", "--dry-run", *args)  # registry 3 untagged it: its manifest is still there
    assert kept.returncode == 0 and "dry run: 0 blob(s) would be deleted" in kept.stdout
    dry = run("gc", "--dry-run", "--delete-untagged", *args)
    assert dry.returncode == 0 and "dry run: 3 blob(s) would be deleted" in dry.stdout, dry.stderr
    done = run("gc", "--delete-untagged", *args)
    assert done.returncode == 0, done.stderr
    assert "collected: 3 blob(s) deleted" in done.stdout and "reclaimed" in done.stdout
    assert "read-write again" in done.stdout

    elsewhere = ["--workdir", str(tmp_path / "other"), "--name", registry.config.name]
    assert_one_line_error(run("gc", *elsewhere), "stores its data in", "--workdir")
    local = make_registry("local")
    on_local = ["--workdir", str(tmp_path), "--name", local.config.name]
    assert_one_line_error(run("gc", *on_local), "anonymous volume")


def test_a_full_small_disk_refuses_then_collection_on_the_volume_makes_room(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    """The registry on a size-limited tmpfs volume (reglab.registry.disk): a blob that does not fit
    gets the registry's own error, what was stored stays whole, and after delete + gc (which
    restarts the registry twice: the keeper keeps the tmpfs) the same blob fits. The watched
    blob shows the stale descriptor cache: 200 after the sweep, 404 after the restart."""
    disk = SmallDisk(f"reglab-test-{uuid.uuid4().hex[:6]}-disk", 16).create(engine)
    try:
        registry = make_registry("persistent", data_volume=disk.name)
        digest = push_as(engine, registry, "hello-world", "app", "v1", cleanup_images)
        blob = os.urandom(8 << 20)
        with registry.client() as api:
            api.upload_blob("app", os.urandom(10 << 20))  # unreferenced: garbage to collect
            with pytest.raises(reglab.ClientError, match="no space left on device") as full:
                api.upload_blob("app", blob)
            assert full.value.status == 500
            api.verify_image("app", "v1")
            config = api.manifest("app", "v1")["config"]["digest"]
            gc.delete_image(api, "app", "v1")
        attached = reglab.Registry.attach(engine, registry.config.name, registry.config.workdir)
        assert attached.config.data_volume == disk.name
        done = gc.collect(attached, watch=[("app", config)])
        assert done.reclaimed >= 10 << 20 and digest in done.eligible
        assert done.watched[config] == (200, 200, 404)
        with attached.client() as api:
            assert api.upload_blob("app", blob).startswith("sha256:")  # it fits now
    finally:
        reglab.Registry(reglab.RegistryConfig(name=registry.config.name), engine).remove()
        disk.remove(engine)
    assert not [v for v in engine.volumes.list() if v.name == disk.name]


def test_a_small_disk_never_removes_a_volume_reglab_did_not_make(
    engine: DockerClient, workshop_images: dict[str, str]
) -> None:
    name = f"reglab-test-{uuid.uuid4().hex[:6]}-foreign"
    engine.volumes.create(name)  # a learner's volume of the same name
    try:
        with pytest.raises(reglab.NotOwned, match="not created by reglab"):
            SmallDisk(name, 4).create(engine)
        assert engine.volumes.get(name).name == name
    finally:
        engine.volumes.get(name).remove()


def test_delete_untagged_keeps_an_index_s_platforms_on_3_and_marks_them_on_2_8(
    make_registry: MakeRegistry, tmp_path: Path
) -> None:
    """A real two-platform image (an OCI layout made offline, pushed with skopeo --all): its
    platform manifests have no tags. Registry 3's --delete-untagged keeps them, and each platform
    still pulls; 2.8's dry run marks them and their blobs (distribution#3178)."""
    layout = ocilayout.write_layout(tmp_path / "layout", "multi")
    assert len(set(layout.children.values())) == 2
    marked: dict[str, set[str]] = {}
    untagged: dict[str, tuple[str, ...]] = {}
    for version in (V3, V2):
        registry = make_registry(
            "persistent", version=version.major, workdir=tmp_path / f"v{version.major}"
        )
        ref = registry.ref("multi", "multi")
        replicate.run(ocilayout.copy_command(str(layout.folder), "multi", ref))
        with registry.client() as api:
            assert api.manifest_digest("multi", "multi") == layout.index.digest
            for digest in layout.children.values():  # pushed byte for byte, by digest
                assert api.manifest_digest("multi", digest) == digest
        dry = gc.collect(registry, dry_run=True, delete_untagged=True)
        marked[version.major] = set(dry.eligible)
        untagged[version.major] = dry.manifests
        if version.v3:
            assert gc.collect(registry, delete_untagged=True).eligible == ()
            for image in layout.images:
                into = tmp_path / image.platform.replace("/", "-")
                replicate.run(ocilayout.pull_command(ref, image.platform, str(into)))
                assert ocilayout.pulled_digest(into) == image.manifest.digest
                with registry.client() as api:
                    api.verify_image("multi", image.manifest.digest)
    assert (marked["3"], untagged["3"]) == (set(), ())
    assert marked["2"] == {
        d for image in layout.images for d in (image.config.digest, image.layer.digest)
    }
    assert set(untagged["2"]) == set(layout.children.values())  # their manifests are unlinked
    assert layout.index.digest not in untagged["2"]  # 2.8 keeps the index, pointing to nothing
