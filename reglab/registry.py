"""The workshop's registry: one description per stage -> one running ``registry:2`` container.

The stages build on each other:

========== ============================================================================
local      the registry on a port; images live inside the container and die with it
persistent + ``registry-data/`` bind-mounted at /var/lib/registry: data outlives the container
tls        + HTTPS with the workshop CA's server certificate; ``--restart unless-stopped``
auth       + basic auth from a bcrypt ``auth/htpasswd``
========== ============================================================================

:class:`Registry` starts a container, waits until ``GET /v2/`` answers (polling, never a fixed
sleep), and puts the container's last log lines into the error when it does not. It only ever
replaces or removes containers that carry reglab's label. ``docker_run_command()`` shows the
learner the exact ``docker run`` line that does the same.
"""

from __future__ import annotations

import shlex
import shutil
import time
import warnings
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import docker
import docker.errors
import requests
import urllib3

from . import settings
from .certs import CA, DEFAULT_NAMES, Certificate
from .client import RegistryClient
from .engine import connect, port_problem, writable_problem
from .errors import (
    ConfigError,
    EngineError,
    HtpasswdError,
    NotOwned,
    PortInUse,
    RegistryError,
    RegistryNotReady,
)
from .htpasswd import Htpasswd

STAGE_LABEL = "org.reglab.stage"
CONTAINER_PORT = 5000
REALM = "Registry Realm"
#: Readiness polling: a GET /v2/ every 10 ms is cheap, and the registry answers ~0.3 s after
#: start, so a short interval adds little latency. The engine is asked whether the container
#: died only every half second.
POLL_INTERVAL = 0.01
STATE_CHECK_INTERVAL = 0.5


class Stage(StrEnum):
    """The four workshop stages, each adding one feature to the one before."""

    LOCAL = "local"
    PERSISTENT = "persistent"
    TLS = "tls"
    AUTH = "auth"

    @classmethod
    def parse(cls, value: str | Stage) -> Stage:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ConfigError(f"unknown stage {value!r}", f"choose one of: {names}") from None

    @property
    def persistent(self) -> bool:
        return self is not Stage.LOCAL

    @property
    def tls(self) -> bool:
        return self in (Stage.TLS, Stage.AUTH)

    @property
    def auth(self) -> bool:
        return self is Stage.AUTH


@dataclass(frozen=True)
class Workdir:
    """The working folder, in the layout learners know from the classic tutorial."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "registry-data"

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def server_cert(self) -> Path:
        return self.certs / "domain.crt"

    @property
    def server_key(self) -> Path:
        return self.certs / "domain.key"

    @property
    def ca_cert(self) -> Path:
        return self.certs / "ca.crt"

    @property
    def ca_key(self) -> Path:
        """The CA's key lives apart from certs/, so it can never be mounted into a container."""
        return self.root / "ca" / "ca.key"

    @property
    def htpasswd(self) -> Path:
        return self.root / "auth" / "htpasswd"

    def _ca(self) -> CA | None:
        if self.ca_key.exists() and self.ca_cert.exists():
            ca = CA.load(self.ca_cert, self.ca_key)
            ca.certificate.check()
            return ca
        return None

    #: What reglab creates in a working folder; purge removes these and nothing else.
    ENTRIES = ("registry-data", "certs", "ca", "auth")

    def check_purgeable(self) -> None:
        """Refuse to purge a folder holding anything reglab did not put there."""
        if not self.root.exists():
            return
        foreign = sorted(p.name for p in self.root.iterdir() if p.name not in self.ENTRIES)
        if foreign:
            raise ConfigError(f"{self.root} holds files reglab did not make "
                              f"({', '.join(foreign[:3])}), so it is not purged",
                              "check --workdir; remove the folder yourself if you are sure")

    def purge(self) -> None:
        """Delete the registry data, certificates, CA and users, then the folder if empty."""
        self.check_purgeable()
        for entry in self.ENTRIES:
            shutil.rmtree(self.root / entry, ignore_errors=True)
        if self.root.exists():
            self.root.rmdir()

    def server_certificate(self, names: tuple[str, ...] = DEFAULT_NAMES) -> Certificate:
        """The registry's certificate: reused when valid for ``names``, issued when absent.

        A certificate the workshop CA issued that lacks one of ``names`` is reissued for
        ``names`` by the same CA, so clients that trust ``ca.crt`` still do. Any other problem
        (expired, key mismatch, a certificate you brought that does not cover a name) raises
        CertificateError: files are never overwritten silently.
        """
        ca = self._ca()
        if self.server_cert.exists() or self.server_key.exists():
            cert = Certificate.load(self.server_cert, self.server_key)
            missing = [n for n in names if not cert.covers(n)]
            if missing and ca is not None and cert.issuer == ca.certificate.subject:
                cert.check()  # expiry and key still must be right
                cert = ca.issue_cert(*names)
                cert.write(self.server_cert, self.server_key)
            cert.check(names)
            return cert
        if ca is None:
            ca = CA.create()
            ca.write(self.ca_cert, self.ca_key)
        cert = ca.issue_cert(*names)
        cert.write(self.server_cert, self.server_key)
        return cert


