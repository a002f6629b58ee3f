"""Every checkpoint the notebooks use fails when its step is broken.

First each check function against a real broken state; then whole notebooks run with one step
broken, to show the checkpoint cell is what stops them.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from common import MakeRegistry, free_port, nbval_command
from docker import DockerClient
from nbclient.exceptions import CellExecutionError
from notebook_runner import NOTEBOOKS, run_notebook

import reglab
from reglab.engine import transfer
from reglab.lab import checks

pytestmark = pytest.mark.docker
WRONG_DIGEST = "sha256:" + "0" * 64


def test_registry_answers_fails_when_no_registry_runs(make_registry: MakeRegistry) -> None:
    registry = make_registry("local")
    checks.registry_answers(registry)
    registry.remove()
    with pytest.raises(checks.CheckFailed, match="does not answer"):
        checks.registry_answers(registry)


def test_registry_serves_fails_without_push_and_for_another_digest(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("local")
    with pytest.raises(checks.CheckFailed, match="not in the registry's catalog"):
        checks.registry_serves(registry, "hello-world", WRONG_DIGEST)
    ref = registry.ref("hello-world")
    cleanup_images.append(ref)
    transfer.tag(engine, "hello-world", ref)
    digest = transfer.push(engine, ref)
    checks.registry_serves(registry, "hello-world", digest)
    with pytest.raises(checks.CheckFailed, match="not sha256:0000"):
        checks.registry_serves(registry, "hello-world", WRONG_DIGEST)


def test_image_checks_fail_on_the_wrong_state(
    engine: DockerClient, workshop_images: dict[str, str]
) -> None:
    with pytest.raises(checks.CheckFailed, match="still in the engine"):
        checks.image_absent(engine, "hello-world")
    with pytest.raises(checks.CheckFailed, match="has no image"):
        checks.image_present(engine, "reglab-no-such-image:1")
    with pytest.raises(checks.CheckFailed, match="does not have digest"):
        checks.image_present(engine, "hello-world", WRONG_DIGEST)
    with pytest.raises(checks.CheckFailed, match="did not print"):
        checks.container_says(engine, "hello-world", "Goodbye")


def test_tls_verified_fails_for_plain_http_and_for_a_foreign_certificate(
    make_registry: MakeRegistry,
) -> None:
    plain = make_registry("local")
    with pytest.raises(checks.CheckFailed, match="is not HTTPS"):
        checks.tls_verified(plain)
    plain.remove()
    tls = make_registry("tls")
    checks.tls_verified(tls)
    foreign = reglab.CA.create("not the workshop CA")
    foreign.certificate.write(tls.config.paths.ca_cert)  # clients now trust another CA
    with pytest.raises(checks.CheckFailed, match="with the workshop CA, verification still"):
        checks.tls_verified(tls)


def test_refused_fails_when_auth_is_off(make_registry: MakeRegistry) -> None:
    registry = make_registry("tls")
    with pytest.raises(checks.CheckFailed, match="answered 200 to no credentials"):
        checks.refused(registry)


@pytest.mark.parametrize(
    "notebook, old, new, message",
    [
        # the push never happens: the digest is made up
        (
            "01-local-registry.ipynb",
            "digest = ws.push(ref)",
            f'digest = "{WRONG_DIGEST}"',
            "CheckFailed",
        ),
        # the registry is recreated WITHOUT its data folder: the local stage instead of persistent
        (
            "02-persistent-storage.ipynb",
            'reg = ws.up("persistent")',
            'reg = ws.up("local")',
            "CheckFailed",
        ),
        # auth is never turned on: the tls stage instead of auth
        ("04-basic-auth.ipynb", 'reg = ws.up("auth")', 'reg = ws.up("tls")', "CheckFailed"),
        # the registry is not on the small disk: nothing fills up, version 3 is stored
        (
            "05-delete-and-gc.ipynb",
            'reg = ws.up("persistent", data_volume=disk.name)',
            'reg = ws.up("persistent")',
            "CheckFailed",
        ),
        # nobody pulls through the mirror: its storage stays empty
        (
            "06-pull-through-mirror.ipynb",
            'digest = operate.fetch(ws, mirror, "hello-world", into="pulled")',
            "digest = stored",
            "CheckFailed",
        ),
        # alice is given push: the access list no longer says what the notebook teaches
        (
            "08-token-auth.ipynb",
            'name: "team/*"}\n  actions: [pull]\n',
            'name: "team/*"}\n  actions: [pull, push]\n',
            "CheckFailed",
        ),
        # nothing is pushed through the front: the bucket stays as it was
        (
            "09-swarm-replicas.ipynb",
            "digest = ws.push(ref)",
            f'digest = "{WRONG_DIGEST}"',
            "CheckFailed",
        ),
        # the node never pulls: it holds nothing to check against the registry's digest
        (
            "11-kubernetes-nodes.ipynb",
            "pulled = nodes.pull(ws, node, ref)",
            "pulled = None",
            "CheckFailed",
        ),
        # app:1 is never signed: skopeo refuses it under the policy
        (
            "12-supply-chain.ipynb",
            'signed = supply.sign(ws, reg, "app:1", release.secret)',
            "signed = None",
            "CheckFailed",
        ),
        # the registry is not restarted: the queued events are delivered after all
        (
            "07-registry-events.ipynb",
            'reg = ws.up("local", notify=events.url, network=NETWORK)\nseen',
            "seen",
            "CheckFailed",
        ),
    ],
)
@pytest.mark.one_engine
def test_a_broken_step_stops_the_notebook_at_its_checkpoint(
    engine: DockerClient,
    workshop_images: dict[str, str],
    tmp_path: Path,
    notebook: str,
    old: str,
    new: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REGLAB_PORT", str(free_port()))
    with pytest.raises(CellExecutionError) as err:
        run_notebook(notebook, tmp_path, (old, new))
    assert err.value.ename == message
    assert "checks." in str(err.value)  # the cell that stopped it is a checkpoint
    assert "fix:" in err.value.evalue


@pytest.mark.one_engine
@pytest.mark.parametrize("notebook", sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")))
def test_each_notebook_passes_nbval_alone_twice_from_a_clean_state(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path, notebook: str
) -> None:
    """nbval compares every output with the committed one, twice, in one fresh folder."""
    env = {
        **os.environ,
        "REGLAB_PORT": str(free_port()),
        "REGLAB_NAME": "reglab-test-alone",
        "REGLAB_WORKDIR": str(tmp_path / "workdir"),
    }
    for run in (1, 2):
        result = subprocess.run(
            nbval_command(NOTEBOOKS / notebook),
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"run {run}:\n{result.stdout[-3000:]}"
    assert engine.containers.list(all=True, filters={"name": "reglab-test-alone"}) == []
    assert not any(n.name == "reglab-net" for n in engine.networks.list())
    assert not transfer.exists(engine, f"127.0.0.1:{env['REGLAB_PORT']}/hello-world")


@pytest.mark.notebooks
def test_notebooks_pass_with_a_learners_registries_left_running(
    engine: DockerClient, make_registry: MakeRegistry, tmp_path: Path
) -> None:
    """A learner's KEEP_RUNNING registry, and a TLS one an engine restart brought back, change
    nothing a notebook compares (notebook 00's status panel lists every reglab registry)."""
    make_registry("local", name="reglab-test-learner-kept", workdir=tmp_path / "learner")
    make_registry("tls", name="reglab-test-learner-tls", workdir=tmp_path / "learner")
    env = {
        **os.environ,
        "REGLAB_PORT": str(free_port()),
        "REGLAB_NAME": "reglab-test-alongside",
        "REGLAB_WORKDIR": str(tmp_path / "workdir"),
    }
    result = subprocess.run(
        nbval_command(NOTEBOOKS / "00-preflight.ipynb", NOTEBOOKS / "01-local-registry.ipynb"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    running = {c.name for c in engine.containers.list()}
    assert {"reglab-test-learner-kept", "reglab-test-learner-tls"} <= running  # untouched
