"""Tearing the swarm down: what holds a network is named, a wait that never ends raises one
line, and a stream of pulls that makes no requests fails instead of passing quietly.
(A stand-in for the engine's API: the integration tests do it on a real swarm.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import docker.errors
import pytest

from reglab.base.errors import EngineError
from reglab.base.wait import WaitTimeout
from reglab.lab.measure import PullStream
from reglab.swarm import GWBRIDGE, StackNames, SwarmRegistry, cluster
from reglab.swarm.cluster import containers_on, gwbridge_holders, wait_network_empty
from reglab.swarm.front import read_relay
from reglab.swarm.names import RELAY_CFG_TARGET

RELAY_ID = "a" * 64


class FakeApi:
    """docker's low-level API, as far as reading a network's endpoints goes."""

    def __init__(self, containers: dict[str, dict[str, str]]) -> None:
        self.containers = containers

    def inspect_network(self, name: str) -> dict[str, Any]:
        if name != GWBRIDGE:
            raise docker.errors.NotFound("no such network")
        return {"Containers": self.containers}

    def inspect_container(self, key: str) -> dict[str, Any]:
        if key != RELAY_ID:
            raise docker.errors.NotFound("no such container")
        return {"Name": "/reglab-test-relay"}


def engine(containers: dict[str, dict[str, str]]) -> Any:
    return SimpleNamespace(api=FakeApi(containers))


HELD = {
    RELAY_ID: {"Name": f"gateway_{RELAY_ID[:12]}"},
    "ingress-sbox": {"Name": "gateway_ingress-sbox"},  # the engine's own: gone with the swarm
}


def test_what_holds_the_bridge_is_named_by_its_container() -> None:
    assert containers_on(engine(HELD), GWBRIDGE) == {RELAY_ID: "reglab-test-relay"}
    assert containers_on(engine(HELD), "gone") is None
    assert gwbridge_holders(engine(HELD)) == ["reglab-test-relay"]


def test_a_network_that_stays_held_is_one_line_naming_the_container() -> None:
    with pytest.raises(WaitTimeout) as held:
        wait_network_empty(engine(HELD), GWBRIDGE, 0.3)
    message = str(held.value)
    assert "\n" not in message and "reglab-test-relay" in message
    assert "ingress" not in message and "docker rm -f" in message
    wait_network_empty(engine({"ingress-sbox": {}}), GWBRIDGE, 0.3)
    wait_network_empty(engine({}), "gone", 0.3)  # no network: nothing holds it


class RefusingApi(FakeApi):
    """An engine that refuses to remove docker_gwbridge ("has active endpoints"), whatever is
    on it: with nothing listed, the engine's stale count of endpoints."""

    def remove_network(self, name: str) -> None:
        raise docker.errors.APIError("409", explanation=f"network {name} has active endpoints")


def test_an_empty_bridge_the_engine_will_not_remove_is_one_line_on_its_stale_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cluster, "STALE_AFTER", 0.2)
    with pytest.raises(cluster.StaleBridge) as stale:
        cluster.remove_gwbridge(SimpleNamespace(api=RefusingApi({})), timeout=5)
    message = str(stale.value)
    assert isinstance(stale.value, EngineError) and "\n" not in message
    assert "no longer exists" in message and "engine's next restart" in message
    # Something still listed on it is waited for, and named at the deadline, never "stale".
    held = SimpleNamespace(api=RefusingApi({"ingress-sbox": {"Name": "gateway_ingress-sbox"}}))
    with pytest.raises(WaitTimeout, match="held by gateway_ingress-sbox"):
        cluster.remove_gwbridge(held, timeout=0.6)


def test_the_running_relay_tells_the_port_and_the_working_folder() -> None:
    relay = SimpleNamespace(
        attrs={
            "HostConfig": {
                "PortBindings": {"5443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "23456"}]}
            },
            "Mounts": [
                {"Source": "/elsewhere/w/swarm/relay.cfg", "Destination": RELAY_CFG_TARGET},
                {"Source": "/tmp/other", "Destination": "/other"},
            ],
        }
    )
    port, workdir = read_relay(relay)
    assert port == 23456 and str(workdir) == "/elsewhere/w"
    assert read_relay(SimpleNamespace(attrs={"HostConfig": {}})) == (None, None)


def test_a_pull_stream_that_makes_too_few_requests_raises() -> None:
    # A stand-in for the stack: waiting reads no more of it than its name.
    front = cast(SwarmRegistry, StackNames("reglab-test-s", 0))
    stream = PullStream(registry=front, auth=("a", "b"), repository="r")
    stream.ok = 3
    assert stream.wait_for(3, timeout=0.1) == 3
    with pytest.raises(WaitTimeout, match="10 requests through the front of reglab-test-s"):
        stream.wait_for(10, timeout=0.2)