@dataclass
class RegistryConfig:
    """Everything that decides how the registry container runs."""

    stage: Stage = Stage.LOCAL
    port: int = settings.DEFAULT_PORT
    workdir: Path = field(default_factory=settings.workdir)
    name: str = settings.DEFAULT_NAME
    image: str = settings.REGISTRY_IMAGE
    #: Host addresses the port is published on. Loopback only by default: a workshop registry
    #: should not be reachable from the rest of the network unless you ask for it.
    bind: tuple[str, ...] = ("127.0.0.1",)
    #: Extra names (DNS or IP) for the server certificate, beyond localhost, 127.0.0.1 and ::1.
    extra_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.stage = Stage.parse(self.stage)
        self.port = settings.check_port(self.port)
        self.name = settings.check_name(self.name)
        self.workdir = Path(self.workdir).expanduser().resolve()

    @property
    def paths(self) -> Workdir:
        return Workdir(self.workdir)

    @property
    def address(self) -> str:
        """``HOST:PORT`` as it goes into image names, e.g. ``127.0.0.1:5000/hello-world``."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.stage.tls else 'http'}://{self.address}"

    @property
    def cert_names(self) -> tuple[str, ...]:
        extra = [n for n in (*self.bind, *self.extra_names) if n not in ("0.0.0.0", "")]
        return tuple(dict.fromkeys((*DEFAULT_NAMES, *extra)))

    def environment(self) -> dict[str, str]:
        env: dict[str, str] = {}
        if self.stage.tls:
            env["REGISTRY_HTTP_TLS_CERTIFICATE"] = "/certs/domain.crt"
            env["REGISTRY_HTTP_TLS_KEY"] = "/certs/domain.key"
        if self.stage.auth:
            env["REGISTRY_AUTH"] = "htpasswd"
            env["REGISTRY_AUTH_HTPASSWD_REALM"] = REALM
            env["REGISTRY_AUTH_HTPASSWD_PATH"] = "/auth/htpasswd"
        return env

    def volumes(self) -> dict[str, dict[str, str]]:
        """Bind mounts. Only the server certificate and key go in: never the CA's key."""
        paths = self.paths
        vols: dict[str, dict[str, str]] = {}
        if self.stage.persistent:
            vols[str(paths.data)] = {"bind": "/var/lib/registry", "mode": "rw"}
        if self.stage.tls:
            vols[str(paths.server_cert)] = {"bind": "/certs/domain.crt", "mode": "ro"}
            vols[str(paths.server_key)] = {"bind": "/certs/domain.key", "mode": "ro"}
        if self.stage.auth:
            vols[str(paths.htpasswd.parent)] = {"bind": "/auth", "mode": "ro"}
        return vols

    def ports(self) -> dict[str, list[tuple[str, int]]]:
        return {f"{CONTAINER_PORT}/tcp": [(ip, self.port) for ip in self.bind]}

    @property
    def restart_policy(self) -> dict[str, str] | None:
        """From the TLS stage on the registry is a service: it comes back after a reboot."""
        return {"Name": "unless-stopped"} if self.stage.tls else None

    def labels(self) -> dict[str, str]:
        return {settings.OWNER_LABEL: "true", STAGE_LABEL: self.stage.value}

    def docker_run_command(self) -> str:
        """The ``docker run`` line that starts the same container by hand."""
        parts = ["docker run -d", f"--name {self.name}"]
        parts += [f"-p {ip}:{self.port}:{CONTAINER_PORT}" for ip in self.bind]
        if self.restart_policy:
            parts.append(f"--restart {self.restart_policy['Name']}")
        for host, spec in self.volumes().items():
            suffix = ":ro" if spec["mode"] == "ro" else ""
            parts.append(f"-v {shlex.quote(host + ':' + spec['bind'] + suffix)}")
        parts += [f"-e {shlex.quote(k + '=' + v)}" for k, v in self.environment().items()]
        parts.append(self.image)
        return " \\\n  ".join(parts)


def _owned(container: Any) -> bool:
    return (container.labels or {}).get(settings.OWNER_LABEL) == "true"


