"""Offline image builds, images by stage, the air-gap tarball, and push failures that must
raise."""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path

import pytest
from common import MakeRegistry
from docker import DockerClient

import reglab
from reglab.base import labels, progress, settings
from reglab.base.versions import V3, registry_version
from reglab.engine import transfer
from reglab.engine.oneoff import run_once
from reglab.images import archive, programs, recipes
from reglab.images import build as images
from reglab.images.context import SOURCE_LABEL, BuildContext, source_digest

pytestmark = pytest.mark.docker


def test_offline_builds_give_working_images(
    engine: DockerClient, cleanup_images: list[str], make_registry: MakeRegistry
) -> None:
    tag = uuid.uuid4().hex[:8]
    hello = images.build_hello_image(engine, ref=f"reglab-test-hello:{tag}")
    registry_ref = images.build_registry_image(engine, ref=f"reglab-test-registry:{tag}")
    cleanup_images += [hello, registry_ref]
    output = engine.containers.run(hello, remove=True)
    assert b"Hello from Docker!" in output
    registry = make_registry("local", image=registry_ref)
    assert registry.client().ping() == 200
    image_labels = engine.images.get(registry_ref).labels
    assert image_labels[labels.BUILT_LABEL] == "offline"
    assert labels.OWNER_LABEL not in image_labels  # containers inherit image labels
    assert image_labels[SOURCE_LABEL] == source_digest(programs.registry_sources())
    hello_labels = engine.images.get(hello).labels
    assert hello_labels[SOURCE_LABEL] == source_digest(programs.hello_sources())


def _hello_recipe(ref: str, pullable: bool = False) -> recipes.Recipe:
    """hello-world's recipe, under a test name."""
    hello = next(r for r in recipes.RECIPES if r.ref == settings.HELLO_IMAGE)
    return dataclasses.replace(
        hello,
        ref=ref,
        pullable=pullable,
        make=lambda client, o: images.build_hello_image(client, ref=ref, progress=o.progress),
    )


