"""Faults a workshop meets: a registry killed mid-push, an engine restart, interrupted runs."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest
from common import (
    MakeRegistry,
    build_random_image,
    container_of,
    engine_control,
    free_port,
    restart_our_engine,
    strict,
)
from docker import DockerClient
from nbclient import NotebookClient
from notebook_runner import NOTEBOOKS, run_notebook

import reglab
from reglab.engine import transfer

pytestmark = pytest.mark.docker


def push_hello(
    engine: DockerClient, registry: reglab.Registry, repo: str, cleanup: list[str]
) -> str:
    ref = registry.ref(repo)
    cleanup.append(ref)
    transfer.tag(engine, "hello-world", ref)
    return transfer.push(engine, ref)


def test_registry_killed_mid_push_loses_nothing(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("persistent")
    before = push_hello(engine, registry, "before/hello-world", cleanup_images)

    big = f"reglab-test-big:{uuid.uuid4().hex[:8]}"
    build_random_image(engine, big, layers=4, layer_bytes=16 << 20)
    ref = registry.ref("big/data")
    cleanup_images += [big, ref]
    transfer.tag(engine, big, ref)

    uploading = threading.Event()
    outcome: dict[str, object] = {}

    def on_progress(event: reglab.Progress) -> None:
        if event.status == "Pushing" and (event.current or 0) > 0:
            uploading.set()

    def push() -> None:
        try:
            outcome["digest"] = transfer.push(reglab.connect(), ref, progress=on_progress)
        except reglab.ImageError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=push)
    worker.start()
    assert uploading.wait(60), "the push never started uploading"
    container_of(registry).kill()  # SIGKILL, in the middle of the upload
    registry.start()  # through reglab: replaces the dead container, same data
    worker.join(180)
    assert not worker.is_alive()

    with registry.client() as api:
        assert api.manifest_digest("before/hello-world") == before  # intact
        api.verify_image("before/hello-world")
    # The engine retries a failed upload by itself; if it gave up, retry the push once.
    digest = outcome.get("digest") or transfer.push(engine, ref)
    with registry.client() as api:
        assert api.manifest_digest("big/data") == digest
        assert api.verify_image("big/data") > 64_000_000  # every blob, checked by SHA-256


@pytest.mark.engine_restart
def test_engine_restart_brings_the_tls_registry_back_with_its_data(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    try:
        engine_control.for_socket(engine_control.current_socket())
    except engine_control.NotOurs as exc:
        if strict():
            pytest.fail(f"CI must be able to restart the dockerd it started: {exc}")
        pytest.skip(str(exc))
    registry = make_registry("tls")
    digest = push_hello(engine, registry, "restart/hello-world", cleanup_images)
    old_id = container_of(registry).id

    restarted = restart_our_engine()
    assert restarted.running()

    registry = reglab.Registry(registry.config, reglab.connect())
    registry.wait_ready(30)  # came back by itself: --restart unless-stopped
    assert container_of(registry).id == old_id
    assert registry.client().manifest_digest("restart/hello-world") == digest


@pytest.mark.engine_restart
def test_a_dockerd_started_by_hand_is_never_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A learner's own dockerd (its own options, its pid where Docker keeps it) is left alone."""
    if os.geteuid() != 0:
        (pytest.fail if strict() else pytest.skip)("starting a dockerd needs root")
    sock = tmp_path / "docker.sock"
    # A bridge of its own: with --bridge none, dockerd deletes the machine's docker0.
    bridge = f"rlhand{os.getpid() % 10000}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    argv = [
        "dockerd", "-H", f"unix://{sock}", "--data-root", str(tmp_path / "data"),
        "--exec-root", str(tmp_path / "exec"), "--pidfile", str(tmp_path / "docker.pid"),
        "--bridge", bridge, "--iptables=false", "--ip6tables=false",
    ]  # fmt: skip
    with open(tmp_path / "dockerd.log", "wb") as log:
        by_hand = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not engine_control.socket_answers(str(sock)):
            assert by_hand.poll() is None and time.monotonic() < deadline, (
                tmp_path / "dockerd.log"
            ).read_text()[-2000:]
            time.sleep(0.1)
        monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
        with pytest.raises(engine_control.NotOurs, match="was not started by this project"):
            restart_our_engine()
        # A forged record with another command line does not make it ours either.
        monkeypatch.setattr(engine_control, "RUN_DIR", tmp_path / "records")
        engine_control.RUN_DIR.mkdir()
        forged = engine_control.Engine("forged", by_hand.pid, ["dockerd"], "", str(sock), "")
        forged.record.write_text(json.dumps(dataclasses.asdict(forged)))
        with pytest.raises(engine_control.NotOurs, match="not running the command"):
            restart_our_engine()
        assert by_hand.poll() is None  # still the same process, never signalled
        assert (tmp_path / "docker.pid").read_text().strip() == str(by_hand.pid)
    finally:
        by_hand.terminate()
        by_hand.wait(60)
        subprocess.run(["ip", "link", "delete", bridge], check=False)
    assert subprocess.run(["ip", "link", "show", "docker0"], capture_output=True).returncode == 0


