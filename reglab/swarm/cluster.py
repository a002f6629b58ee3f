"""The swarm itself: made only when the engine is in none, marked as reglab's, and left only
when reglab made it and nothing runs in it any more.

Leaving has one trap. Every container on an overlay network also has an endpoint on
``docker_gwbridge`` (its way out of the machine), and the engine refuses to remove that bridge
("has active endpoints") while one is left. ``docker stack rm`` returns before its task
containers are gone, a plain container joined to the stack's network (the relay, the odd
registry, a learner's own) keeps its endpoint, and the engine releases the ingress sandbox's
endpoint a moment after ``docker swarm leave``. So the bridge is removed only once
:func:`gwbridge_holders` is empty, polled; if it never is, one line names what holds it.

The engine itself is the second trap. Tearing the swarm's ingress sandbox down, it can lose
count of the bridge's endpoints (on 20.10 without IPVS, about one leave in fifteen): it
then refuses to remove a bridge with nothing on it, and recounts only when it starts again.
No request of a client clears that, and restarting an engine is its owner's decision, so
:func:`leave_swarm` then leaves the bridge, and raises :class:`StaleBridge` after the swarm is
left: one line saying why the bridge stays and what removes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
import docker.errors

from reglab.base.errors import EngineError, docker_errors
from reglab.base.wait import NotYet, poll
from reglab.engine.spec import Step
from reglab.swarm.names import GWBRIDGE, GWBRIDGE_LABEL, STACK_LABEL, SWARM_LABEL


def swarm_state(engine: docker.DockerClient) -> str:
    """``inactive``, ``active``, ``pending``, ``error`` or ``locked``: the engine's swarm."""
    with docker_errors("cannot read the engine's swarm state", error=EngineError):
        info = engine.info()
    return str((info.get("Swarm") or {}).get("LocalNodeState") or "inactive")


def _node(engine: docker.DockerClient) -> Any:
    node_id = (engine.info().get("Swarm") or {}).get("NodeID")
    return engine.nodes.get(node_id)


def _node_labels(engine: docker.DockerClient) -> dict[str, str]:
    with docker_errors("cannot read this node", error=EngineError):
        return dict(_node(engine).attrs["Spec"].get("Labels") or {})


def swarm_owned(engine: docker.DockerClient) -> bool:
    """True when the engine is in a swarm that reglab created."""
    if swarm_state(engine) != "active":
        return False
    return _node_labels(engine).get(SWARM_LABEL) == "created"


#: ``docker swarm init``'s options, as the Docker SDK takes them: 127.0.0.1 only (another
#: machine joins a swarm over the network, which a workshop on one machine does not need).
INIT = {"advertise_addr": "127.0.0.1", "listen_addr": "127.0.0.1:2377"}


def init_step(engine: docker.DockerClient) -> Step[bool]:
    """``docker swarm init`` and the node's label that marks the swarm reglab's: the lines a
    terminal types, and :func:`ensure_swarm`, which runs them only when the engine is in no
    swarm (the SDK's keywords are the lines' options: :data:`INIT`)."""
    options = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in INIT.items())
    node = "$(docker info --format '{{.Swarm.NodeID}}')"
    lines = [
        f"docker swarm init {options}",
        f"docker node update --label-add {SWARM_LABEL}=created {node}",
    ]
    return Step(lines, lambda: ensure_swarm(engine))


def ensure_swarm(engine: docker.DockerClient) -> bool:
    """Make sure the engine is a swarm manager; return True when this call created the swarm.

    ``docker swarm init`` (:data:`INIT`) only when the engine is in no swarm. An engine in
    someone else's swarm is used as it is (as a manager) or refused (as a worker, which
    cannot deploy).
    """
    state = swarm_state(engine)
    if state == "active":
        info = engine.info().get("Swarm") or {}
        if not info.get("ControlAvailable"):
            raise EngineError(
                "this engine is a worker in a swarm: a stack is deployed from a manager",
                "run reglab on a manager node, or leave that swarm (docker swarm leave)",
            )
        return False
    if state != "inactive":
        raise EngineError(
            f"this engine's swarm is {state}",
            "check 'docker info' (Swarm:); 'docker swarm leave --force' leaves a broken one",
        )
    had_gwbridge = bool(engine.networks.list(names=[GWBRIDGE]))
    with docker_errors(
        "this engine cannot run swarm mode",
        "use a Docker engine with swarm mode (Docker Engine on Linux, or Docker Desktop)",
        EngineError,
    ):
        engine.swarm.init(**INIT)
        node = _node(engine)
        spec = dict(node.attrs["Spec"])
        gwbridge = "existed" if had_gwbridge else "created"
        spec["Labels"] = {**(spec.get("Labels") or {}), SWARM_LABEL: "created"}
        spec["Labels"][GWBRIDGE_LABEL] = gwbridge
        node.update(spec)
    return True


def endpoints(engine: docker.DockerClient, network: str) -> dict[str, tuple[str, bool]] | None:
    """{endpoint key: (what holds it, whether that is a container)} on ``network``; None when
    there is no such network. A container is named by its name (docker_gwbridge names its
    endpoint gateway_<id>); an endpoint of the engine's own (the ingress sandbox on
    docker_gwbridge, an overlay's load balancer) by the endpoint's name."""
    try:
        attrs = engine.api.inspect_network(network)
    except docker.errors.NotFound:
        return None
    held = {}
    for key, endpoint in (attrs.get("Containers") or {}).items():
        try:
            held[key] = (str(engine.api.inspect_container(key)["Name"]).lstrip("/"), True)
        except docker.errors.APIError:  # NotFound: the engine's own, or a container just gone
            held[key] = (str(endpoint.get("Name") or key), False)
    return held


