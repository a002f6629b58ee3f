"""A workshop registry as a container: start it, wait until it answers, remove it.

:class:`Registry` starts a registry container (``registry:3``, or ``registry:2``) for a
:class:`~reglab.registry.config.RegistryConfig`,
waits until ``GET /v2/`` answers (polling, never a fixed sleep), and puts the container's last
log lines into the error when it does not. It only ever replaces or removes containers that
carry reglab's owner label (``reglab.base.labels``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, NoReturn

import docker
import docker.errors

from reglab.auth.htpasswd import Htpasswd
from reglab.base.errors import (
    ConfigError,
    HtpasswdError,
    NotOwned,
    PortInUse,
    RegistryError,
    RegistryNotReady,
    docker_errors,
)
from reglab.base.labels import is_owned
from reglab.base.versions import V3, version_of_image
from reglab.base.wait import NotYet, WaitTimeout, poll
from reglab.engine.connection import connect, port_problem, writable_problem
from reglab.engine.transfer import exists
from reglab.registry.client import RegistryClient, probe_status
from reglab.registry.config import (
    CONTAINER_PORT,
    LOGIN_FILE,
    UPSTREAM_CA,
    RegistryConfig,
    Stage,
    notify_url_of,
)
from reglab.registry.gate import remove_gate
from reglab.registry.status import RegistryStatus, owned_registries
from reglab.registry.token import TokenServer, remove_token_server

#: Readiness polling: a GET /v2/ every 10 ms is cheap, and the registry answers ~0.3 s after
#: start, so a short interval adds little latency. The engine is asked whether the container
#: died only every half second.
POLL_INTERVAL = 0.01
STATE_CHECK_INTERVAL = 0.5

Container = Any  # docker.models.containers.Container: docker-py ships no type information


class Registry:
    """A running (or about to run) workshop registry.

    >>> with Registry(RegistryConfig(stage="local", port=5000)) as reg:   # doctest: +SKIP
    ...     reg.client().ping()
    """

    def __init__(self, config: RegistryConfig, engine: docker.DockerClient | None = None) -> None:
        self.config = config
        self._engine = engine

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

    @property
    def container(self) -> Container | None:
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
            cfg.folder_step().run()
            if cfg.stage.tls:
                paths.server_certificate(cfg.cert_names)
        except PermissionError as exc:
            raise ConfigError(
                f"cannot write in {exc.filename}", "choose another --workdir or fix its permissions"
            ) from None
        if cfg.stage.auth and not Htpasswd.load(paths.htpasswd).names():
            raise HtpasswdError(
                f"{paths.htpasswd} has no users",
                "add one: reglab up auth --user NAME --password-stdin",
            )

    def start(self, timeout: float = 30.0) -> Registry:
        """Start the stage's registry (replacing reglab's previous one); return when it answers."""
        cfg = self.config
        self.prepare()
        # A signature gate in front stays (a collection's restart must not open the door);
        # it reaches plain HTTP only, so it goes when the registry turns to TLS.
        self.remove(keep_gate=not cfg.stage.tls)
        problem = port_problem(self.engine, cfg.port)
        if problem:
            raise PortInUse(problem.what, problem.fix)
        if not exists(self.engine, cfg.image):
            raise RegistryError(
                f"image {cfg.image} is not present",
                "run 'reglab images' (it builds it offline if needed)",
            )
        if cfg.stage.token:  # clients get their tokens there: it answers before the registry
            TokenServer(cfg, self.engine).start(timeout=timeout)
        try:
            with docker_errors(
                "the registry container could not start", "check 'reglab doctor'", RegistryError
            ):
                self.engine.containers.run(**cfg.spec().run_kwargs())
        except RegistryError as exc:
            self.remove(
                keep_gate=not cfg.stage.tls
            )  # a container created but not started would block the next try
            if any(s in exc.problem for s in ("address already in use", "already allocated")):
                raise PortInUse(
                    f"port {cfg.port} is already in use",
                    "choose another port (--port N or REGLAB_PORT=N)",
                ) from exc
            raise
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> int:
        """Poll ``GET /v2/`` until it answers 200 or 401; return that status.

        Raises RegistryNotReady with the container's last log lines when the container exits or
        the timeout passes.
        """
        url = f"{self.url}/v2/"
        engine_asked = [time.monotonic()]

        def answered() -> int | None:
            # Readiness only asks "does it answer?": certificates are checked before the start
            # (Certificate.check) and verified by client().
            status = probe_status(url, verify=False)
            if status in (200, 401):
                return int(status)
            if time.monotonic() - engine_asked[0] >= STATE_CHECK_INTERVAL:  # not every poll
                engine_asked[0] = time.monotonic()
                container = self.container
                if container is None or container.status in ("exited", "dead"):
                    self._fail("the registry container stopped before answering")
            raise NotYet(f"GET /v2/ answered {status}")

        try:
            return poll(f"the registry to answer at {url}", answered, timeout=timeout,
                        interval=POLL_INTERVAL)  # fmt: skip
        except WaitTimeout as exc:
            self._fail(exc.problem)

    def _fail(self, problem: str) -> NoReturn:
        logs = self.logs(tail=10)
        last = " | ".join(line for line in logs.splitlines() if line.strip())[-400:]
        raise RegistryNotReady(
            f"{problem}; last log lines: {last or '(none)'}",
            f"check the logs with 'docker logs {self.config.name}'",
            logs=logs,
        )

    def logs(self, tail: int = 50) -> str:
        container = self.container
        if container is None:
            return ""
        return bytes(container.logs(tail=tail)).decode(errors="replace")

    def remove(self, purge: bool = False, keep_gate: bool = False) -> bool:
        """Remove the container (reglab's only) and its anonymous volume, its token server and
        its signature gate (unless ``keep_gate``); with ``purge`` also the working folder's
        data.

        Returns True when a container was removed. Data in ``registry-data/`` stays unless
        ``purge``: that is the point of the persistent stage. A container of this name that
        reglab did not create raises NotOwned and is left alone.
        """
        if purge:
            self.config.paths.check_purgeable()  # before anything is removed
        remove_token_server(self.engine, self.config.name)  # the token stage's, if any
        if not keep_gate:
            remove_gate(self.engine, self.config.name)  # the signature gate, if any
        container = self.container
        if container is not None:
            if not is_owned(container.labels):
                raise NotOwned(
                    f"a container named {self.config.name} exists and was not created by "
                    "reglab, so it is left alone",
                    "choose another name (--name) or remove it yourself: "
                    f"docker rm -f {self.config.name}",
                )
            with docker_errors(f"cannot remove container {self.config.name}", error=RegistryError):
                container.remove(force=True, v=True)
        if purge:
            self.config.paths.purge()
        return container is not None

    def status(self) -> RegistryStatus:
        """What is running: name, state, stage, port, TLS and auth."""
        container = self.container
        return (
            RegistryStatus.of(container)
            if container is not None
            else RegistryStatus(self.config.name, "absent")
        )

    @classmethod
    def attach(cls, engine: docker.DockerClient, name: str, workdir: Path) -> Registry:
        """The running registry ``name`` that reglab started (its stage and port read from the
        container), with ``workdir`` for its CA. One-line errors when it is absent, stopped, or
        not reglab's."""
        status = cls(RegistryConfig(name=name, workdir=workdir), engine).status()
        if status.state == "absent":
            raise RegistryError(f"no registry named {name}", "start one: reglab up STAGE")
        if not status.owned:
            raise NotOwned(
                f"container {name} was not created by reglab, so reglab does not change it",
                "give the name of a reglab registry (reglab status lists them)",
            )
        if status.state != "running" or not status.ports:
            raise RegistryError(
                f"registry {name} is {status.state}", f"start it: docker start {name}"
            )
        container = cls(RegistryConfig(name=name, workdir=workdir), engine).container
        published = (container.ports if container is not None else None) or {}
        bindings = published.get(f"{CONTAINER_PORT}/tcp") or []
        bind = tuple(dict.fromkeys(b["HostIp"] for b in bindings if b.get("HostIp"))) or (
            "127.0.0.1",
        )
        env = dict(
            item.split("=", 1) for item in (container.attrs["Config"]["Env"] or []) if "=" in item
        ) if container is not None else {}  # fmt: skip
        networks = list((container.attrs["NetworkSettings"]["Networks"] or {}) if container else [])
        image = container.attrs["Config"]["Image"] if container is not None else V3.image
        mounts = (container.attrs.get("Mounts") or []) if container is not None else []
        config = RegistryConfig(
            stage=Stage.parse(status.stage),
            port=int(status.ports[0]),
            workdir=workdir,
            name=name,
            bind=bind,
            upstream=env.get("REGISTRY_PROXY_REMOTEURL"),
            network=next((n for n in networks if n != "bridge"), None),
            notify=notify_url_of(env.get("REGISTRY_NOTIFICATIONS_ENDPOINTS", "")),
            token_port=_port_of(env.get("REGISTRY_AUTH_TOKEN_REALM")),
            version=version_of_image(image) or V3,
            image=image,
            # a mirror's trust, login and TTL (its login file is where login_step wrote it)
            upstream_ca=next(
                (Path(m["Source"]) for m in mounts if m.get("Destination") == UPSTREAM_CA), None
            ),
            upstream_login=workdir / LOGIN_FILE
            if env.get("REGISTRY_PROXY_USERNAME") and (workdir / LOGIN_FILE).is_file()
            else None,
            proxy_ttl=env.get("REGISTRY_PROXY_TTL"),
        )
        registry = cls(config, engine)
        source = registry.data_source()
        if isinstance(source, str):
            config.data_volume = source
        return registry

    def data_source(self) -> Path | str | None:
        """Where the running container stores its data: a host folder (Path), a named volume
        (its name), or None (an anonymous volume, or no container)."""
        container = self.container
        for mount in container.attrs["Mounts"] if container is not None else []:
            if mount["Destination"] != "/var/lib/registry":
                continue
            if mount["Type"] == "bind":
                return Path(mount["Source"])
            if mount["Type"] == "volume" and not _anonymous(mount.get("Name", "")):
                return str(mount["Name"])
        return None

    def __enter__(self) -> Registry:
        container = self.container
        if container is None or container.status != "running":
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _port_of(url: str | None) -> int | None:
    """The port of ``https://HOST:PORT/...`` (None without a URL)."""
    if not url:
        return None
    return int(url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[1])


def _anonymous(volume: str) -> bool:
    """The engine names an anonymous volume with 64 hex digits."""
    return len(volume) == 64 and all(c in "0123456789abcdef" for c in volume)


__all__ = ["CONTAINER_PORT", "Registry", "RegistryStatus", "owned_registries"]