class Registry:
    """A running (or about to run) workshop registry.

    >>> with Registry(RegistryConfig(stage="local", port=5000)) as reg:   # doctest: +SKIP
    ...     reg.client().ping()
    """

    def __init__(self, config: RegistryConfig, engine: docker.DockerClient | None = None) -> None:
        self.config = config
        self._engine = engine

    # --- plumbing ---
    @property
    def engine(self) -> docker.DockerClient:
        if self._engine is None:
            self._engine = connect()
        return self._engine

    @property
    def address(self) -> str:
        return self.config.address

    @property
    def url(self) -> str:
        return self.config.url

    @property
    def ca_file(self) -> Path | None:
        return self.config.paths.ca_cert if self.config.stage.tls else None

    def ref(self, repository: str, tag: str = "latest") -> str:
        """The full image name in this registry, e.g. ``127.0.0.1:5000/hello-world:latest``."""
        return f"{self.address}/{repository}:{tag}"

    def client(self, auth: tuple[str, str] | None = None) -> RegistryClient:
        """An HTTP API client that verifies TLS against the workshop CA."""
        return RegistryClient(self.url, ca=self.ca_file, auth=auth)

    def docker_run_command(self) -> str:
        return self.config.docker_run_command()

    @property
    def container(self) -> Any | None:
        """The container of this name, or None."""
        try:
            return self.engine.containers.get(self.config.name)
        except docker.errors.NotFound:
            return None

    # --- lifecycle ---
    def prepare(self) -> None:
        """Create the folders and files the stage needs; check those that exist already."""
        cfg, paths = self.config, self.config.paths
        problem = writable_problem(cfg.workdir)
        if problem:
            raise ConfigError(problem.what, problem.fix)
        try:
            if cfg.stage.persistent:
                paths.data.mkdir(parents=True, exist_ok=True)
            if cfg.stage.tls:
                paths.server_certificate(cfg.cert_names)
        except PermissionError as exc:
            raise ConfigError(f"cannot write in {exc.filename}",
                              "choose another --workdir or fix its permissions") from None
        if cfg.stage.auth:
            users = Htpasswd.load(paths.htpasswd)
            if not users.names():
                raise HtpasswdError(f"{paths.htpasswd} has no users",
                                    "add one: reglab up auth --user NAME --password-stdin")

    def _remove_previous(self) -> None:
        container = self.container
        if container is None:
            return
        if not _owned(container):
            raise NotOwned(f"a container named {self.config.name} exists and was not created by "
                           "reglab, so it is left alone",
                           f"choose another name (--name) or remove it yourself: "
                           f"docker rm -f {self.config.name}")
        container.remove(force=True, v=True)

    def _check_port(self) -> None:
        problem = port_problem(self.engine, self.config.port)
        if problem:
            raise PortInUse(problem.what, problem.fix)

    def start(self, timeout: float = 30.0) -> Registry:
        """Start the stage's registry (replacing reglab's previous one); return when it answers."""
        cfg = self.config
        self.prepare()
        self._remove_previous()
        self._check_port()
        try:
            self.engine.containers.run(
                cfg.image, detach=True, name=cfg.name, labels=cfg.labels(),
                ports=cfg.ports(), volumes=cfg.volumes(), environment=cfg.environment(),
                restart_policy=cfg.restart_policy)
        except docker.errors.ImageNotFound:
            raise RegistryError(f"image {cfg.image} is not present",
                                "run 'reglab images' (it builds it offline if needed)") from None
        except docker.errors.APIError as exc:
            message = str(exc.explanation or exc)
            if "address already in use" in message or "port is already allocated" in message:
                self._discard()
                raise PortInUse(f"port {cfg.port} is already in use",
                                "choose another port (--port N or REGLAB_PORT=N)") from None
            self._discard()
            raise RegistryError(f"the registry container could not start: {message}",
                                "check 'reglab doctor'") from None
        self.wait_ready(timeout)
        return self

    def _discard(self) -> None:
        container = self.container
        if container is not None and _owned(container):
            container.remove(force=True, v=True)

    def wait_ready(self, timeout: float = 30.0) -> int:
        """Poll ``GET /v2/`` until it answers 200 or 401; return that status.

        Raises RegistryNotReady with the container's last log lines when the container exits or
        the timeout passes.
        """
        deadline = time.monotonic() + timeout
        next_state_check = time.monotonic() + STATE_CHECK_INTERVAL
        # Readiness only asks "does it answer?"; certificates are checked before the start
        # (Certificate.check) and verified by client(). verify= per request: see client.py.
        with requests.Session() as session, warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            while True:
                try:
                    status = session.get(f"{self.url}/v2/", timeout=1, verify=False).status_code
                    if status in (200, 401):
                        return status
                except requests.exceptions.RequestException:
                    pass
                now = time.monotonic()
                if now >= next_state_check:  # an engine call: not on every poll
                    next_state_check = now + STATE_CHECK_INTERVAL
                    container = self.container
                    if container is None or container.status in ("exited", "dead"):
                        self._fail("the registry container stopped before answering")
                if now > deadline:
                    self._fail(f"the registry did not answer at {self.url}/v2/ "
                               f"within {timeout:g} s")
                time.sleep(POLL_INTERVAL)

    def _fail(self, problem: str) -> None:
        logs = self.logs(tail=10)
        last = " | ".join(line for line in logs.splitlines() if line.strip())[-400:]
        raise RegistryNotReady(f"{problem}; last log lines: {last or '(none)'}",
                               "check the logs with 'docker logs " + self.config.name + "'",
                               logs=logs)

    def logs(self, tail: int = 50) -> str:
        container = self.container
        if container is None:
            return ""
        return container.logs(tail=tail).decode(errors="replace")

    def stop(self) -> None:
        """Stop the container; it stays, and with it anything in its anonymous volume."""
        container = self.container
        if container is not None and _owned(container):
            container.stop(timeout=5)

    def remove(self, purge: bool = False) -> bool:
        """Remove the container (reglab's only); with ``purge`` also the working folder's data.

        Returns True when a container was removed. Data in ``registry-data/`` stays unless
        ``purge``: that is the point of the persistent stage.
        """
        if purge:
            self.config.paths.check_purgeable()  # before anything is removed
        container = self.container
        removed = False
        if container is not None:
            if not _owned(container):
                raise NotOwned(f"container {self.config.name} was not created by reglab, so it "
                               "is left alone", f"remove it yourself: docker rm -f "
                               f"{self.config.name}")
            container.remove(force=True, v=True)
            removed = True
        if purge:
            self.config.paths.purge()
        return removed

    def status(self) -> dict[str, Any]:
        """What is running: name, state, stage, port, TLS and auth."""
        return describe(self.container) if self.container is not None else {
            "name": self.config.name, "state": "absent"}

    def __enter__(self) -> Registry:
        if self.container is None or self.container.status != "running":
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def describe(container: Any) -> dict[str, Any]:
    """A plain summary of a registry container (for ``reglab status`` and the notebooks)."""
    stage = Stage.parse(container.labels.get(STAGE_LABEL, "local"))
    ports = sorted({b["HostPort"] for bs in (container.ports or {}).values() for b in bs or []})
    return {"name": container.name, "state": container.status, "stage": stage.value,
            "ports": ports, "tls": stage.tls, "auth": stage.auth,
            "owned": _owned(container)}


