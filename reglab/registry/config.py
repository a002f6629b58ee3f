"""What a workshop registry is: one description per stage, pure data (no engine, no files).

The stages build on each other:

========== ============================================================================
local      the registry on a port; images live in the image's anonymous volume
persistent + ``registry-data/`` bind-mounted at /var/lib/registry: data outlives the container
tls        + HTTPS with the workshop CA's server certificate; ``--restart unless-stopped``
auth       + basic auth from a bcrypt ``auth/htpasswd``
token      TLS, and token auth instead: a token server (reglab.registry.token) grants each user
           what the access list ``auth/acl.yml`` allows, repository by repository
========== ============================================================================

:meth:`RegistryConfig.spec` describes the container once: ``reglab.Registry`` runs it, and
:meth:`RegistryConfig.docker_run_command` shows the learner the same as a ``docker run`` line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from reglab.auth.certs import DEFAULT_NAMES
from reglab.base import settings
from reglab.base.errors import ConfigError
from reglab.base.labels import STAGE_LABEL, owner_labels
from reglab.base.ports import Ports
from reglab.base.shell import PathStyle
from reglab.base.versions import V3, RegistryVersion, registry_version
from reglab.engine.spec import INVOKER, ContainerSpec, Mount, Step, volumes_of
from reglab.registry.workdir import Workdir

CONTAINER_PORT = 5000
REALM = "Registry Realm"
#: The token stage's names: the registry (``aud`` of every token) and the token server (``iss``).
TOKEN_SERVICE = "reglab-registry"
TOKEN_ISSUER = "reglab-token"


class Stage(StrEnum):
    """The four workshop stages, each adding one feature to the one before; and a mirror, a
    pull-through cache of another registry (reglab.registry.mirror)."""

    LOCAL = "local"
    PERSISTENT = "persistent"
    TLS = "tls"
    AUTH = "auth"
    MIRROR = "mirror"
    TOKEN = "token"

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
        return self in (Stage.TLS, Stage.AUTH, Stage.TOKEN)

    @property
    def auth(self) -> bool:
        """Basic auth from htpasswd (the token stage checks users at its token server)."""
        return self is Stage.AUTH

    @property
    def token(self) -> bool:
        return self is Stage.TOKEN


Volumes = dict[str, dict[str, str]]

#: How the registry sends events: wait at most ``timeout`` for the listener, and after
#: ``threshold`` failures in a row back off ``backoff`` between retries. Events wait in an
#: in-memory queue meanwhile: they survive a listener's outage, not a registry restart.
NOTIFY_TIMEOUT, NOTIFY_THRESHOLD, NOTIFY_BACKOFF = "1s", 3, "1s"


def check_notify_url(url: str) -> str:
    """An events URL must be http(s) with a host: the registry posts JSON to it."""
    scheme, sep, rest = url.partition("://")
    if (
        not sep
        or scheme not in ("http", "https")
        or not rest.split("/", 1)[0]
        or any(c in url for c in " '\"`$\\")
    ):
        raise ConfigError(
            f"--notify {url!r} is not an http(s) URL",
            "give http://HOST:PORT/PATH (the listener's address as the registry reaches it)",
        )
    return url


def notification_endpoints(url: str) -> str:
    """``notifications.endpoints`` as one environment value: a YAML flow list, with the URL in
    single quotes so that a command line can give it inside double quotes (``"$GATEWAY"``)."""
    return (
        f"[{{name: reglab, url: '{url}', timeout: {NOTIFY_TIMEOUT}, "
        f"threshold: {NOTIFY_THRESHOLD}, backoff: {NOTIFY_BACKOFF}}}]"
    )


def notify_url_of(endpoints: str) -> str | None:
    """The URL in a value :func:`notification_endpoints` wrote (None if there is none)."""
    found = re.search(r"url: '([^']*)'", endpoints)
    return found.group(1) if found else None


def check_ttl(ttl: str) -> str:
    """``proxy.ttl`` is a Go duration: "0", or numbers with units, e.g. "168h" or "1h30m"."""
    if not re.fullmatch(r"0|(\d+(\.\d+)?(ns|us|ms|s|m|h))+", ttl):
        raise ConfigError(
            f"proxy TTL {ttl!r} is not a duration", 'give e.g. "168h", "30m", "90s" or "0" (never)'
        )
    return ttl


#: Where a mirror finds its upstream's CA; SSL_CERT_FILE points Go's TLS at it. Go reads that
#: variable in place of the system's bundle (which a FROM-scratch registry image lacks anyway).
UPSTREAM_CA = "/certs/upstream-ca.crt"
#: A mirror's login file, in its working folder (reglab.registry.mirror.login_step).
LOGIN_FILE = "upstream.env"


@dataclass
class RegistryConfig:
    """Everything that decides how the registry container runs.

    Plain values only: the command line and the notebook helper read the environment
    (``reglab.base.settings.Settings.from_env``) and pass what they found.
    """

    stage: Stage = Stage.LOCAL
    port: int = settings.DEFAULT_PORT
    workdir: Path = field(default_factory=lambda: Path(settings.DEFAULT_WORKDIR))
    name: str = settings.DEFAULT_NAME
    #: The registry version ("3", the default, or "2"; reglab.base.versions), and its image.
    version: RegistryVersion = V3
    image: str = ""
    #: Host addresses the port is published on. Loopback only by default: a workshop registry
    #: should not be reachable from the rest of the network unless you ask for it.
    bind: tuple[str, ...] = ("127.0.0.1",)
    #: Extra names (DNS or IP) for the server certificate, beyond localhost, 127.0.0.1 and ::1.
    extra_names: tuple[str, ...] = ()
    #: Maintenance mode: reads are served, pushes and deletes refused (405), as garbage
    #: collection needs (reglab.registry.gc).
    read_only: bool = False
    #: The mirror stage's upstream, as the mirror container reaches it (http://NAME:5000).
    upstream: str | None = None
    #: A Docker network the container joins (the mirror and its upstream talk on it).
    network: str | None = None
    #: A named volume for /var/lib/registry instead of registry-data/ (notebook 05 puts the
    #: registry on a small disk this way: reglab.registry.disk).
    data_volume: str | None = None
    #: Where the registry sends its events (reglab.registry.events): an http(s) URL.
    notify: str | None = None
    #: The token stage's token server port on this machine (default: reglab.base.ports' plan).
    token_port: int | None = None
    #: A mirror's trust in an HTTPS upstream: the CA certificate its certificate chains to.
    upstream_ca: Path | None = None
    #: A mirror's login upstream: an env file (mode 600) holding ``REGISTRY_PROXY_USERNAME``
    #: and ``REGISTRY_PROXY_PASSWORD``, given with ``--env-file`` so no line shows the password.
    upstream_login: Path | None = None
    #: A mirror's ``proxy.ttl`` (registry 3): how long cached content is kept after it was
    #: fetched, as a Go duration ("168h", the default; "0" never expires). 2.8 ignores it.
    proxy_ttl: str | None = None

    def __post_init__(self) -> None:
        self.stage = Stage.parse(self.stage)
        self.version = registry_version(self.version)
        self.image = self.image or self.version.image
        self.port = settings.check_port(self.port)
        self.name = settings.check_name(self.name)
        self.workdir = settings.resolve_workdir(self.workdir)
        if (self.stage is Stage.MIRROR) != (self.upstream is not None):
            raise ConfigError(
                "a mirror needs an upstream, and only a mirror has one",
                "reglab up mirror --upstream NAME|URL",
            )
        if self.stage is not Stage.MIRROR and (
            self.upstream_ca or self.upstream_login or self.proxy_ttl is not None
        ):
            raise ConfigError(
                "an upstream CA, login or TTL belongs to a mirror", "reglab up mirror --upstream"
            )
        if self.proxy_ttl is not None:
            self.proxy_ttl = check_ttl(self.proxy_ttl)
        if self.notify is not None:
            self.notify = check_notify_url(self.notify)
        if self.stage.token and self.token_port is None:
            self.token_port = Ports(self.port).token_server
        if self.token_port is not None:
            self.token_port = settings.check_port(self.token_port)
        if self.data_volume is not None and not self.stage.persistent:
            raise ConfigError(
                "the local stage keeps its data in an anonymous volume, not a named one",
                "use the persistent stage (or a later one) with a data volume",
            )

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
    def realm(self) -> str:
        """Where clients ask for tokens: an absolute URL, as the registry requires."""
        return f"https://127.0.0.1:{self.token_port}/auth"

    @property
    def cert_names(self) -> tuple[str, ...]:
        extra = [n for n in (*self.bind, *self.extra_names) if n not in ("0.0.0.0", "")]
        return tuple(dict.fromkeys((*DEFAULT_NAMES, *extra)))

    def environment(self) -> dict[str, str]:
        # Deletes by digest on every stage (off upstream, because a delete frees nothing until
        # garbage collection, and a registry that faces the world may not want them at all).
        env: dict[str, str] = {"REGISTRY_STORAGE_DELETE_ENABLED": "true"}
        if self.upstream:  # pull-through cache: pulls fill it, pushes are refused
            env["REGISTRY_PROXY_REMOTEURL"] = self.upstream
        if self.proxy_ttl is not None:  # how long each cached manifest and blob is kept
            env["REGISTRY_PROXY_TTL"] = self.proxy_ttl
        if self.upstream_ca:
            env["SSL_CERT_FILE"] = UPSTREAM_CA
        if (
            self.notify
        ):  # a YAML value: the one endpoint list (reglab.registry.events explains each key)
            env["REGISTRY_NOTIFICATIONS_ENDPOINTS"] = notification_endpoints(self.notify)
        if self.read_only:  # 2.8 wants the map: ..._READONLY_ENABLED=true makes it panic
            env["REGISTRY_STORAGE_MAINTENANCE_READONLY"] = '{"enabled": true}'
        if self.stage.tls:
            env["REGISTRY_HTTP_TLS_CERTIFICATE"] = "/certs/domain.crt"
            env["REGISTRY_HTTP_TLS_KEY"] = "/certs/domain.key"
        if self.stage.token:  # tokens signed by a key the workshop CA certified
            env["REGISTRY_AUTH"] = "token"
            env["REGISTRY_AUTH_TOKEN_REALM"] = self.realm
            env["REGISTRY_AUTH_TOKEN_SERVICE"] = TOKEN_SERVICE
            env["REGISTRY_AUTH_TOKEN_ISSUER"] = TOKEN_ISSUER
            env["REGISTRY_AUTH_TOKEN_ROOTCERTBUNDLE"] = "/certs/ca.crt"
            if self.version.v3:  # and the signing key itself, by its RFC 7638 thumbprint
                env["REGISTRY_AUTH_TOKEN_JWKS"] = "/certs/jwks.json"
        if self.stage.auth:
            env["REGISTRY_AUTH"] = "htpasswd"
            env["REGISTRY_AUTH_HTPASSWD_REALM"] = REALM
            env["REGISTRY_AUTH_HTPASSWD_PATH"] = "/auth/htpasswd"
        return env

    def mounts(self) -> tuple[Mount, ...]:
        """Bind mounts. Only the server certificate and key go in: never the CA's key."""
        paths = self.paths
        found: list[Mount] = []
        if self.data_volume:
            found.append(Mount(self.data_volume, "/var/lib/registry"))
        elif self.stage.persistent:
            found.append(Mount(paths.data, "/var/lib/registry"))
        if self.stage.tls:
            found.append(Mount(paths.server_cert, "/certs/domain.crt", read_only=True))
            found.append(Mount(paths.server_key, "/certs/domain.key", read_only=True))
        if self.stage.auth:
            found.append(Mount(paths.htpasswd.parent, "/auth", read_only=True))
        if self.stage.token:  # the CA's certificate (never its key): to verify tokens
            found.append(Mount(paths.ca_cert, "/certs/ca.crt", read_only=True))
            if self.version.v3:
                found.append(Mount(paths.jwks, "/certs/jwks.json", read_only=True))
        if self.upstream_ca:  # a mirror's trust in its upstream: a certificate, never a key
            found.append(Mount(self.upstream_ca, UPSTREAM_CA, read_only=True))
        return tuple(found)

    def volumes(self) -> Volumes:
        """The mounts as the Docker SDK's ``volumes=`` wants them."""
        return volumes_of(self.mounts())

    def ports(self) -> dict[str, list[tuple[str, int]]]:
        """The published ports as the Docker SDK's ``ports=`` wants them."""
        ports: dict[str, list[tuple[str, int]]] = self.spec().run_kwargs()["ports"]
        return ports

    @property
    def restart(self) -> str | None:
        """From the TLS stage on the registry is a service: it comes back after a reboot."""
        return "unless-stopped" if self.stage.tls else None

    @property
    def restart_policy(self) -> dict[str, str] | None:
        return {"Name": self.restart} if self.restart else None

    @property
    def runs_as_invoker(self) -> bool:
        """With a bind mount the registry runs as the user who started it, so the files it
        writes in registry-data/ are theirs (a learner who is not root can delete them).
        Without one it stays root: its volume (anonymous or named) belongs to root."""
        return self.stage.persistent and self.data_volume is None

    def labels(self) -> dict[str, str]:
        return owner_labels(**{STAGE_LABEL: self.stage.value})

    def folder_step(self, style: PathStyle | None = None) -> Step[None]:
        """What must exist before ``docker run``: a missing bind-mount source would be made by
        the engine, as root, and a registry running as the user could not write in it."""
        if not self.runs_as_invoker:  # no bind mount for the data
            return Step([], lambda: None)
        data = self.paths.data
        shown = (style or PathStyle(self.workdir)).show(data)
        return Step([f"mkdir -p {shown}"], lambda: data.mkdir(parents=True, exist_ok=True))

    def folder_commands(self, style: PathStyle | None = None) -> list[str]:
        return self.folder_step(style).lines

    def spec(self) -> ContainerSpec:
        """The registry's container, as reglab runs it and as ``docker run`` starts it. The
        line carries the same labels, so reglab may replace a registry started by hand."""
        return ContainerSpec(
            self.image,
            name=self.name,
            labels=self.labels(),
            ports=tuple((ip, self.port, CONTAINER_PORT) for ip in self.bind),
            mounts=self.mounts(),
            env=self.environment(),
            user=INVOKER if self.runs_as_invoker else None,
            restart=self.restart,
            network=self.network,
            wrap=True,
            env_file=self.upstream_login,
        )

    def docker_run_command(self, style: PathStyle | None = None) -> str:
        """The ``docker run`` line that starts the same container by hand.

        ``style`` says how the working folder's paths are typed (default: absolute).
        """
        return self.spec().shell(style)
