"""Registry events against the real registry: what arrives, exactly once, late after an
outage, and what is lost when the registry restarts; what an endpoint's ``ignore`` leaves out;
``reglab listen --to FILE`` typed as a learner types it; and deletes on 3 and on 2.8."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from common import MakeRegistry, free_port
from docker import DockerClient
from test_cli import assert_one_line_error, run

import reglab
from reglab.base.settings import Settings
from reglab.base.wait import poll
from reglab.engine import transfer
from reglab.engine.network import NETWORK, project_network, remove_project_network
from reglab.lab import listening
from reglab.lab.workshop import Workshop
from reglab.registry import gc
from reglab.registry.events import BLOB_TYPE, Event, Listener

pytestmark = pytest.mark.docker


@pytest.fixture
def listener(engine: DockerClient) -> Iterator[Listener]:
    events = Listener(project_network(engine)).start()
    yield events
    events.stop()
    remove_project_network(engine)


def push(
    engine: DockerClient, registry: reglab.Registry, repository: str, cleanup: list[str]
) -> str:
    ref = registry.ref(repository)
    cleanup.append(ref)
    transfer.tag(engine, "hello-world", ref)
    return transfer.push(engine, ref)


def manifest_pushes(events: Iterable[Event], repository: str) -> list[Event]:
    return [
        e for e in events if e.repository == repository and e.action == "push" and e.is_manifest
    ]


def test_reglab_up_notify_sends_every_push_and_delete_once_and_gc_keeps_it(
    engine: DockerClient,
    workshop_images: dict[str, str],
    listener: Listener,
    tmp_path: Path,
    cleanup_images: list[str],
) -> None:
    name, port = f"reglab-test-{uuid.uuid4().hex[:6]}", free_port()
    args = ["--port", str(port), "--workdir", str(tmp_path), "--name", name]
    started = run("up", "persistent", "--notify", listener.url, *args)
    try:
        assert started.returncode == 0, started.stderr
        assert f"its events go to {listener.url}" in started.stdout
        registry = reglab.Registry.attach(engine, name, tmp_path)
        assert registry.config.notify == listener.url and registry.config.network == NETWORK
        digest = push(engine, registry, "hello-world", cleanup_images)
        with registry.client() as api:
            events = listener.flush(api, "hello-world")
            assert [e.digest for e in manifest_pushes(events, "hello-world")] == [digest]
            gc.delete_image(api, "hello-world", "latest")  # by digest: the manifest, its tag
            events = listener.flush(api, "hello-world")
        deletes = [e for e in events if e.action == "delete" and e.digest == digest]
        assert len(deletes) == 1 and deletes[0].what == "manifest"
        untagged = [e for e in events if e.action == "delete" and e.tag == "latest"]
        assert len(untagged) == 1 and not untagged[0].digest  # and one for the tag it took
        ids = [e.id for _, e in listener.deliveries]
        assert len(ids) == len(set(ids))  # each delivered once

        collected = run("gc", "--workdir", str(tmp_path), "--name", name)
        assert collected.returncode == 0, collected.stderr
        after = reglab.Registry.attach(engine, name, tmp_path)  # restarted twice by gc
        assert after.config.notify == listener.url and after.config.network == NETWORK
        again = push(engine, after, "after-gc/hello-world", cleanup_images)
        with after.client() as api:
            events = listener.flush(api, "after-gc/hello-world")
        assert [e.digest for e in manifest_pushes(events, "after-gc/hello-world")] == [again]
    finally:
        reglab.Registry(reglab.RegistryConfig(name=name), engine).remove()


def test_events_arrive_late_after_an_outage_and_are_lost_by_a_restart(
    engine: DockerClient, listener: Listener, make_registry: MakeRegistry, cleanup_images: list[str]
) -> None:
    registry = make_registry("local", notify=listener.url, network=NETWORK)
    listener.stop()
    late = push(engine, registry, "outage/hello-world", cleanup_images)
    listener.start()
    with registry.client() as api:
        events = listener.flush(api, "outage/hello-world")
    assert [e.digest for e in manifest_pushes(events, "outage/hello-world")] == [late]

    listener.stop()
    push(engine, registry, "lost/hello-world", cleanup_images)
    registry.start()  # the queue was in the old process
    listener.start()
    after = push(engine, registry, "after/hello-world", cleanup_images)
    with registry.client() as api:
        events = listener.flush(api, "after/hello-world")
    assert [e.digest for e in manifest_pushes(events, "after/hello-world")] == [after]
    assert not [e for e in events if e.repository == "lost/hello-world"]


def test_a_bad_notify_url_is_one_line_and_starts_nothing(
    engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path
) -> None:
    name = f"reglab-test-{uuid.uuid4().hex[:6]}"
    args = ["--port", str(free_port()), "--workdir", str(tmp_path), "--name", name]
    for url in ("ftp://127.0.0.1/events", "127.0.0.1:9/events", "http://"):
        assert_one_line_error(run("up", "local", "--notify", url, *args), "is not an http(s) URL")
    assert engine.containers.list(all=True, filters={"name": name}) == []
    assert not (tmp_path / "registry-data").exists()


def test_an_endpoint_ignoring_blob_types_and_pulls_sends_the_rest(
    engine: DockerClient,
    listener: Listener,
    make_registry: MakeRegistry,
    cleanup_images: list[str],
    tmp_path: Path,
) -> None:
    registry = make_registry("local", notify=listener.url, network=NETWORK)
    settings = Settings(port=registry.config.port, workdir=tmp_path / "workdir",
                        name=registry.config.name)  # fmt: skip
    registry = listening.ignoring(
        Workshop(engine, settings), registry, mediatypes=(BLOB_TYPE,), actions=("pull",)
    )
    digest = push(engine, registry, "filtered/hello-world", cleanup_images)
    with registry.client() as api:
        assert api.manifest_digest("filtered/hello-world") == digest  # a HEAD: a pull
        gc.delete_image(api, "filtered/hello-world", "latest")  # its HEADs: pulls too
    events = listener.wait_for(
        lambda got: any(e.action == "delete" and e.tag == "latest" for e in got),
        what="the delete's events",
    )  # the last one sent: in order, every event not ignored came before
    assert [(e.action, e.what, e.digest) for e in events] == [
        ("push", "manifest", digest),  # its blobs' pushes and HEADs: ignored by media type
        ("delete", "manifest", digest),  # a delete names no media type: not ignored
        ("delete", "tag", ""),
    ]  # and no pull of the manifest: ignored by action
    assert len(listener.deliveries) == 3


def test_reglab_listen_to_a_file_typed_in_the_background_writes_each_event(
    engine: DockerClient, make_registry: MakeRegistry, cleanup_images: list[str], tmp_path: Path
) -> None:
    gateway, port = project_network(engine), free_port()
    log = tmp_path / "workdir" / "events.log"  # its folder made by the command
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    typed = subprocess.run(  # returns at once: nothing of the background job holds its pipes
        ["bash", "-c", f"reglab listen --port {port} --to {log} &\necho $!"],
        capture_output=True, text=True, timeout=30, env=env,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    pid = int(typed.stdout.split()[-1])
    try:
        registry = make_registry("local", notify=f"http://{gateway}:{port}/events", network=NETWORK)
        digest = push(engine, registry, "typed/hello-world", cleanup_images)

        def written() -> list[str] | None:
            lines = log.read_text().splitlines() if log.is_file() else []
            return lines if any("manifest typed/hello-world:" in line for line in lines) else None

        lines = poll("the push's line in the log", written, timeout=30)
        assert lines[0] == f"listening for registry events at http://{gateway}:{port}/events"
        assert lines[-1] == f"push   manifest typed/hello-world:latest {digest}"
        assert sum(line.startswith("push   blob     typed/hello-world ") for line in lines) == 2
    finally:
        os.kill(pid, 15)  # kill $LISTENER
        poll("the listener to stop", lambda: None if _alive(pid) else True, timeout=10)
        remove_project_network(engine)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("version", ["3", "2"])
def test_a_tag_delete_sends_one_event_on_3_and_is_refused_on_2_a_digest_delete_two_on_both(
    engine: DockerClient,
    listener: Listener,
    make_registry: MakeRegistry,
    cleanup_images: list[str],
    version: str,
) -> None:
    registry = make_registry("local", version=version, notify=listener.url, network=NETWORK)
    digest = push(engine, registry, "hello-world", cleanup_images)
    second = registry.ref("hello-world", "v1")  # a second tag of the same image
    cleanup_images.append(second)
    transfer.tag(engine, "hello-world", second)
    assert transfer.push(engine, second) == digest
    with registry.client() as api:
        seen = len(listener.flush(api, "hello-world"))
        if version == "3":
            api.delete_manifest("hello-world", "v1")  # DELETE by tag: that tag alone
        else:
            with pytest.raises(reglab.ClientError) as refused:
                api.delete_manifest("hello-world", "v1")
            assert refused.value.status == 400
        untagged = [e for e in listener.flush(api, "hello-world")[seen:] if e.action == "delete"]
        assert [(e.what, e.tag, e.digest) for e in untagged] == (
            [("tag", "v1", "")] if version == "3" else []  # 2.8: refused, no event
        )
        seen = len(listener.events)
        gc.delete_image(api, "hello-world", "latest")  # DELETE by digest: the same on both
        deleted = [e for e in listener.flush(api, "hello-world")[seen:] if e.action == "delete"]
    expected = [("manifest", None, digest), ("tag", "latest", "")]  # the manifest first
    if version == "2":
        expected.append(("tag", "v1", ""))  # 2.8 kept it: it goes with its image
    assert [(e.what, e.tag, e.digest) for e in deleted[:1]] == expected[:1]
    assert {(e.what, e.tag, e.digest) for e in deleted[1:]} == set(expected[1:])
    assert len(deleted) == len(expected)
