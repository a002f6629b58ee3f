"""Notebook 05's diagnosis, against the real engine: a collection run on the live registry
(no read-only restart, no restart after) sweeps an image that was just deleted; the push that
puts it back succeeds on the registry's stale cache, and every pull of it then fails. A second
push alone does not fix it, a restart alone does not either; a restart, then the push, does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import free_port
from docker import DockerClient

import reglab
from reglab.base.settings import TOOLS_IMAGE, Settings
from reglab.lab import exercises
from reglab.lab.workshop import Workshop

pytestmark = pytest.mark.docker


@pytest.fixture
def ws(engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path) -> Iterator[Workshop]:
    name = f"reglab-test-ex05-{uuid.uuid4().hex[:8]}"
    workshop = Workshop(engine, Settings(port=free_port(), workdir=tmp_path / "workdir", name=name))
    yield workshop
    for container in engine.containers.list(all=True, filters={"name": name}):
        container.remove(force=True, v=True)
    reglab.engine.transfer.remove(engine, f"127.0.0.1:{workshop.port}/reglab-app:3")


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_a_collection_on_the_live_registry_breaks_the_image_pushed_back_until_a_restart_and_a_push(
    ws: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ws.up("persistent")
    ref = reg.ref("reglab-app", "3")
    ws.tag(TOOLS_IMAGE, ref)
    digest = ws.push(ref)
    assert exercises.image_whole(reg, "reglab-app", "3")  # whole before the set-up
    reg = ws.up("persistent")  # as in the notebook: a process that has not seen the image

    assert exercises.collect_while_live(ws, reg) == digest  # the push back succeeds
    out = said(capsys)
    assert "pulled 127.0.0.1:" in out  # a client's pull: the cache now knows the blobs
    assert "garbage-collect /etc/distribution/config.yml\n" in out  # live: no read-only restart
    assert "the collector deleted 3 blob(s); the registry ran on" in out
    assert "REGISTRY_STORAGE_MAINTENANCE_READONLY" not in out

    error = exercises.pull_fresh(ws, reg, "reglab-app", "3")
    out = said(capsys)
    assert error is not None and "unexpected EOF" in error  # skopeo: the blob broke off
    assert "refused: " in out  # the typed line is expected to fail
    assert "answered 200, 0 bytes written" in out  # the registry's own log line

    assert not exercises.image_whole(reg, "reglab-app", "3")
    assert "HEAD answers 200" in said(capsys)

    ws.push(ref)  # pushed again on the same process: the cache still says 200
    assert not exercises.image_whole(reg, "reglab-app", "3")
    assert "HEAD answers 200" in said(capsys)

    reg = ws.up("persistent")  # a new process: an empty cache, the swept blobs answer 404
    assert not exercises.image_whole(reg, "reglab-app", "3")
    assert "now answers 404 for 2 blob(s)" in said(capsys)  # the manifest was written again

    assert ws.push(ref) == digest  # the fix: the engine uploads what is missing
    assert exercises.image_whole(reg, "reglab-app", "3")
    assert "✔ Correct: every blob of reglab-app:3 downloads" in said(capsys)
    assert exercises.pull_fresh(ws, reg, "reglab-app", "3") is None
