"""Run a workshop notebook from tests: in a fresh folder, optionally with one step broken."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import nbformat
from common import remove_test_stack
from docker import DockerClient
from nbclient import NotebookClient

import reglab
from reglab.engine import network, transfer
from reglab.engine.trust import DOCKER_CERTS_D

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(nb: Any, env: dict[str, str], timeout: int = 120) -> None:
    """Execute ``nb`` in the notebooks' folder with ``env`` set for its kernel, as a learner's
    JupyterLab would (the kernel inherits the environment)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            nb, timeout=timeout, resources={"metadata": {"path": str(NOTEBOOKS)}}
        ).execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_notebook(name: str, tmp_path: Path, break_step: tuple[str, str] | None = None) -> Any:
    """Execute a notebook in a fresh working folder, optionally with one line of code replaced."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if break_step:
        old, new = break_step
        code = [c for c in nb.cells if c.cell_type == "code"]
        cells = [c for c in code if c.source == old] or [c for c in code if old in c.source]
        assert len(cells) == 1, f"{old!r} is not in exactly one cell of {name}"
        cells[0].source = cells[0].source.replace(old, new)
    env = {"REGLAB_WORKDIR": str(tmp_path / "workdir"), "REGLAB_NAME": "reglab-test-broken"}
    try:
        execute(nb, env)
    finally:
        # A notebook stopped by a failing cell never reaches its clean-up cell: do it here.
        engine = reglab.connect()
        remove_test_stack(engine, "reglab-test-broken")  # first: Swarm restarts what goes alone
        for container in engine.containers.list(all=True, filters={"name": "^reglab-test-broken"}):
            container.remove(force=True, v=True)  # the registry, a mirror, a disk's keeper
        for volume in engine.volumes.list(filters={"name": "reglab-test-broken"}):
            volume.remove(force=True)
        for image in engine.images.list(name="reglab-app"):  # notebook 05's versions
            engine.images.remove(image.id, force=True)
        remove_port_tags(engine, os.environ.get("REGLAB_PORT", ""))
        network.remove_project_network(engine)
        port = os.environ.get("REGLAB_PORT", "")
        for entry in DOCKER_CERTS_D.glob(f"*:{port}") if port else []:  # 09 trusts its front
            with contextlib.suppress(OSError, reglab.ReglabError):
                reglab.uninstall_ca_for_docker(entry.name.rsplit(":", 1)[0].strip("[]"), int(port))
    return nb


def remove_port_tags(engine: DockerClient, port: str) -> None:
    """Remove image names a notebook gave for registries on ``port`` (any host)."""
    for image in engine.images.list():
        for tag in image.tags:
            if f":{port}/" in tag:
                transfer.remove(engine, tag)
