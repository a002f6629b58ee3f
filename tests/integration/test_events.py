"""Registry events against the real registry: what arrives, exactly once, late after an
outage, and what is lost when the registry restarts."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from common import MakeRegistry, free_port
from docker import DockerClient
from test_cli import assert_one_line_error, run

import reglab
from reglab.engine import transfer
from reglab.engine.network import NETWORK, project_network, remove_project_network
from reglab.registry import gc
from reglab.registry.events import Event, Listener

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