NETWORK = "reglab-net"


def project_network(engine: docker.DockerClient, name: str = NETWORK) -> str:
    """The workshop's own bridge network (created if needed); return its gateway address.

    The gateway is an address of this machine that is *not* loopback, so Docker applies its
    normal TLS rules there: the TLS stage uses it to show Docker verifying a certificate.
    """
    found = engine.networks.list(names=[name])
    network = found[0] if found else engine.networks.create(
        name, driver="bridge", labels={settings.OWNER_LABEL: "true"})
    network.reload()
    if (network.attrs.get("Labels") or {}).get(settings.OWNER_LABEL) != "true":
        raise NotOwned(f"a network named {name} exists and was not created by reglab",
                       f"remove it yourself (docker network rm {name}) or pass another name")
    configs = network.attrs["IPAM"]["Config"] or [{}]
    gateway = configs[0].get("Gateway")
    if not gateway:
        raise RegistryError(f"network {name} has no gateway address",
                            f"remove it (docker network rm {name}) and try again")
    return str(gateway)


def remove_project_network(engine: docker.DockerClient, name: str = NETWORK) -> bool:
    """Remove the workshop's network if reglab created it; True when removed."""
    for network in engine.networks.list(names=[name]):
        network.reload()
        if (network.attrs.get("Labels") or {}).get(settings.OWNER_LABEL) == "true":
            network.remove()
            return True
    return False


def owned_registries(engine: docker.DockerClient | None = None) -> list[dict[str, Any]]:
    """Every container reglab created, running or not."""
    engine = engine or connect()
    try:
        found = engine.containers.list(all=True, filters={"label": settings.OWNER_LABEL})
    except docker.errors.APIError as exc:
        raise EngineError(f"cannot list containers: {exc.explanation or exc}") from None
    return [describe(c) for c in found]
