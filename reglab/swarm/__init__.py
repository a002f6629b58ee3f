"""Registry replicas on Docker Swarm: shared object storage, a shared Redis cache, one
``http.secret``, and a front that health-checks the replicas.

What the distribution docs ask of a load-balanced registry, built from real parts:

- the stack file ``reglab/assets/stack.yml`` (``docker stack deploy`` format): SeaweedFS's S3
  gateway, Redis and N registry replicas, every one with ``endpoint_mode: dnsrr``;
- token authentication: the token server of notebook 08 (:mod:`reglab.auth.tokenserver`) as a
  service with two replicas, reading the working folder's users and access list; every registry
  replica trusts tokens signed by a key the workshop CA certified;
- the registry's whole config as a Docker secret (it holds ``http.secret`` and the store's keys),
  the users' htpasswd file, the token-signing key and the store's identities as secrets too;
  what is not secret (the access list, certificates) as Docker configs;
- HAProxy in front, a service of the stack too (its TLS key a secret): it finds the replicas
  through Docker's DNS (``tasks.SERVICE``), checks ``/v2/`` on each, and retries a request that
  found a replica gone on another one; ``/auth`` goes to the token servers, so the token realm
  is the front's own address;
- a relay, the one plain container: it holds 127.0.0.1:PORT and passes the connections (TLS
  still encrypted) to the front. Swarm publishes a service's port on every address of every
  node; a workshop keeps its registry on 127.0.0.1. On a cluster, publish the front instead.

The swarm itself: reglab runs ``docker swarm init`` only when the engine is in no swarm, marks
the node as its own, and :meth:`SwarmRegistry.down` leaves only such a swarm. An engine already
in a swarm is used as it is and never left.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import yaml

from reglab.auth.htpasswd import Htpasswd
from reglab.base.errors import (
    ClientError,
    ConfigError,
    EngineError,
    RegistryError,
    ReglabError,
    docker_errors,
)
from reglab.base.files import write_atomic
from reglab.base.labels import OWNER_LABEL, owner_labels
from reglab.base.settings import FRONT_IMAGE, REGISTRY_IMAGE
from reglab.base.shell import PathStyle
from reglab.registry.client import MANIFEST_TYPES, RegistryClient
from reglab.registry.config import TOKEN_ISSUER, TOKEN_SERVICE
from reglab.registry.token import check_acl, use_acl
from reglab.registry.workdir import Workdir

#: Marks a swarm reglab created (a label of the engine's node): only such a swarm is left.
SWARM_LABEL = "org.reglab.swarm"
#: Says whether docker_gwbridge (made by the engine for containers on overlay networks) was
#: there before reglab's swarm: if not, leaving the swarm removes it too.
GWBRIDGE_LABEL = "org.reglab.gwbridge"
GWBRIDGE = "docker_gwbridge"
#: The front's ports inside its containers (the relay's too): the registry (TLS) and
#: HAProxy's statistics.
FRONT_PORT = 5443
STATS_PORT = 8404
#: The bucket the registry stores in (the store makes it at start).
BUCKET = "registry"
#: How many replicas the front can know at once (HAProxy's server-template slots).
MAX_REPLICAS = 9
#: The token service's replicas (stack.yml) and the front's slots for them.
TOKEN_REPLICAS = 2
#: The files of ``workdir/swarm`` that become secrets or configs, in two groups, each versioned
#: by the hash of its files (a variable of the stack file): the store's identities apart, so
#: that adding a user does not restart the store.
VERSIONS = {
    "REGLAB_STORE": ("s3.json",),
    "REGLAB_SECRETS": (
        "registry.yml", "htpasswd", "token.key", "front.pem",
        "acl.yml", "token.crt", "ca.crt", "haproxy.cfg",
    ),
}  # fmt: skip

HAPROXY_CFG = """\
# HAProxy in front of the registry replicas (written by reglab swarm up).
global
    log stdout format raw local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    # A request that found its replica gone (refused, reset, no answer) goes to another one.
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 502 503 504

# Docker's DNS: tasks.SERVICE answers with the address of every running replica.
resolvers docker
    nameserver dns 127.0.0.11:53
    hold valid 1s
    hold obsolete 1s
    accepted_payload_size 8192

frontend registry
    bind :{front_port} ssl crt /run/secrets/front.pem
    http-request set-header X-Forwarded-Proto https
    # The token realm is this front's /auth: one address for the learner and the engine.
    use_backend tokens if {{ path /auth }}
    default_backend replicas

backend tokens
    balance roundrobin
    # A token server is up when it signs an anonymous token.
    option httpchk GET "/auth?service={token_service}"
    http-check expect status 200
    default-server check inter 1s fall 2 rise 1 resolvers docker init-addr none
    server-template token {token_slots} tasks.{token}:5001

backend replicas
    balance roundrobin
    # A replica is up when /v2/ answers 200 or 401 (auth is on): that is the registry itself.
    option httpchk GET /v2/
    http-check expect rstatus ^(200|401)$
    # Which replica answered (its name here), for a client to see; and a client may pick one
    # (X-Reglab-Use: replica2): the workshop shows what each replica serves.
    http-response set-header X-Reglab-Replica %s
{use_server}
    default-server check inter 1s fall 2 rise 1 resolvers docker init-addr none
    server-template replica {slots} tasks.{service}:5000
    # A registry started beside the stack as {odd} (notebook 09: another http.secret);
    # only a request that asks for it goes there.
    server odd {odd}:5000 backup

