"""The picture of what runs, drawn from the engine: a TLS registry as the engine runs it."""

from __future__ import annotations

import html

from common import MakeRegistry
from docker import DockerClient

from reglab.lab import picture
from reglab.lab.widgets import StatusPanel


def test_a_running_stage_is_drawn_as_the_engine_runs_it(
    engine: DockerClient, make_registry: MakeRegistry
) -> None:
    registry = make_registry("tls")
    config = registry.config
    drawn = picture.of_engine(engine, config.workdir)
    me = f"c:{config.name}"
    assert drawn.nodes[me].label == f"{config.name}\n{config.image}\nrunning"
    into = {(drawn.nodes[e.source].label, e.label) for e in drawn.edges if e.target == me}
    assert (f"127.0.0.1:{config.port}", "5000/tcp") in into
    assert ("workdir/registry-data", "/var/lib/registry") in into
    assert ("workdir/certs/domain.key", "/certs/domain.key (ro)") in into
    assert not any(label.startswith("workdir/ca") for label, _ in into)  # the CA key stays out
    assert picture.mounted(drawn, config.name, "/var/lib/registry") == "workdir/registry-data"
    assert picture.mounted(drawn, config.name, "/auth") is None
    registry.remove()
    assert me not in picture.of_engine(engine, config.workdir).nodes  # what runs, only


def test_the_status_panel_draws_what_runs(
    engine: DockerClient, make_registry: MakeRegistry
) -> None:
    registry = make_registry("local")
    panel = StatusPanel(engine)
    assert registry.config.name in panel.table.value
    drawn = html.unescape(panel.picture.value)  # Graphviz writes "-" as &#45;
    assert "<svg" in drawn and registry.config.name in drawn
