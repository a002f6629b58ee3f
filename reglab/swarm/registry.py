""":class:`SwarmRegistry`: the one object the command line, notebook 09 and the tests hold.

Seen from outside it is a :class:`reglab.registry.endpoint.Endpoint`, like a single registry:
checkpoints and the registry browser take either.

It knows the stack's name, port, working folder and replica count, checks input before
anything changes, and hands the work to the modules beside it (``cluster``, ``deploy``,
``front``, ``odd``). A command run after ``up`` gets one with :meth:`SwarmRegistry.attach`,
which reads the port and the working folder from what runs, so it needs only the name.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from reglab.auth.htpasswd import Htpasswd
from reglab.base.errors import ConfigError, RegistryError, docker_errors
from reglab.base.shell import PathStyle
from reglab.base.versions import V3, RegistryVersion, version_of_image
from reglab.engine.spec import Step
from reglab.registry.client import RegistryClient
from reglab.registry.token import check_acl
from reglab.registry.workdir import Workdir
from reglab.swarm import cluster, deploy, front, odd
from reglab.swarm.names import MAX_REPLICAS, Named, StackNames


@dataclass
class SwarmRegistry(Named):
    """The stack ``name``: registry replicas, store, cache, and its front on 127.0.0.1:port."""

    engine: docker.DockerClient
    name: str
    port: int
    workdir: Path
    replicas: int = 3
    #: The replicas' registry: 3, or 2.8 (its config differs in two keys: render.py).
    version: RegistryVersion = V3
    _paths: Workdir = field(init=False)

    def __post_init__(self) -> None:
        self._paths = Workdir(self.workdir)

    @property
    def folder(self) -> Path:
        """``workdir/swarm``: the stack file and everything it deploys."""
        return self.workdir / "swarm"

    @property
    def ca_file(self) -> Path:
        """The workshop CA, which issued the front's certificate."""
        return self._paths.ca_cert

    def ref(self, repository: str, tag: str = "latest") -> str:
        """An image name the engine pushes to the stack, through its front."""
        return f"{self.address}/{repository}:{tag}"

    def client(self, auth: tuple[str, str] | None = None) -> RegistryClient:
        """An HTTP API client for the front, verifying TLS against the workshop CA."""
        return RegistryClient(self.url, ca=self.ca_file, auth=auth)

    @classmethod
    def attach(
        cls,
        engine: docker.DockerClient,
        name: str,
        workdir: Path | None = None,
        port: int | None = None,
    ) -> SwarmRegistry:
        """The deployment ``name`` as it runs: its port and working folder read from its
        relay (``port`` and ``workdir`` only when no relay runs), its replicas and registry
        version from the service."""
        relay = front.relay_container(engine, StackNames(name, 0))
        running_port, running_workdir = front.read_relay(relay) if relay else (None, None)
        registry = cls(
            engine,
            name,
            running_port or port or 0,
            running_workdir or workdir or Path("workdir"),
        )
        try:
            spec = engine.services.get(registry.service).attrs["Spec"]
            registry.replicas = int(spec["Mode"]["Replicated"]["Replicas"])
            image = spec["TaskTemplate"]["ContainerSpec"]["Image"]
            registry.version = version_of_image(image.split("@", 1)[0]) or registry.version
        except (docker.errors.NotFound, docker.errors.APIError, KeyError):
            pass
        return registry

    # --- checks: all before anything changes ---
    @staticmethod
    def check_replicas(replicas: int) -> int:
        if not 1 <= replicas <= MAX_REPLICAS:
            raise ConfigError(
                f"{replicas} replicas: the front knows 1 to {MAX_REPLICAS}",
                f"give a number from 1 to {MAX_REPLICAS} (to stop the registry: reglab swarm down)",
            )
        return replicas

    def check_ports(self) -> None:
        """The relay's two ports must be free on 127.0.0.1 (unless it is our relay already)."""
        if self.relay_container() is not None:
            return
        for port in (self.port, self.stats_port):
            with socket.socket() as probe:
                # as the engine binds it: a port that only lingers after a close is free
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise ConfigError(
                        f"port {port} on 127.0.0.1 is in use (the front needs {self.port} "
                        f"and {self.stats_port})",
                        "choose another with --port, or stop what uses it",
                    ) from None

    def check_users(self, acl: Path | None = None) -> None:
        """Users to log in with, and an access list that parses (``acl`` is checked, not yet
        copied: bad input changes nothing)."""
        if not self._paths.htpasswd.is_file() or not Htpasswd.load(self._paths.htpasswd).names():
            raise ConfigError(
                f"no users in {self._paths.htpasswd}: the token servers check their passwords",
                "add one first: reglab user add NAME",
            )
        if acl is not None:
            check_acl(acl)
        elif self._paths.acl.exists():
            check_acl(self._paths.acl)

    # --- up ---
    def up(self, acl: Path | None = None, timeout: float = 240.0) -> bool:
        """Swarm, files, stack and relay; return when every replica answers through the front.
        Return True when it created the swarm. ``acl``: an access list to use (copied to the
        working folder's ``auth/acl.yml``). Every check comes first: bad input changes
        nothing."""
        self.check_replicas(self.replicas)
        self.check_users(acl)
        self.check_ports()
        created = cluster.init_step(self.engine).run()
        self.deploy(self.write_files(acl))
        self.start_relay()
        self.wait_ready(self.replicas, timeout)
        return created

    def write_files(self, acl: Path | None = None, read_only: bool = False) -> dict[str, str]:
        return deploy.write_files(self, self._paths, acl, read_only)

    def deploy_step(
        self, versions: dict[str, str], style: PathStyle, timeout: float = 240.0
    ) -> Step[None]:
        """``docker stack deploy`` with the files' ``versions`` (:meth:`write_files`)."""
        folder = self.folder
        return deploy.deploy_step(
            self.engine, self, self.replicas, folder, versions, style, timeout
        )

    def deploy(self, versions: dict[str, str], timeout: float = 240.0) -> None:
        self.deploy_step(versions, PathStyle(self.workdir), timeout).run()

    def deploy_command(self, style: PathStyle) -> str:
        return deploy.deploy_command(self, self.replicas, self.folder, style)

    def wait_command(self, style: PathStyle) -> str:
        return front.wait_command(self, self._paths.ca_cert, style)

    def relay_command(self, style: PathStyle) -> str:
        return front.relay_command(self, self.folder, style)

    def relay_container(self) -> Any:
        return front.relay_container(self.engine, self)

    def start_relay(self) -> None:
        front.start_relay(self.engine, self, self.folder)

    def odd_container(self) -> Any:
        """The odd registry's container (notebook 09), or None."""
        try:
            return self.engine.containers.get(self.odd)
        except docker.errors.NotFound:
            return None

    # --- what runs ---
    def services(self) -> list[Any]:
        return deploy.services(self.engine, self)

    def deployed(self) -> bool:
        return cluster.swarm_state(self.engine) == "active" and bool(self.services())

    def running_tasks(self, service: str) -> list[dict[str, Any]]:
        return deploy.running_tasks(self.engine, service)

    def replicas_seen(self, odd: bool = False, backend: str = "replicas") -> list[front.Replica]:
        return front.replicas_seen(self, odd, backend)

    def up_replicas(self) -> list[front.Replica]:
        return front.up_replicas(self)

    def token_servers_up(self) -> int:
        return front.token_servers_up(self)

    def wait_ready(self, replicas: int, timeout: float = 240.0) -> None:
        front.wait_ready(self.engine, self, self._paths.ca_cert, replicas, timeout)

    def status(self) -> dict[str, Any]:
        """What runs: each service's running/wanted tasks, and the front's view."""
        self.require_deployed()
        services = {}
        for svc in self.services():
            wanted = svc.attrs["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas")
            services[svc.name] = f"{len(self.running_tasks(svc.name))}/{wanted}"
        return {
            "stack": self.name,
            "services": services,
            "front": f"{self.url} ({self.front}, through {self.relay})",
            "working folder": str(self.workdir),
            "replicas up at the front": [r.address for r in self.up_replicas()],
        }

    def require_deployed(self) -> None:
        if not self.deployed():
            raise ConfigError(
                f"nothing deployed: no stack {self.name} on this engine",
                "start it first: reglab swarm up",
            )

    # --- operations ---
    def scale(self, replicas: int, timeout: float = 120.0) -> None:
        """``docker service scale``; return when the front sees exactly that many up."""
        self.check_replicas(replicas)
        self.require_deployed()
        with docker_errors(f"cannot scale {self.service}", error=RegistryError):
            self.engine.services.get(self.service).scale(replicas)
        self.replicas = replicas
        self.wait_ready(replicas, timeout)

    def rolling_update(self, timeout: float = 180.0) -> None:
        """``docker service update --force``: every replica replaced, one at a time, the new one
        started before the old one stops; return when the update completed and the front
        sees every replica up."""
        self.require_deployed()
        svc = self.engine.services.get(self.service)
        started = deploy.update_started(svc)
        with docker_errors(f"cannot update {self.service}", error=RegistryError):
            svc.force_update()
        deploy.wait_update(svc, started, timeout)
        self.wait_ready(self.replicas, timeout)

    def replica_containers(self) -> list[Any]:
        """The containers of the running registry tasks (on this node)."""
        found = []
        for task in self.running_tasks(self.service):
            cid = task["Status"].get("ContainerStatus", {}).get("ContainerID")
            try:
                found.append(self.engine.containers.get(cid))
            except (docker.errors.NotFound, docker.errors.NullResource):
                continue
        return found

    def kill_replica(self) -> str:
        """Kill one replica's container (as a crash would); return its name. Swarm starts a
        new task in its place."""
        containers = self.replica_containers()
        if not containers:
            raise RegistryError(f"no running replica of {self.service}", "reglab swarm up")
        victim = containers[0]
        victim.kill()
        return str(victim.name)

    # --- the odd registry (another http.secret) ---
    def odd_commands(self, style: PathStyle) -> list[str]:
        return odd.odd_commands(self, self.folder, style)

    def start_odd(self, timeout: float = 90.0) -> None:
        odd.start_odd(self.engine, self, self.folder, timeout)

    def remove_odd(self) -> bool:
        return odd.remove_odd(self.engine, self)

    # --- down ---
    def down_commands(self, purge: bool) -> list[str]:
        return deploy.down_commands(self, purge)

    def down(self, purge: bool = False, leave: bool = True, timeout: float = 60.0) -> bool:
        """Remove the relay, the odd registry and the stack (its services, containers, network
        and secrets); with ``purge`` the store's volume too. Then leave the swarm if reglab
        created it. Return whether the swarm was left. The volume outlives the stack
        otherwise: deploy again, and every image is still there.

        Each step waits until what it removed is gone (polled): the next one needs it gone,
        and leaving the swarm needs every container off its networks (see
        :mod:`reglab.swarm.cluster`)."""
        relay = self.relay_container()
        volumes = [v for v in self.engine.volumes.list(filters={"name": self.volume})]
        volumes = [v for v in volumes if v.name == self.volume] if purge else []
        idle_swarm = leave and cluster.swarm_owned(self.engine) and not self.engine.services.list()
        if not (self.deployed() or relay or volumes or idle_swarm):
            raise ConfigError(
                f"nothing deployed: no stack {self.name} on this engine",
                "nothing to do (reglab swarm up starts it)",
            )
        strangers = self._strangers()
        if strangers:  # waiting would not make them go: say so before anything is removed
            raise RegistryError(
                f"{', '.join(strangers)} still on the network {self.network}, which the stack "
                "cannot be removed without",
                f"remove it (docker rm -f {' '.join(strangers)}) or disconnect it "
                f"(docker network disconnect {self.network} NAME), then reglab swarm down again",
            )
        if relay is not None:
            with docker_errors(f"cannot remove {self.relay}", error=RegistryError):
                relay.remove(force=True)
        self.remove_odd()
        self.remove_stack(timeout)
        for volume in volumes:
            cluster.remove_when_released(
                f"the volume {volume.name}",
                volume.remove,
                timeout,
                f"see docker ps -a -f volume={volume.name}; then docker volume rm {volume.name}",
            )
        return leave and cluster.leave_swarm(self.engine, timeout)

    def _strangers(self) -> list[str]:
        """Containers on the stack's network that neither the stack nor reglab put there."""
        held = cluster.containers_on(self.engine, self.network) or {}
        stack = {c["Id"] for c in self.engine.api.containers(all=True, filters=self.namespace)}
        ours = (self.relay, self.odd)
        return sorted(name for cid, name in held.items() if cid not in stack and name not in ours)

    def remove_stack(self, timeout: float = 60.0) -> None:
        deploy.remove_stack(self.engine, self, timeout)