def test_an_image_made_from_other_versions_of_reglab_files_is_made_again(
    engine: DockerClient,
    workshop_images: dict[str, str],
    cleanup_images: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = f"reglab-test-hello:{uuid.uuid4().hex[:8]}"
    cleanup_images.append(ref)
    # An earlier build: the same name, reglab's label, the hash of other files
    stale = BuildContext(f"FROM {settings.HELLO_IMAGE}\n".encode())
    old = engine.images.get(stale.build(engine, ref, source="an older hello.c")).id
    monkeypatch.setattr(images, "recipes_for", lambda stage, registries: [_hello_recipe(ref)])
    assert images.ensure_images(engine, offline=True) == {ref: "built"}
    assert engine.images.get(ref).labels[SOURCE_LABEL] == source_digest(programs.hello_sources())
    assert old not in {image.id for image in engine.images.list()}  # not left behind
    assert images.ensure_images(engine, offline=True) == {ref: "present"}


def test_a_failed_pull_says_why_in_one_line_then_builds(
    engine: DockerClient, cleanup_images: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"127.0.0.1:1/reglab-test-pull/hello:{uuid.uuid4().hex[:8]}"  # nothing answers there
    cleanup_images.append(ref)
    monkeypatch.setattr(
        images, "recipes_for", lambda stage, registries: [_hello_recipe(ref, pullable=True)]
    )
    notices: list[str] = []
    assert images.ensure_images(engine, notice=notices.append) == {ref: "built"}
    assert len(notices) == 1 and "\n" not in notices[0]
    assert re.match(
        rf"pull of {re.escape(ref)} failed: .*; building {re.escape(ref)} here", notices[0]
    )
    assert b"Hello from Docker!" in engine.containers.run(ref, remove=True)


def test_a_stage_makes_only_its_own_images(
    engine: DockerClient, workshop_images: dict[str, str]
) -> None:
    foundation = [V3.image, "hello-world:latest", "reglab-tools:1"]
    assert list(images.ensure_images(engine, "tls", offline=True)) == foundation
    assert images.missing_images(engine, "swarm") == []


def test_missing_registry_binary_is_one_clear_error(engine: DockerClient, tmp_path: Path) -> None:
    with pytest.raises(reglab.ImageError, match="no registry server binary found") as err:
        images.build_registry_image(engine, binary=tmp_path / "nope", ref="reglab-test-x:1")
    assert "apt-get install docker-registry" in str(err.value)


def test_save_and_load_round_trip(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    path = archive.save_images(engine, tmp_path / "classroom.tar")
    assert path.stat().st_size > 1_000_000
    ids = {ref: engine.images.get(ref).id for ref in images.WORKSHOP_IMAGES}
    loaded = archive.load_images(engine, path)
    assert set(images.WORKSHOP_IMAGES) <= set(loaded)
    assert {ref: engine.images.get(ref).id for ref in images.WORKSHOP_IMAGES} == ids


def test_load_rejects_a_file_that_is_not_a_tarball(engine: DockerClient, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar")
    with pytest.raises(reglab.ImageError, match="is not an image tarball"):
        archive.load_images(engine, bad)
    with pytest.raises(reglab.ImageError, match="does not exist"):
        archive.load_images(engine, tmp_path / "missing.tar")


def test_push_to_nothing_raises_instead_of_looking_fine(
    engine: DockerClient, workshop_images: dict[str, str], port: int, cleanup_images: list[str]
) -> None:
    ref = f"127.0.0.1:{port}/nothing/hello-world"
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    with pytest.raises(reglab.ImageError, match="push of .* failed") as err:
        transfer.push(engine, ref)
    assert "connection refused" in str(err.value)


def test_progress_reports_layer_bytes(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("local")
    ref = registry.ref("progress/hello-world")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    events: list[reglab.Progress] = []
    transfer.push(engine, ref, progress=events.append)
    assert any(e.status == "Pushed" and e.layer for e in events)
    assert any(e.total for e in events)
    assert events[-1].status == progress.COMPLETE  # a bar can always finish
    failed: list[reglab.Progress] = []
    with pytest.raises(reglab.ImageError):
        transfer.push(engine, "127.0.0.1:1/nothing:latest", progress=failed.append)
    assert progress.COMPLETE not in [e.status for e in failed]


def test_tag_of_a_missing_image(engine: DockerClient) -> None:
    with pytest.raises(reglab.ImageError, match="is not present"):
        transfer.tag(engine, "reglab-no-such-image:1", "127.0.0.1:1/x")


def test_registry_that_never_answers_reports_its_logs(
    engine: DockerClient, make_registry: MakeRegistry
) -> None:
    registry = make_registry("local", start=False, image="hello-world")  # prints and exits
    with pytest.raises(reglab.RegistryNotReady, match="stopped before answering") as err:
        registry.start(timeout=20)
    assert "Hello from Docker!" in err.value.logs


@pytest.mark.parametrize(
    ("version", "release", "config", "entrypoint", "cmd"),
    [
        ("3", r"v3\.1\.\d+", "/etc/distribution/config.yml", ["/entrypoint.sh"],
         ["/etc/distribution/config.yml"]),
        ("2", r"2\.8\.\d+", "/etc/docker/registry/config.yml", ["/bin/registry", "serve"],
         ["/etc/docker/registry/config.yml"]),
    ],
)  # fmt: skip
def test_each_registry_image_runs_its_release_with_its_config_where_it_reads_it(
    engine: DockerClient,
    workshop_images: dict[str, str],
    version: str,
    release: str,
    config: str,
    entrypoint: list[str],
    cmd: list[str],
) -> None:
    """registry:3 is distribution 3.1 as the official image has it (its entrypoint script,
    the configuration at /etc/distribution, tracing off); registry:2 is 2.8 (/etc/docker)."""
    image = registry_version(version).image
    # run_once removes the container with its anonymous volume (both images declare one)
    said = run_once(engine, image, ["--version"], entrypoint=["/bin/registry"])
    assert re.search(release, said), said
    settings = engine.images.get(image).attrs["Config"]
    assert (settings["Entrypoint"], settings["Cmd"]) == (entrypoint, cmd)
    if version == "3":  # the official image's file: deletes on, the debug server on :5001
        official = run_once(engine, image, ["cat", config], entrypoint=["/bin/busybox"])
        assert "addr: :5001" in official and "enabled: true" in official
        assert "OTEL_TRACES_EXPORTER=none" in settings["Env"]
        served = run_once(engine, image, ["--version"])  # the entrypoint maps flags to registry
        assert re.search(release, served), served