def test_interrupted_command_is_recovered_by_running_it_again(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    name = f"reglab-test-{uuid.uuid4().hex[:8]}"
    args = ["tls", "--port", str(free_port()), "--workdir", str(tmp_path / "w"), "--name", name]
    cmd = [sys.executable, "-m", "reglab", "up", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Freeze the registry as soon as it runs, ~0.3 s before it could answer: `up` is then
        # certainly still waiting for it when Ctrl-C arrives (it cannot finish first).
        deadline = time.monotonic() + 30
        while True:
            found = engine.containers.list(filters={"name": name, "status": "running"})
            if found:
                found[0].pause()
                break
            assert proc.poll() is None, "finished before the registry was running"
            assert time.monotonic() < deadline, "the registry container never ran"
            time.sleep(0.005)
        assert proc.poll() is None, "finished before it could be interrupted"
        proc.send_signal(signal.SIGINT)  # Ctrl-C while it waits for the registry
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err.strip().splitlines() == [
            "reglab: interrupted; run the same command again to finish"
        ]
        assert engine.containers.get(name).status == "paused"  # left half-done
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0, again.stderr
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name, workdir=tmp_path)).remove()


@pytest.mark.parametrize(
    "notebook, stop_after",
    [
        ("03-tls.ipynb", "ws.trust_ca(gateway)"),  # leaves a network, a trusted CA, a container
        ("04-basic-auth.ipynb", "ws.login(moby)"),  # leaves a login and a running registry
    ],
)
def test_interrupted_notebook_is_recovered_by_running_it_again(
    engine: DockerClient,
    workshop_images: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    notebook: str,
    stop_after: str,
) -> None:
    port = free_port()
    monkeypatch.setenv("REGLAB_PORT", str(port))
    nb = nbformat.read(NOTEBOOKS / notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    cut = next(i for i, c in enumerate(code) if stop_after in c.source)
    partial = nbformat.v4.new_notebook(cells=code[: cut + 1], metadata=nb.metadata)
    monkeypatch.setenv("REGLAB_WORKDIR", str(tmp_path / "workdir"))
    monkeypatch.setenv("REGLAB_NAME", "reglab-test-broken")
    NotebookClient(partial, timeout=120, resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    assert engine.containers.list(filters={"name": "reglab-test-broken"})  # left running

    full = run_notebook(notebook, tmp_path)  # the whole notebook, as a learner would rerun it
    assert not [o for c in full.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert engine.containers.list(all=True, filters={"name": "reglab-test-broken"}) == []
    assert not any(n.name == "reglab-net" for n in engine.networks.list())
    assert not any(
        p.name.endswith(f":{port}")
        for p in (
            reglab.engine.trust.DOCKER_CERTS_D.iterdir()
            if reglab.engine.trust.DOCKER_CERTS_D.exists()
            else []
        )
    )


def test_leftover_half_written_files_do_not_break_a_run(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    """Temp files from an interrupted atomic write are ignored and the real files kept."""
    workdir = tmp_path / "w"
    name = f"reglab-test-{uuid.uuid4().hex[:8]}"
    config = reglab.RegistryConfig(
        stage=reglab.Stage.TLS, port=free_port(), workdir=workdir, name=name
    )
    reglab.Registry(config, engine).start()
    cert = (workdir / "certs" / "domain.crt").read_bytes()
    (workdir / "certs" / ".domain.crt.abc123").write_bytes(b"-----BEGIN CERT")  # half-written
    try:
        registry = reglab.Registry(config, engine).start()
        assert registry.client().ping() == 200
        assert (workdir / "certs" / "domain.crt").read_bytes() == cert
    finally:
        reglab.Registry(config, engine).remove()
    assert os.stat(workdir / "certs" / "domain.key").st_mode & 0o777 == 0o600


def test_the_shared_network_stays_while_a_container_is_on_it(
    engine: DockerClient, workshop_images: dict[str, str]
) -> None:
    """A clean-up (notebook 06's last cell) while a learner's own mirror still uses the network:
    the network stays, and the result says who holds it; once they are gone, it goes."""
    name = f"reglab-test-net-{uuid.uuid4().hex[:6]}"
    reglab.engine.network.project_network(engine, name)
    other = engine.containers.create("hello-world", name=f"{name}-user", network=name)
    try:
        kept = reglab.engine.network.remove_project_network(engine, name)
        assert not kept and kept.kept_for == (f"{name}-user",)
        assert str(kept) == f"network {name} left in place: {name}-user still uses it"
        assert [n.name for n in engine.networks.list(names=[name])] == [name]
    finally:
        other.remove(force=True)
    assert reglab.engine.network.remove_project_network(engine, name)
    assert engine.networks.list(names=[name]) == []