def containers_on(engine: docker.DockerClient, network: str) -> dict[str, str] | None:
    """{container id: name} of the containers with an endpoint on ``network`` (None: no such
    network). The engine's own endpoints are left out: it removes them with the swarm or the
    network, and no command of the learner's can."""
    held = endpoints(engine, network)
    if held is None:
        return None
    return {key: name for key, (name, container) in held.items() if container}


def gwbridge_holders(engine: docker.DockerClient) -> list[str]:
    """The containers that still have an endpoint on docker_gwbridge, by name."""
    return sorted((containers_on(engine, GWBRIDGE) or {}).values())


def wait_network_empty(engine: docker.DockerClient, network: str, timeout: float) -> None:
    """Poll until no container is left on ``network``; at the deadline one line names the
    containers that hold it."""

    def empty() -> bool | None:
        names = sorted((containers_on(engine, network) or {}).values())
        if names:
            raise NotYet(f"still on it: {', '.join(names)}")
        return True

    poll(
        f"the containers on the network {network} to go",
        empty,
        timeout=timeout,
        interval=0.3,
        fix=f"remove them (docker rm -f NAME), then run the same command again; "
        f"docker network inspect {network} lists them",
    )


def remove_when_released(
    what: str,
    remove: Callable[[], object],
    timeout: float,
    fix: str,
    holders: Callable[[], str] = lambda: "",
) -> None:
    """Call ``remove`` until the engine agrees (or says it is gone): it refuses a network or
    a volume for a moment after the last container that used it went. ``holders`` says what
    still holds it, for the one line a timeout raises."""

    def removed() -> bool | None:
        try:
            remove()
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            held = holders()
            said = str(exc.explanation or exc)
            raise NotYet(said + (f"; held by {held}" if held else "")) from None
        return True

    poll(f"the engine to remove {what}", removed, timeout=timeout, interval=0.3, fix=fix)


def remove_network(engine: docker.DockerClient, network: str, timeout: float) -> None:
    """Remove ``network`` once no container is on it (the engine's own endpoints on it go a
    moment later: asked again until the engine agrees)."""
    wait_network_empty(engine, network, timeout)
    remove_when_released(
        f"the network {network}",
        lambda: engine.api.remove_network(network),
        timeout,
        f"docker network inspect {network}; then docker network rm {network}",
        holders=lambda: ", ".join(
            sorted(n for n, _ in (endpoints(engine, network) or {}).values())
        ),
    )


def leave_swarm(engine: docker.DockerClient, timeout: float = 60.0) -> bool:
    """Leave the swarm if reglab created it and nothing runs in it any more (then remove
    docker_gwbridge too if the swarm made it); return True when it left. Someone else's swarm
    is never left.

    Only once no container is on docker_gwbridge (polled): a container still joined to an
    overlay network (a task still stopping, a plain container joined to the
    stack's network) would keep the bridge after the swarm is gone. Raises
    :class:`StaleBridge` when the swarm is left but the engine will not remove the bridge.
    """
    if not swarm_owned(engine):
        return False
    if engine.services.list():  # another stack still runs in it: not while it does
        return False
    if engine.api.containers(all=True, filters={"label": STACK_LABEL}):
        return False  # a stack is being removed (or deployed) by someone else: theirs to end
    labels = _node_labels(engine)
    wait_network_empty(engine, GWBRIDGE, timeout)
    with docker_errors("cannot leave the swarm", error=EngineError):
        engine.swarm.leave(force=True)
    if labels.get(GWBRIDGE_LABEL) == "created":
        remove_gwbridge(engine, timeout)
    return True


#: How long the engine may refuse to remove an empty docker_gwbridge before reglab calls its
#: endpoint count stale (a refusal that outlives the last endpoint by a moment is normal).
STALE_AFTER = 10.0


class StaleBridge(EngineError):
    """The swarm was left, but the engine refuses to remove an empty docker_gwbridge: its count
    of the bridge's endpoints is stale (see the module's docstring)."""

    def __init__(self) -> None:
        super().__init__(
            f"{GWBRIDGE} stays: the engine still counts an endpoint on it that no longer "
            "exists, and recounts only when it starts",
            f"after the engine's next restart: docker network rm {GWBRIDGE}",
        )


def remove_gwbridge(engine: docker.DockerClient, timeout: float) -> None:
    """Remove docker_gwbridge once nothing is on it. If the engine still refuses with nothing
    on it for :data:`STALE_AFTER` seconds, its count is stale: :class:`StaleBridge`."""
    wait_network_empty(engine, GWBRIDGE, timeout)
    empty_since: list[float] = []

    def removed() -> bool | None:
        try:
            engine.api.remove_network(GWBRIDGE)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            held = sorted(name for name, _ in (endpoints(engine, GWBRIDGE) or {}).values())
            now = time.monotonic()
            if held:
                empty_since.clear()
            elif not empty_since:
                empty_since.append(now)
            elif now - empty_since[0] >= STALE_AFTER:
                raise StaleBridge() from None
            said = str(exc.explanation or exc)
            raise NotYet(said + (f"; held by {', '.join(held)}" if held else "")) from None
        return True

    poll(
        f"the engine to remove the network {GWBRIDGE}",
        removed,
        timeout=timeout,
        interval=0.3,
        fix=f"docker network inspect {GWBRIDGE}; then docker network rm {GWBRIDGE}",
    )
