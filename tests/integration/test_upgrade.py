"""Upgrading a 2.8 registry to 3 against the real engine: the check of a running 2.8 registry,
registry 3 on the same storage serving every digest, the rollback, and the Redis panic of an
untranslated configuration."""

from __future__ import annotations

import argparse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import free_port
from docker import DockerClient

from reglab.base.settings import Settings
from reglab.cli import upgrade as command
from reglab.lab import upgrade
from reglab.lab.checks.failed import CheckFailed
from reglab.lab.workshop import Workshop

pytestmark = pytest.mark.docker


@pytest.fixture
def ws(engine: DockerClient, tmp_path: Path) -> Iterator[Workshop]:
    name = f"reglab-test-upgrade-{uuid.uuid4().hex[:8]}"
    workshop = Workshop(engine, Settings(port=free_port(), workdir=tmp_path / "workdir", name=name))
    yield workshop
    workshop.cleanup()
    for container in engine.containers.list(all=True, filters={"name": name}):
        container.remove(force=True)


def parse(*argv: str) -> argparse.Namespace:
    return command.build_parser().parse_args(argv)


def test_registry_3_serves_what_2_8_stored_and_2_8_serves_it_again(
    ws: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ws.up("persistent", version="2")
    for image, repository in (("hello-world", "hello-world"), ("reglab-tools:1", "tools")):
        ws.tag(image, reg.ref(repository))
        ws.push(reg.ref(repository))
    served = upgrade.inventory(ws, reg)
    assert len(served.manifests) == 2 and len(served.blobs) >= 4

    assert command.run(parse("--check", "--name", ws.name)) == 0
    assert command.run(parse("--check", "--workdir", str(ws.workdir))) == 0
    assert f"container {ws.name}: registry 3 reads it as 2.8 did" in capsys.readouterr().out

    file = upgrade.translate(ws)
    reg = upgrade.up_with_file(ws, file)
    container = ws.engine.containers.get(ws.name)
    assert container.attrs["Config"]["Image"] == "registry:3"
    assert container.attrs["Config"]["Env"] and not any(
        e.startswith("REGISTRY_") for e in container.attrs["Config"]["Env"]
    )  # the file alone configures it
    upgrade.serves_all(ws, reg, served)

    reg = ws.up("persistent", version="2")
    upgrade.serves_all(ws, reg, served)
    # the checkpoint fails when a blob is missing
    served.blobs.append("tools@sha256:" + "0" * 64)
    with pytest.raises(CheckFailed) as missing:
        upgrade.serves_all(ws, reg, served)
    assert "tools@sha256:000" in missing.value.problem


def test_registry_3_exits_on_2_8s_redis_addr_and_the_check_names_it(
    ws: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    ws.up("persistent", version="2")
    line = upgrade.redis_panic(ws, upgrade.translate(ws))
    assert line == "panic: redis configuration required to use for layerinfo cache"
    assert ws.engine.containers.list(all=True, filters={"name": f"{ws.name}-redis-addr"}) == []
    capsys.readouterr()
    file = ws.workdir / "upgrade" / "redis-addr.yml"
    assert command.run(parse("--check", "--config", str(file))) == 1
    assert "redis.addrs: [redis:6379]" in capsys.readouterr().out


def test_a_2_8_registry_that_leaves_deletes_to_its_image_is_a_problem(
    ws: Workshop, engine: DockerClient, capsys: pytest.CaptureFixture[str]
) -> None:
    """2.8's image refuses deletes unless told otherwise; registry 3's image accepts them."""
    spec = ws.config("persistent", version="2").spec()
    env = {k: v for k, v in spec.env.items() if k != "REGISTRY_STORAGE_DELETE_ENABLED"}
    ws.config("persistent").paths.data.mkdir(parents=True, exist_ok=True)
    engine.containers.run(**{**spec.run_kwargs(), "environment": env})
    assert command.run(parse("--check", "--name", ws.name)) == 1
    assert "storage.delete.enabled: unset" in capsys.readouterr().out