frontend stats
    bind :{stats_port}
    stats enable
    stats uri /stats
    stats refresh 5s
    stats show-legends  # the CSV then has each replica's address
"""

RELAY_CFG = """\
# The relay: 127.0.0.1:PORT on this machine to the front, a service of the stack (written by
# reglab swarm up). TCP only: TLS ends at the front, and the relay holds no key.
global
    log stdout format raw local0 info

defaults
    mode tcp
    option splice-auto  # the kernel moves the bytes: no copy through the relay
    timeout connect 2s
    timeout client 60s
    timeout server 60s

resolvers docker
    nameserver dns 127.0.0.11:53
    hold valid 1s
    hold obsolete 1s

frontend registry
    bind :{front_port}
    default_backend front

# Two slots: while the front is updated, the new one runs beside the old one for a moment.
backend front
    default-server check inter 1s resolvers docker init-addr none
    retries 3
    option redispatch 1
    server-template front 2 tasks.{front}:{front_port}

frontend stats
    bind :{stats_port}
    default_backend stats

backend stats
    balance first
    default-server check inter 1s resolvers docker init-addr none
    server-template front 2 tasks.{front}:{stats_port}
"""


def stack_file() -> bytes:
    """The stack file shipped with reglab (reglab/assets/stack.yml)."""
    return resources.files("reglab").joinpath("assets/stack.yml").read_bytes()


# --- the swarm ---------------------------------------------------------------------------------


def swarm_state(engine: docker.DockerClient) -> str:
    """``inactive``, ``active``, ``pending``, ``error`` or ``locked``: the engine's swarm."""
    with docker_errors("cannot read the engine's swarm state", error=EngineError):
        info = engine.info()
    return str((info.get("Swarm") or {}).get("LocalNodeState") or "inactive")


def _node(engine: docker.DockerClient) -> Any:
    node_id = (engine.info().get("Swarm") or {}).get("NodeID")
    return engine.nodes.get(node_id)


def swarm_owned(engine: docker.DockerClient) -> bool:
    """True when the engine is in a swarm that reglab created."""
    if swarm_state(engine) != "active":
        return False
    with docker_errors("cannot read this node", error=EngineError):
        labels = _node(engine).attrs["Spec"].get("Labels") or {}
    return labels.get(SWARM_LABEL) == "created"


def init_commands() -> list[str]:
    """What :func:`ensure_swarm` does when the engine is in no swarm, as a terminal types it."""
    node = "$(docker info --format '{{.Swarm.NodeID}}')"
    return [
        "docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377",
        f"docker node update --label-add {SWARM_LABEL}=created {node}",
    ]


def ensure_swarm(engine: docker.DockerClient) -> bool:
    """Make sure the engine is a swarm manager; return True when this call created the swarm.

    ``docker swarm init`` only when the engine is in no swarm. It listens on 127.0.0.1 only:
    another machine joins a swarm over the network, which a workshop on one machine does not
    need. An engine in someone else's swarm is used as it is (as a manager) or refused (as a
    worker, which cannot deploy).
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
        engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
        node = _node(engine)
        spec = dict(node.attrs["Spec"])
        gwbridge = "existed" if had_gwbridge else "created"
        spec["Labels"] = {**(spec.get("Labels") or {}), SWARM_LABEL: "created"}
        spec["Labels"][GWBRIDGE_LABEL] = gwbridge
        node.update(spec)
    return True


def leave_swarm(engine: docker.DockerClient) -> bool:
    """Leave the swarm if reglab created it and nothing runs in it any more (then remove
    docker_gwbridge too if the swarm made it); return True when it left. Someone else's swarm
    is never left."""
    if not swarm_owned(engine):
        return False
    if engine.services.list():  # another stack still runs in it: not while it does
        return False
    labels = _node(engine).attrs["Spec"].get("Labels") or {}
    with docker_errors("cannot leave the swarm", error=EngineError):
        engine.swarm.leave(force=True)
    if labels.get(GWBRIDGE_LABEL) == "created":
        for network in engine.networks.list(names=[GWBRIDGE]):
            if network.name == GWBRIDGE and not network.attrs.get("Containers"):
                _wait_removed(lambda n=network: n.remove())
    return True


def _wait_removed(remove: Any, timeout: float = 20.0) -> None:
    """Call ``remove`` until it works: the engine lets go of a network a moment after the
    last endpoint on it is gone."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _update_started(svc: Any) -> str:
    """When the service's last update started ("" if it had none)."""
    return str((svc.attrs.get("UpdateStatus") or {}).get("StartedAt", ""))


# --- the deployment ----------------------------------------------------------------------------


@dataclass
class Replica:
    """One replica as the front sees it."""

    name: str  # the front's name for it (replica1, ...)
    address: str  # its address on the stack's network
    status: str  # UP, DOWN, MAINT (no task in that slot)


