"""Notebook 07's exercises against the real engine: a scanner's curl request is a ``pull``
event, told apart by its user agent; a registry that sends its events to 127.0.0.1 reaches
nothing (its log says connection refused) until it is started again with the gateway's URL."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from common import free_port
from docker import DockerClient
from notebook_runner import remove_port_tags

from reglab.base.settings import Settings
from reglab.engine.network import NETWORK, remove_project_network
from reglab.lab import exercises, listening
from reglab.lab.exercises.events import SCANNER
from reglab.lab.workshop import Workshop
from reglab.registry.events import Listener

pytestmark = pytest.mark.docker


@pytest.fixture
def ws(engine: DockerClient, workshop_images: dict[str, str], tmp_path: Path) -> Iterator[Workshop]:
    name = f"reglab-test-ex07-{uuid.uuid4().hex[:8]}"
    workshop = Workshop(engine, Settings(port=free_port(), workdir=tmp_path / "workdir", name=name))
    yield workshop
    for container in engine.containers.list(all=True, filters={"name": name}):
        container.remove(force=True, v=True)
    remove_port_tags(engine, str(workshop.port))
    remove_project_network(engine)


@pytest.fixture
def events(ws: Workshop) -> Iterator[Listener]:
    listener = listening.listen(ws)  # the notebook's: the gateway, the planned port
    yield listener
    listener.stop()


def said(capsys: pytest.CaptureFixture[str]) -> str:
    return capsys.readouterr().out


def test_a_scanners_curl_is_a_pull_event_told_apart_by_its_user_agent(
    ws: Workshop, events: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = ws.up("local", notify=events.url, network=NETWORK)
    ref = reg.ref("hello-world")
    ws.tag("hello-world", ref)
    ws.push(ref)
    said(capsys)

    assert not exercises.scanner_fetch(reg, events, "pull")  # no request typed yet
    assert f"✘ Not yet: no event with the user agent {SCANNER} yet" in said(capsys)

    typed = subprocess.run(  # the solution's line, as a learner types it
        ["curl", "-sfI", "-A", SCANNER, f"{reg.url}/v2/hello-world/manifests/latest"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert typed.returncode == 0, typed.stderr

    assert not exercises.scanner_fetch(reg, events, None)
    out = said(capsys)
    assert f"HEAD by {SCANNER}: pull   manifest hello-world:latest" in out
    assert "✘ Not yet: answer with the action" in out

    assert not exercises.scanner_fetch(reg, events, "push")
    assert "✘ Not yet: the event arrived: read its action" in said(capsys)

    assert exercises.scanner_fetch(reg, events, " Pull ")
    assert "✔ Correct: pull. The registry reports every request for a manifest" in said(capsys)


def test_events_sent_to_127_0_0_1_are_refused_until_the_registry_sends_to_the_gateway(
    ws: Workshop, events: Listener, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = exercises.break_endpoint(ws, events)
    assert "no event of broken/hello-world within 5 s" in said(capsys)
    container = reg.container
    assert container is not None
    log = container.logs().decode()
    assert "connection refused" in log and "127.0.0.1" in log  # what the diagnosis reads

    assert not exercises.events_delivered(ws, events)
    assert "✘ Not yet: it still sends to http://127.0.0.1:" in said(capsys)

    wrong = events.url.replace(f":{events.port}/", f":{free_port()}/")  # the gateway, no listener
    ws.up("local", notify=wrong, network=NETWORK)
    assert not exercises.events_delivered(ws, events)
    assert f"✘ Not yet: no event arrived from {wrong}: is it the listener's URL" in said(capsys)

    ws.up("local", notify=events.url, network=NETWORK)  # the solution's line
    assert exercises.events_delivered(ws, events)
    assert f"✔ Correct: a push's events reach the listener at {events.url}" in said(capsys)
