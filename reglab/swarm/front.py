"""The front and the relay: what they see, and when the whole stack is ready behind them.

The front (HAProxy, a service of the stack) health-checks every replica and token server; its
statistics (CSV, through the relay on its own port) are the one view of which replicas serve. The
relay is the one plain container: it holds 127.0.0.1:PORT. It is also what a later command
reads to find the deployment (:func:`read_relay`): its published port, and the working folder
whose ``swarm/relay.cfg`` it mounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from reglab.base.errors import RegistryError, ReglabError, docker_errors
from reglab.base.labels import owner_labels
from reglab.base.settings import FRONT_IMAGE
from reglab.base.shell import PathStyle
from reglab.base.wait import NotYet, poll
from reglab.engine.spec import ContainerSpec, Mount
from reglab.registry.client import Answer, RegistryClient, fetch_text
from reglab.registry.config import TOKEN_SERVICE
from reglab.swarm.deploy import running_tasks
from reglab.swarm.names import FRONT_PORT, RELAY_CFG_TARGET, STATS_PORT, TOKEN_REPLICAS, Named


@dataclass
class Replica:
    """One replica as the front sees it."""

    name: str  # the front's name for it (replica1, ...)
    address: str  # its address on the stack's network
    status: str  # UP, DOWN, MAINT (no task in that slot)


def replica_header(name: str) -> dict[str, str]:
    """The header that makes the front send a request to the replica ``name``."""
    return {"X-Reglab-Use": name}


def served_by(response: Answer) -> str:
    """Which replica answered (the front's name for it)."""
    return response.headers.get("X-Reglab-Replica", "?")


def replicas_seen(names: Named, odd: bool = False, backend: str = "replicas") -> list[Replica]:
    """The front's view of the replicas, from HAProxy's statistics (CSV); with ``odd`` the
    registry started beside the stack too. ``backend="tokens"``: the token servers."""
    page = fetch_text(names.stats_url)  # HAProxy's page, not a registry: plain HTTP
    if page is None:
        return []
    rows = page.lstrip("# ").splitlines()
    if not rows:
        return []
    header = rows[0].split(",")
    prefix = "replica" if backend == "replicas" else "token"
    seen = []
    for row in rows[1:]:
        values = dict(zip(header, row.split(","), strict=False))
        name = values.get("svname", "")
        if values.get("pxname") == backend and (name.startswith(prefix) or (odd and name == "odd")):
            address = values.get("addr", "").rsplit(":", 1)[0]
            status = values.get("status", "").split(" ")[0]
            if status != "MAINT":  # MAINT (resolution): a slot with no replica in it
                seen.append(Replica(values["svname"], address, status))
    return seen


def up_replicas(names: Named) -> list[Replica]:
    return [r for r in replicas_seen(names) if r.status == "UP"]


def token_servers_up(names: Named) -> int:
    return sum(r.status == "UP" for r in replicas_seen(names, backend="tokens"))


def answers_as(names: Named, ca: Path, replica: str) -> bool:
    """True when the front shows ``replica`` up AND a request sent to it is answered by it:
    a server the front just resolved may count as up before it listens, and a request it
    cannot reach goes to another replica."""
    if not any(r.name == replica and r.status == "UP" for r in replicas_seen(names, True)):
        return False
    with RegistryClient(names.url, ca=ca, timeout=5) as api:
        try:
            answer = api.request("GET", "/v2/", headers=replica_header(replica))
        except ReglabError:
            return False
    return served_by(answer) == replica


def healthy(engine: docker.DockerClient, service: str) -> bool:
    """True when a task of the service runs and its health check passed (if it has one)."""
    for task in running_tasks(engine, service):
        cid = task["Status"].get("ContainerStatus", {}).get("ContainerID")
        try:
            state = engine.containers.get(cid).attrs["State"]
        except (docker.errors.NotFound, docker.errors.NullResource):
            continue
        if (state.get("Health") or {}).get("Status") in (None, "healthy"):
            return True
    return False


def task_trouble(engine: docker.DockerClient, service: str) -> str:
    """What the service's newest task that is not running says (its state and error)."""
    try:
        svc = engine.services.get(service)
        tasks = svc.tasks()
    except docker.errors.APIError:
        return ""
    wanted = svc.attrs["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas")
    stuck = [t for t in tasks if t["Status"]["State"] != "running"]
    if not stuck:
        return ""
    newest = max(stuck, key=lambda t: t["Status"].get("Timestamp", ""))
    status = newest["Status"]
    said = status.get("Err") or status.get("Message") or ""
    return (
        f"; the service wants {wanted}; a task is {status['State']} ({said}), "
        f"wanted {newest.get('DesiredState')}"
    )


def wait_ready(
    engine: docker.DockerClient, names: Named, ca: Path, replicas: int, timeout: float = 240.0
) -> None:
    """Wait until the store and cache are healthy, ``replicas`` registry tasks run, the front
    has both token servers and exactly ``replicas`` replicas up; then ``GET /v2/`` through it
    answers, with an anonymous token from the front's ``/auth``."""

    def ready() -> bool | None:
        if not (healthy(engine, names.store_service) and healthy(engine, names.cache_service)):
            raise NotYet("the store and the cache")
        if not running_tasks(engine, names.front):
            raise NotYet(f"the front ({names.front}){task_trouble(engine, names.front)}")
        running = len(running_tasks(engine, names.service))
        if running != replicas:
            trouble = task_trouble(engine, names.service)
            raise NotYet(f"{replicas} registry replicas, {running} run{trouble}")
        if token_servers_up(names) != TOKEN_REPLICAS:
            raise NotYet(f"the front to see {TOKEN_REPLICAS} token servers up")
        up = len(up_replicas(names))
        if up != replicas or len(replicas_seen(names)) != replicas:
            raise NotYet(f"the front to see {replicas} replicas up, {up} are")
        with RegistryClient(names.url, ca=ca) as api:
            try:
                # 200: a replica asked for a token, a token server signed an anonymous one,
                # and the replica took it
                if api.status() == 200:
                    return True
            except ReglabError:
                pass
        raise NotYet("GET /v2/ through the front")

    poll(
        f"the swarm registry {names.name} to be ready",
        ready,
        timeout=timeout,
        interval=0.5,
        fix=f"see docker stack ps {names.name} and docker service logs {names.front}",
    )


def wait_command(names: Named, ca: Path, style: PathStyle) -> str:
    """A line that waits, as :func:`wait_ready` does, until the store and the cache are
    healthy, a replica answers through the front (401: it asks for a token) and so does a
    token server (200: an anonymous token)."""
    code = f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {style.show(ca)}"
    healthy_ = f"docker ps -q -f label=com.docker.stack.namespace={names.name} -f health=healthy"
    return (
        f'until [ "$({healthy_} | wc -l)" -ge 2 ] && [ "$({code} {names.url}/v2/)" = 401 ] '
        f'&& [ "$({code} "{names.realm}?service={TOKEN_SERVICE}")" = 200 ]; do sleep 0.2; done'
    )


# --- the relay -----------------------------------------------------------------------------


def relay_spec(names: Named, folder: Path) -> ContainerSpec:
    """The relay: HAProxy in TCP mode on the stack's network, holding 127.0.0.1 only (the
    front's port and its statistics) and passing each connection on, still encrypted."""
    return ContainerSpec(
        FRONT_IMAGE,
        ("haproxy", "-W", "-db", "-f", RELAY_CFG_TARGET),
        name=names.relay,
        labels=owner_labels(),
        ports=(("127.0.0.1", names.port, FRONT_PORT), ("127.0.0.1", names.stats_port, STATS_PORT)),
        network=names.network,
        mounts=(Mount(folder / "relay.cfg", RELAY_CFG_TARGET, read_only=True),),
    )


def relay_command(names: Named, folder: Path, style: PathStyle) -> str:
    return relay_spec(names, folder).shell(style)


def relay_container(engine: docker.DockerClient, names: Named) -> Any:
    try:
        return engine.containers.get(names.relay)
    except docker.errors.NotFound:
        return None


def start_relay(engine: docker.DockerClient, names: Named, folder: Path) -> None:
    """Start the relay on the stack's network (again, if it runs)."""
    old = relay_container(engine, names)
    if old is not None:
        old.remove(force=True)
    with docker_errors(f"cannot start the relay {names.relay}", error=RegistryError):
        engine.containers.run(**relay_spec(names, folder.resolve()).run_kwargs())


def read_relay(relay: Any) -> tuple[int | None, Path | None]:
    """(port, working folder) of a running deployment, read from its relay: the host port
    published for the front, and the folder whose ``swarm/relay.cfg`` it mounts. Whoever
    started it (``reglab swarm up`` or the line a learner typed), that is where it runs."""
    bindings = (relay.attrs["HostConfig"].get("PortBindings") or {}).get(f"{FRONT_PORT}/tcp")
    port = (bindings or [{}])[0].get("HostPort")
    workdir = None
    for mount in relay.attrs.get("Mounts") or []:
        if mount.get("Destination") == RELAY_CFG_TARGET and mount.get("Source"):
            workdir = Path(mount["Source"]).parent.parent  # WORKDIR/swarm/relay.cfg
    return (int(port) if port else None), workdir
