"""Notebook 12's exercises against the real engine, registry and gate: the two predictions by
letter, and the teammate's image (signed by a key the gate does not trust) Not yet, then
Correct once the learner signed it with the release key, as the solution says, in a
terminal (reglab sign)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from common import free_port
from docker import DockerClient

from reglab.lab import Workshop, exercises, supply
from reglab.registry.gate import Gate

pytestmark = pytest.mark.docker


@pytest.fixture
def supply_ws(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Workshop]:  # fmt: skip
    monkeypatch.setenv("REGLAB_PORT", str(free_port()))
    monkeypatch.setenv("REGLAB_NAME", "reglab-test-ex12")
    monkeypatch.setenv("REGLAB_WORKDIR", str(tmp_path_factory.mktemp("ex12") / "workdir"))
    ws = supply.setup()
    yield ws


def test_the_predictions_by_letter(capsys: pytest.CaptureFixture[str]) -> None:
    assert not exercises.predicted_referrers("a")
    assert "know the path /v2/NAME/referrers/DIGEST" in capsys.readouterr().out
    assert exercises.predicted_referrers(" (B) ") and "Correct" in capsys.readouterr().out
    assert not exercises.predicted_rotation("c")
    assert "no memory of past pulls" in capsys.readouterr().out
    assert exercises.predicted_rotation("b") and "Correct" in capsys.readouterr().out


def test_the_teammates_image_is_refused_until_a_trusted_key_signs_it(
    supply_ws: Workshop, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = supply_ws
    volume = supply.fresh_start(ws)
    gate: Gate | None = None
    try:
        reg = ws.up("persistent", data_volume=volume)
        release = supply.gpg_key(ws, "release")
        teammate = supply.gpg_key(ws, "teammate")
        gate = supply.gate(ws, reg, [release.public])
        four = exercises.teammate_image(
            ws, reg, lambda ref: supply.sign(ws, reg, ref, teammate.secret)
        )
        capsys.readouterr()
        assert not exercises.gate_serves(ws, gate, reg)
        said = capsys.readouterr().out
        assert "✘ Not yet" in said and "whose key made it" in said
        # The learner's fix, typed in a terminal opened in the notebook's folder.
        env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
        done = subprocess.run(
            ["reglab", "sign", "app:4", "--key", str(release.secret)], env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert exercises.gate_serves(ws, gate, reg)
        said = capsys.readouterr().out
        assert "✔ Correct" in said and four in said  # the registry's digest, through the gate
    finally:
        supply.cleanup(ws, gate, volume)
    assert gate.container is None if gate else True