@dataclass
class SwarmRegistry:
    """The stack ``name``: registry replicas, store, cache, and its front on 127.0.0.1:port."""

    engine: docker.DockerClient
    name: str
    port: int
    workdir: Path
    replicas: int = 3
    _paths: Workdir = field(init=False)

    def __post_init__(self) -> None:
        self._paths = Workdir(self.workdir)

    # --- names ---
    @property
    def folder(self) -> Path:
        return self.workdir / "swarm"

    @property
    def service(self) -> str:
        return f"{self.name}_registry"

    @property
    def token_service(self) -> str:
        return f"{self.name}_token"

    @property
    def realm(self) -> str:
        """Where clients get tokens: the front sends /auth to the token servers."""
        return f"{self.url}/auth"

    @property
    def network(self) -> str:
        return f"{self.name}_default"

    @property
    def front(self) -> str:
        """The front's service (HAProxy: TLS, health checks, retries)."""
        return f"{self.name}_front"

    @property
    def relay(self) -> str:
        """The plain container that holds 127.0.0.1:port and passes connections to the front."""
        return f"{self.name}-relay"

    @property
    def odd(self) -> str:
        """The name of a registry started beside the stack with another ``http.secret``."""
        return f"{self.name}-odd"

    @property
    def volume(self) -> str:
        return f"{self.name}_s3-data"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 1}/stats;csv"

    def client(self, auth: tuple[str, str] | None = None) -> RegistryClient:
        """An HTTP API client for the front, verifying TLS against the workshop CA."""
        return RegistryClient(self.url, ca=self._paths.ca_cert, auth=auth)

    # --- checks ---
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
        for port in (self.port, self.port + 1):
            with socket.socket() as probe:
                # as the engine binds it: a port that only lingers after a close is free
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise ConfigError(
                        f"port {port} on 127.0.0.1 is in use (the front needs {self.port} "
                        f"and {self.port + 1})",
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

    # --- files ---
    def write_files(self, acl: Path | None = None) -> dict[str, str]:
        """Write the stack's files into ``workdir/swarm``; return their versions (hashes, by
        the stack file's variable: :data:`VERSIONS`).

        ``http.secret`` and the store's keys are made once and kept: every replica, and every
        later deployment, must share them. The users and the access list are the working
        folder's (``acl``, when given, is copied there first, as ``reglab up token --acl``).
        """
        cert = self._paths.server_certificate()  # the workshop CA's, issued when missing
        self._paths.signing_certificate()  # the token servers' key, issued when missing
        acl_file = use_acl(self._paths, acl)
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        keys_file = folder / "keys.json"
        if keys_file.is_file():
            keys = json.loads(keys_file.read_text())
        else:
            keys = {
                "http_secret": secrets.token_hex(32),
                "access_key": "reglab" + secrets.token_hex(6),
                "secret_key": secrets.token_hex(20),
            }
            write_atomic(keys_file, json.dumps(keys, indent=1).encode(), mode=0o600)
        config = {
            "version": 0.1,
            "log": {"level": "info", "fields": {"service": "registry"}},
            "storage": {
                "s3": {
                    "accesskey": keys["access_key"],
                    "secretkey": keys["secret_key"],
                    "region": "us-east-1",
                    "regionendpoint": "http://s3:8333",  # also makes the requests path-style
                    "bucket": BUCKET,
                    "secure": False,  # inside the stack's own network
                    "v4auth": True,
                    "rootdirectory": "/",
                },
                "cache": {"blobdescriptor": "redis"},
                "delete": {"enabled": True},
                "redirect": {"disable": True},  # clients never talk to the store
            },
            "redis": {"addr": "redis:6379", "dialtimeout": "1s", "readtimeout": "1s"},
            "http": {
                "addr": ":5000",
                # On SIGTERM (a rolling update stops the old replica), finish the requests in
                # flight, up to 5 s, before exiting; Swarm kills after 10 s (stop_grace_period).
                "draintimeout": "5s",
                "secret": keys["http_secret"],
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": {
                "token": {
                    "realm": self.realm,
                    "service": TOKEN_SERVICE,
                    "issuer": TOKEN_ISSUER,
                    "rootcertbundle": "/etc/reglab/ca.crt",
                }
            },
            "health": {"storagedriver": {"enabled": True, "interval": "5s", "threshold": 3}},
        }
        identities = {
            "identities": [
                {
                    "name": "registry",
                    "credentials": [
                        {"accessKey": keys["access_key"], "secretKey": keys["secret_key"]}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        use_server = "\n".join(
            f"    use-server {name} if {{ req.hdr(x-reglab-use) -m str {name} }}"
            for name in [*(f"replica{i}" for i in range(1, MAX_REPLICAS + 1)), "odd"]
        )
        haproxy = HAPROXY_CFG.format(
            front_port=FRONT_PORT,
            stats_port=STATS_PORT,
            slots=MAX_REPLICAS,
            service=self.service,
            use_server=use_server,
            odd=self.odd,
            token=self.token_service,
            token_slots=TOKEN_REPLICAS,
            token_service=TOKEN_SERVICE,
        )
        relay = RELAY_CFG.format(front_port=FRONT_PORT, stats_port=STATS_PORT, front=self.front)
        files = {
            "stack.yml": stack_file(),
            "registry.yml": yaml.safe_dump(config, sort_keys=False).encode(),
            "s3.json": json.dumps(identities, indent=1).encode(),
            "htpasswd": self._paths.htpasswd.read_bytes(),
            "token.key": self._paths.token_key.read_bytes(),
            "acl.yml": acl_file.read_bytes(),
            "token.crt": self._paths.token_cert.read_bytes(),
            "ca.crt": self._paths.ca_cert.read_bytes(),
            "haproxy.cfg": haproxy.encode(),
            "front.pem": cert.cert_pem + cert.key_pem,
            "relay.cfg": relay.encode(),
        }
        for name, data in files.items():
            secret = name in ("registry.yml", "s3.json", "token.key", "front.pem")
            write_atomic(folder / name, data, mode=0o600 if secret else 0o644)
        versions = {}
        for variable, names in VERSIONS.items():
            digest = hashlib.sha256()
            for name in names:
                digest.update(files[name])
            versions[variable] = digest.hexdigest()[:12]
        return versions

    # --- deploy ---
    def deploy_environment(self, versions: dict[str, str]) -> dict[str, str]:
        return {"REGLAB_STACK": self.name, "REGLAB_REPLICAS": str(self.replicas), **versions}

    def deploy_command(self, style: PathStyle) -> str:
        """The ``docker stack deploy`` line; the versions are the same hashes
        :meth:`write_files` computes, worked out by the shell from the files."""
        versions = " ".join(
            f"{variable}=$(cat {' '.join(style.show(self.folder / n) for n in names)} "
            "| sha256sum | cut -c1-12)"
            for variable, names in VERSIONS.items()
        )
        stack = style.show(self.folder / "stack.yml")
        return (
            f"REGLAB_STACK={self.name} REGLAB_REPLICAS={self.replicas} {versions} "
            f"docker stack deploy --resolve-image never -c {stack} {self.name}"
        )

    def wait_command(self, style: PathStyle) -> str:
        """A line that waits, as :meth:`wait_ready` does, until the store and the cache are
        healthy, a replica answers through the front (401: it asks for a token) and so does a
        token server (200: an anonymous token)."""
        ca = style.show(self._paths.ca_cert)
        code = f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca}"
        healthy = f"docker ps -q -f label=com.docker.stack.namespace={self.name} -f health=healthy"
        return (
            f'until [ "$({healthy} | wc -l)" -ge 2 ] && [ "$({code} {self.url}/v2/)" = 401 ] '
            f'&& [ "$({code} "{self.realm}?service={TOKEN_SERVICE}")" = 200 ]; do sleep 0.2; done'
        )

    def relay_command(self, style: PathStyle) -> str:
        mount = style.show(self.folder / "relay.cfg", mount_to="/etc/haproxy/relay.cfg")
        return (
            f"docker run -d --name {self.relay} --label {OWNER_LABEL}=true "
            f"--network {self.network} -p 127.0.0.1:{self.port}:{FRONT_PORT} "
            f"-p 127.0.0.1:{self.port + 1}:{STATS_PORT} -v {mount}:ro "
            f"{FRONT_IMAGE} haproxy -W -db -f /etc/haproxy/relay.cfg"
        )

    def deploy(self, versions: dict[str, str], timeout: float = 240.0) -> None:
        """``docker stack deploy`` (the Docker SDK has no stacks: the docker command does it).
        Deployed over a running stack, it returns when the services it changed have completed
        their rolling updates (new secrets or configs: new tasks, started as the stack file's
        ``update_config`` says)."""
        if shutil.which("docker") is None:
            raise EngineError(
                "the docker command is needed to deploy a stack", "install Docker's CLI"
            )
        before = {
            svc.name: (svc.attrs["Spec"].get("TaskTemplate"), _update_started(svc))
            for svc in self.services()
        }
        env = {**os.environ, **self.deploy_environment(versions)}
        command = ["docker", "stack", "deploy", "--resolve-image", "never", "-c"]
        command += [str(self.folder / "stack.yml"), self.name]
        result = subprocess.run(
            command, env=env, cwd=self.folder, capture_output=True, text=True, timeout=300
        )
        if result.returncode != 0:
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
            raise RegistryError(
                f"docker stack deploy failed: {last[0][:300]}", "see 'docker stack ps " + self.name
            )
        for svc in self.services():
            template, started = before.get(svc.name, (None, ""))
            if template is not None and svc.attrs["Spec"].get("TaskTemplate") != template:
                self._wait_update(svc, started, timeout)

    @classmethod
    def attach(
        cls, engine: docker.DockerClient, name: str, workdir: Path, port: int
    ) -> SwarmRegistry:
        """The deployment ``name`` as it runs: its port read from the relay (``port`` when no
        relay runs), its replicas from the service."""
        registry = cls(engine, name, port, workdir)
        relay = registry.relay_container()
        if relay is not None:
            bindings = (relay.attrs["HostConfig"].get("PortBindings") or {}).get(
                f"{FRONT_PORT}/tcp"
            ) or [{}]
            registry.port = int(bindings[0].get("HostPort") or port)
        try:
            spec = engine.services.get(registry.service).attrs["Spec"]
            registry.replicas = int(spec["Mode"]["Replicated"]["Replicas"])
        except (docker.errors.NotFound, docker.errors.APIError, KeyError):
            pass
        return registry

    # --- a registry with another http.secret (notebook 09 shows what it breaks) ---
    def odd_commands(self, style: PathStyle) -> list[str]:
        config = style.show(self.folder / "odd.yml", mount_to="/etc/docker/registry/config.yml")
        ca = style.show(self.folder / "ca.crt", mount_to="/etc/reglab/ca.crt")
        registry_yml = style.show(self.folder / "registry.yml")
        odd_yml = style.show(self.folder / "odd.yml")
        return [
            f'(umask 077; sed "s/^  secret: .*/  secret: another-$RANDOM$RANDOM$RANDOM/" '
            f"{registry_yml} > {odd_yml})",
            f"docker run -d --name {self.odd} --label {OWNER_LABEL}=true --network {self.network} "
            f"-v {config}:ro -v {ca}:ro {REGISTRY_IMAGE}",
        ]

    def start_odd(self, timeout: float = 90.0) -> None:
        """Start a registry like the replicas (same store, cache, tokens) but with another
        ``http.secret``, beside the stack; the front sends it only requests that ask for it.
        Return when the front sees it up."""
        config = yaml.safe_load((self.folder / "registry.yml").read_text())
        config["http"]["secret"] = secrets.token_hex(32)
        write_atomic(
            self.folder / "odd.yml", yaml.safe_dump(config, sort_keys=False).encode(), 0o600
        )
        # Rarely, the front has been seen never to reach a plain container that just joined
        # the stack's network (for a whole minute; by name, through Docker's DNS). A new
        # container, with a new address, is then started: up to three in all.
        for _attempt in range(3):
            self._run_odd()
            deadline = time.monotonic() + timeout / 3
            while time.monotonic() < deadline:
                if self._answers_as("odd"):
                    return
                time.sleep(0.3)
        seen = [r.status for r in self.replicas_seen(True) if r.name == "odd"]
        raise RegistryError(
            f"the front never reached {self.odd} (it shows it "
            f"{seen[0] if seen else 'with no address: not resolved'})",
            f"docker logs {self.odd}; docker service logs {self.front}",
        )

    def _run_odd(self) -> None:
        self.remove_odd()
        with docker_errors(f"cannot start {self.odd}", error=RegistryError):
            self.engine.containers.run(
                REGISTRY_IMAGE,
                name=self.odd,
                detach=True,
                labels=owner_labels(),
                network=self.network,
                volumes={
                    str((self.folder / "odd.yml").resolve()): {
                        "bind": "/etc/docker/registry/config.yml",
                        "mode": "ro",
                    },
                    str((self.folder / "ca.crt").resolve()): {
                        "bind": "/etc/reglab/ca.crt",
                        "mode": "ro",
                    },
                },
            )

    def _answers_as(self, replica: str) -> bool:
        """True when the front shows ``replica`` up AND a request sent to it is answered by it:
        a server the front just resolved may count as up before it listens, and a request
        it cannot reach goes to another replica."""
        if not any(r.name == replica and r.status == "UP" for r in self.replicas_seen(True)):
            return False
        with self.client() as api:
            try:
                answer = api.session.get(
                    f"{self.url}/v2/", headers=replica_header(replica), verify=api.verify, timeout=5
                )
            except requests.RequestException:
                return False
        return served_by(answer) == replica

    def remove_odd(self) -> bool:
        try:
            self.engine.containers.get(self.odd).remove(force=True, v=True)
        except docker.errors.NotFound:
            return False
        return True

    def relay_container(self) -> Any:
        try:
            return self.engine.containers.get(self.relay)
        except docker.errors.NotFound:
            return None

    def start_relay(self) -> None:
        """Start the relay on the stack's network (again, if it runs)."""
        old = self.relay_container()
        if old is not None:
            old.remove(force=True)
        config = str((self.folder / "relay.cfg").resolve())
        with docker_errors(f"cannot start the relay {self.relay}", error=RegistryError):
            self.engine.containers.run(
                FRONT_IMAGE,
                ["haproxy", "-W", "-db", "-f", "/etc/haproxy/relay.cfg"],
                name=self.relay,
                detach=True,
                labels=owner_labels(),
                network=self.network,
                ports={
                    f"{FRONT_PORT}/tcp": ("127.0.0.1", self.port),
                    f"{STATS_PORT}/tcp": ("127.0.0.1", self.port + 1),
                },
                volumes={config: {"bind": "/etc/haproxy/relay.cfg", "mode": "ro"}},
            )

    def up(self, acl: Path | None = None, timeout: float = 240.0) -> bool:
        """Swarm, files, stack and relay; return when every replica answers through the front.
        Return True when it created the swarm. ``acl``: an access list to use (copied to the
        working folder's ``auth/acl.yml``). Every check comes first: bad input changes
        nothing."""
        self.check_replicas(self.replicas)
        self.check_users(acl)
        self.check_ports()
        created = ensure_swarm(self.engine)
        versions = self.write_files(acl)
        self.deploy(versions)
        self.start_relay()
        self.wait_ready(self.replicas, timeout)
        return created

    # --- state ---
    def services(self) -> list[Any]:
        with docker_errors("cannot list the swarm's services", error=EngineError):
            return list(
                self.engine.services.list(
                    filters={"label": f"com.docker.stack.namespace={self.name}"}
                )
            )

    def deployed(self) -> bool:
        return swarm_state(self.engine) == "active" and bool(self.services())

    def running_tasks(self, service: str) -> list[dict[str, Any]]:
        """The service's tasks that run now (and are meant to)."""
        try:
            svc = self.engine.services.get(service)
        except docker.errors.NotFound:
            return []
        tasks = svc.tasks(filters={"desired-state": "running"})
        return [t for t in tasks if t["Status"]["State"] == "running"]

    def _task_trouble(self, name: str) -> str:
        """What the service's newest task that is not running says (its state and error)."""
        try:
            service = self.engine.services.get(name)
            tasks = service.tasks()
        except docker.errors.APIError:
            return ""
        wanted = service.attrs["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas")
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

    def healthy(self, service: str) -> bool:
        """True when a task of the service runs and its health check passed (if it has one)."""
        for task in self.running_tasks(service):
            cid = task["Status"].get("ContainerStatus", {}).get("ContainerID")
            try:
                state = self.engine.containers.get(cid).attrs["State"]
            except (docker.errors.NotFound, docker.errors.NullResource):
                continue
            health = (state.get("Health") or {}).get("Status")
            if health in (None, "healthy"):
                return True
        return False

    def replicas_seen(self, odd: bool = False, backend: str = "replicas") -> list[Replica]:
        """The front's view of the replicas, from HAProxy's statistics (CSV); with ``odd``
        the registry started beside the stack too. ``backend="tokens"``: the token servers."""
        try:
            answer = requests.get(self.stats_url, timeout=5)
        except requests.RequestException:
            return []
        rows = answer.text.lstrip("# ").splitlines()
        if not rows:
            return []
        header = rows[0].split(",")
        prefix = "replica" if backend == "replicas" else "token"
        seen = []
        for row in rows[1:]:
            values = dict(zip(header, row.split(","), strict=False))
            name = values.get("svname", "")
            if values.get("pxname") == backend and (
                name.startswith(prefix) or (odd and name == "odd")
            ):
                address = values.get("addr", "").rsplit(":", 1)[0]
                status = values.get("status", "").split(" ")[0]
                if status != "MAINT":  # MAINT (resolution): a slot with no replica in it
                    seen.append(Replica(values["svname"], address, status))
        return seen

    def up_replicas(self) -> list[Replica]:
        return [r for r in self.replicas_seen() if r.status == "UP"]

    def token_servers_up(self) -> int:
        return sum(r.status == "UP" for r in self.replicas_seen(backend="tokens"))

    def wait_ready(self, replicas: int, timeout: float = 240.0) -> None:
        """Wait until the store and cache are healthy, ``replicas`` registry tasks run, the
        front has both token servers and exactly ``replicas`` replicas up; then ``GET /v2/``
        through it answers, with an anonymous token from the front's ``/auth``."""
        deadline = time.monotonic() + timeout
        waiting = "the store and the cache"
        while time.monotonic() < deadline:
            if not (self.healthy(f"{self.name}_s3") and self.healthy(f"{self.name}_redis")):
                waiting = "the store and the cache"
            elif not self.running_tasks(self.front):
                waiting = f"the front ({self.front}){self._task_trouble(self.front)}"
            elif (running := len(self.running_tasks(self.service))) != replicas:
                waiting = (
                    f"{replicas} registry replicas, {running} run{self._task_trouble(self.service)}"
                )
            elif self.token_servers_up() != TOKEN_REPLICAS:
                waiting = f"the front to see {TOKEN_REPLICAS} token servers up"
            elif (up := len(self.up_replicas())) != replicas or len(
                self.replicas_seen()
            ) != replicas:
                waiting = f"the front to see {replicas} replicas up, {up} are"
            else:
                with self.client() as api:
                    try:
                        # 200: a replica asked for a token, a token server signed an
                        # anonymous one, and the replica took it
                        if api.status() == 200:
                            return
                    except ReglabError:
                        pass  # no answer yet
                waiting = "GET /v2/ through the front"
            time.sleep(0.5)
        raise RegistryError(
            f"the swarm registry was not ready within {timeout:g} s (waiting for {waiting})",
            f"see docker stack ps {self.name} and docker service logs {self.front}",
        )

    # --- operations ---
    def scale(self, replicas: int, timeout: float = 120.0) -> None:
        """``docker service scale``; return when the front sees exactly that many up."""
        self.check_replicas(replicas)
        self._require_deployed()
        with docker_errors(f"cannot scale {self.service}", error=RegistryError):
            self.engine.services.get(self.service).scale(replicas)
        self.replicas = replicas
        self.wait_ready(replicas, timeout)

    def _wait_update(self, svc: Any, before: str, timeout: float) -> None:
        """Wait until the service's update that started after ``before`` completed; a paused
        or rolled back one raises (see the stack file's ``update_config``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            svc.reload()
            status = svc.attrs.get("UpdateStatus") or {}
            if status.get("StartedAt", "") != before:
                state = status.get("State")
                if state == "completed":
                    return
                if state in ("paused", "rollback_completed", "rollback_paused"):
                    raise RegistryError(
                        f"the update of {svc.name} ended {state}: {status.get('Message', '')}",
                        f"see docker service ps {svc.name}",
                    )
            time.sleep(0.3)
        raise RegistryError(
            f"the update of {svc.name} did not finish in {timeout:g} s",
            f"see docker service ps {svc.name}",
        )

    def replica_containers(self) -> list[Any]:
        """The containers of the running registry tasks (on this node)."""
        ids = [
            t["Status"].get("ContainerStatus", {}).get("ContainerID")
            for t in self.running_tasks(self.service)
        ]
        found = []
        for cid in ids:
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

    def rolling_update(self, timeout: float = 180.0) -> None:
        """``docker service update --force``: every replica replaced, one at a time, the new one
        started before the old one stops; return when the update completed and the front
        sees every replica up."""
        self._require_deployed()
        svc = self.engine.services.get(self.service)
        started = _update_started(svc)
        with docker_errors(f"cannot update {self.service}", error=RegistryError):
            svc.force_update()
        self._wait_update(svc, started, timeout)
        self.wait_ready(self.replicas, timeout)

    def _require_deployed(self) -> None:
        if not self.deployed():
            raise ConfigError(
                f"nothing deployed: no stack {self.name} on this engine",
                "start it first: reglab swarm up",
            )

    def status(self) -> dict[str, Any]:
        """What runs: each service's running/wanted tasks, and the front's view."""
        self._require_deployed()
        services = {}
        for svc in self.services():
            wanted = svc.attrs["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas")
            services[svc.name] = f"{len(self.running_tasks(svc.name))}/{wanted}"
        return {
            "stack": self.name,
            "services": services,
            "front": f"{self.url} ({self.front}, through {self.relay})",
            "replicas up at the front": [r.address for r in self.up_replicas()],
        }

    def down_commands(self, purge: bool) -> list[str]:
        gone = f"docker network ls -q -f label=com.docker.stack.namespace={self.name}"
        commands = [
            f"docker rm -f {self.relay}",
            f"docker stack rm {self.name}",
            # the command returns at once; the network goes a moment later
            f'until [ -z "$({gone})" ]; do sleep 0.2; done',
        ]
        if purge:
            commands.append(f"docker volume rm {self.volume}")
        return commands

    def down(self, purge: bool = False, leave: bool = True, timeout: float = 60.0) -> bool:
        """Remove the relay and the stack (its services, network and secrets); with ``purge``
        the store's volume too. Then leave the swarm if reglab created it. Return whether
        the swarm was left. The volume outlives the stack otherwise: deploy again, and every
        image is still there."""
        relay = self.relay_container()
        volumes = [v for v in self.engine.volumes.list(filters={"name": self.volume})]
        volumes = [v for v in volumes if v.name == self.volume] if purge else []
        idle_swarm = leave and swarm_owned(self.engine) and not self.engine.services.list()
        if not (self.deployed() or relay or volumes or idle_swarm):
            raise ConfigError(
                f"nothing deployed: no stack {self.name} on this engine",
                "nothing to do (reglab swarm up starts it)",
            )
        if relay is not None:
            relay.remove(force=True)
        self.remove_odd()
        self.remove_stack(timeout)
        for volume in volumes:
            _wait_removed(volume.remove, timeout)
        return leave and leave_swarm(self.engine)

    def remove_stack(self, timeout: float = 60.0) -> None:
        """``docker stack rm``, done by the SDK in the same order; return when the stack's
        tasks, network, secrets and configs are gone (the command itself returns before)."""
        namespace = {"label": f"com.docker.stack.namespace={self.name}"}
        if swarm_state(self.engine) != "active":
            return
        with docker_errors(f"cannot remove the stack {self.name}", error=RegistryError):
            for svc in self.engine.services.list(filters=namespace):
                svc.remove()
            deadline = time.monotonic() + timeout
            # the low-level list: containers.list() inspects each, racing their removal
            while self.engine.api.containers(all=True, filters=namespace):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            for secret in self.engine.secrets.list(filters=namespace):
                secret.remove()
            for config in self.engine.configs.list(filters=namespace):
                config.remove()
            for network in self.engine.networks.list(filters=namespace):
                _wait_removed(network.remove, timeout)


# --- what the replicas do, measured -----------------------------------------------------------


def replica_header(name: str) -> dict[str, str]:
    """The header that makes the front send a request to the replica ``name``."""
    return {"X-Reglab-Use": name}


def served_by(response: requests.Response) -> str:
    """Which replica answered (the front's name for it)."""
    return response.headers.get("X-Reglab-Replica", "?")


def digest_from_each(
    registry: SwarmRegistry, auth: tuple[str, str], repository: str, reference: str = "latest"
) -> dict[str, str]:
    """{replica: digest} for ``repository:reference``, asking every replica the front has up,
    one by one (the answer says which replica it came from: it must be the one asked)."""
    found = {}
    with registry.client(auth=auth) as api:
        for replica in registry.up_replicas():
            response = api.request(
                "HEAD",
                f"/v2/{repository}/manifests/{reference}",
                headers={"Accept": MANIFEST_TYPES, **replica_header(replica.name)},
            )
            if served_by(response) != replica.name:
                raise RegistryError(
                    f"asked {replica.name}, {served_by(response)} answered",
                    "check the front's haproxy.cfg (use-server lines)",
                )
            found[replica.name] = str(response.headers["Docker-Content-Digest"])
    return found


@dataclass
class UploadStep:
    """One request of a chunked upload: what, where it went, what came back."""

    request: str  # POST, PATCH, PUT
    replica: str
    status: int
    error: str = ""


def split_upload(
    registry: SwarmRegistry,
    auth: tuple[str, str],
    repository: str,
    data: bytes,
    route: tuple[str, str, str],
) -> tuple[str, list[UploadStep]]:
    """Upload ``data`` as one blob in three requests (start, one chunk, commit), each sent to
    the replica ``route`` names; return the digest and each step. A step that fails ends it.

    The upload's state travels in its URL, signed with ``http.secret``: a replica with
    another secret cannot read it.
    """
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    steps: list[UploadStep] = []
    location = f"/v2/{repository}/blobs/uploads/"
    with registry.client(auth=auth) as api:
        for method, replica in zip(("POST", "PATCH", "PUT"), route, strict=True):
            path = location.split(registry.url, 1)[-1]
            kwargs: dict[str, Any] = {"headers": replica_header(replica)}
            if method == "PATCH":
                kwargs["data"] = data
                kwargs["headers"]["Content-Type"] = "application/octet-stream"
            if method == "PUT":
                path += ("&" if "?" in path else "?") + f"digest={digest}"
            try:
                response = api.request(method, path, **kwargs)
            except ClientError as exc:
                steps.append(UploadStep(method, replica, exc.status or 0, exc.problem))
                return digest, steps
            steps.append(UploadStep(method, replica, response.status_code))
            location = response.headers.get("Location", location)
    return digest, steps


@dataclass
class PullStream:
    """Pulls of one image through the front, over and over, from ``workers`` threads: the
    manifest, then every blob, each checked by its digest. Counts what failed and how.

    ``with PullStream(...) as stream: ...`` runs it while the block runs.
    """

    registry: SwarmRegistry
    auth: tuple[str, str]
    repository: str
    workers: int = 4
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    #: Blob downloads that broke off (their replica was killed mid-answer) and were resumed.
    resumed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return self.ok + len(self.failed)

    def _count(self, error: str | None, resumed: int = 0) -> None:
        with self._lock:
            self.resumed += resumed
            if error is None:
                self.ok += 1
            else:
                self.failed.append(error)

    def _run(self) -> None:
        with self.registry.client(auth=self.auth) as api:
            while not self._stop.is_set():
                try:
                    manifest = api.manifest(self.repository)
                    self._count(None)
                except ReglabError as exc:
                    self._count(exc.problem)
                    continue
                except Exception as exc:  # counted, never lost with the thread
                    self._count(f"{type(exc).__name__}: {exc}")
                    continue
                for blob in [manifest["config"], *manifest.get("layers", [])]:
                    self._count(*_fetch_blob(api, self.repository, blob["digest"]))

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        """Wait until at least ``count`` requests were made (so far)."""
        deadline = time.monotonic() + timeout
        while self.requests < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> PullStream:
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


#: How many times a blob download that broke off is resumed (the Docker engine: 5).
RESUMES = 3


def _fetch_blob(api: RegistryClient, repository: str, digest: str) -> tuple[str | None, int]:
    """GET one blob; (None, resumed) when its bytes hash to its digest, else (what went wrong,
    resumed).

    A download that broke off (its replica was killed while it answered: no front can replay
    an answer already under way) is resumed where it stopped with a ``Range`` request, as the
    Docker engine resumes a layer; ``resumed`` counts how often.
    """
    data = bytearray()
    resumed = 0
    while True:
        headers = {"Range": f"bytes={len(data)}-"} if data else {}
        try:  # a request that gets no answer, or an error, has failed: not retried here
            response = api.request(
                "GET", f"/v2/{repository}/blobs/{digest}", headers=headers, stream=True
            )
        except ReglabError as exc:
            return exc.problem, resumed
        if data and response.status_code != 206:
            data.clear()  # the whole blob again, not the rest of it
        try:
            with response:
                for chunk in response.iter_content(1 << 16):
                    data += chunk
            break
        except requests.RequestException as exc:  # the answer broke off
            if resumed == RESUMES:
                return f"the answer broke off {RESUMES + 1} times: {exc}", resumed
            resumed += 1
    if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
        return f"blob {digest[:19]} came back with other bytes", resumed
    return None, resumed


def bucket_command(registry: SwarmRegistry) -> str:
    """How a terminal asks the store how much the bucket holds."""
    label = f"com.docker.swarm.service.name={registry.name}_s3"
    return (
        f"echo 'fs.du /buckets/{BUCKET}' | "
        f"docker exec -i $(docker ps -q -f label={label}) weed shell"
    )


def bucket_bytes(registry: SwarmRegistry) -> int:
    """The bytes the bucket holds, as the store itself counts them (``weed shell fs.du``)."""
    store = [
        c
        for c in registry.engine.containers.list(
            filters={"label": f"com.docker.swarm.service.name={registry.name}_s3"}
        )
    ]
    if not store:
        raise RegistryError(f"the store of {registry.name} does not run", "reglab swarm up")
    with docker_errors("cannot ask the store", error=RegistryError):
        result = store[0].exec_run(
            ["/bin/busybox", "sh", "-c", f"echo 'fs.du /buckets/{BUCKET}' | weed shell"]
        )
    output = bytes(result.output).decode(errors="replace")
    match = re.search(r"logical size:\s*(\d+)", output)
    if match is None:
        raise RegistryError(f"the store did not say its size: {output.strip()[-200:]}")
    return int(match.group(1))
