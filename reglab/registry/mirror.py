"""A pull-through mirror: a second registry that caches another one (``proxy.remoteurl``).

The first pull of an image through the mirror fetches it from the upstream and keeps it; later
pulls are served from the mirror, even while the upstream is down, until ``proxy.ttl`` (registry
3; 7 days by default, and always 7 days on 2.8) has passed since the fetch: then the proxy's
scheduler deletes that manifest or blob, and the next pull fetches it again. Pushes are refused.
Both registries join the workshop's network, where the mirror reaches the upstream by its
container name.

An HTTPS upstream of the workshop is trusted with the workshop CA (mounted, with SSL_CERT_FILE:
the registry is a Go program, and Go reads its trusted CAs from there), and its certificate must
name what the mirror dials, the container's name. A login upstream gets its user and password
from an env file of mode 600 (``--env-file``), never from a command line. Registry 3 answers
both Basic and Bearer challenges with them; 2.8 only Bearer (a basic-auth upstream answers 401,
which its clients see as MANIFEST_UNKNOWN), so reglab refuses that pair in one line.

Registry 2 and 3 both panic at start when the upstream does not answer (``getAuthURLs`` asks it
for ``/v2/``), so :func:`start_mirror` asks first and says so in one line. (The engine's
``registry-mirrors`` setting applies to Docker Hub images only.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import docker

from reglab.auth.certs import Certificate
from reglab.auth.htpasswd import password_variable
from reglab.base.errors import ConfigError, RegistryError, docker_errors
from reglab.base.files import write_atomic
from reglab.base.shell import PathStyle
from reglab.base.versions import V3, RegistryVersion
from reglab.engine.network import NETWORK, project_network
from reglab.engine.spec import Step
from reglab.registry.client import RegistryClient, probe_status
from reglab.registry.config import LOGIN_FILE, RegistryConfig, Stage
from reglab.registry.container import CONTAINER_PORT, Registry
from reglab.registry.login import Credentials


@dataclass(frozen=True)
class Upstream:
    """What a mirror needs of its upstream: the URL it dials, the CA it trusts there (None:
    plain HTTP, or the system's trust), and where reglab asks it from this machine."""

    url: str
    ca: Path | None = None
    probe: str = ""

    def __post_init__(self) -> None:
        if not self.probe:
            object.__setattr__(self, "probe", self.url)


def upstream_of(engine: docker.DockerClient, upstream: str, workdir: Path) -> Upstream:
    """The upstream as the mirror reaches it. A URL is taken as it is; a reglab registry's name
    joins the workshop network and becomes ``http(s)://NAME:5000``, asked from here at its
    published address. An HTTPS one is trusted with the workshop CA and its certificate
    reissued (same CA, one more name) and the registry restarted if it does not name NAME."""
    if upstream.startswith(("http://", "https://")):
        return Upstream(upstream.rstrip("/"))
    if "://" in upstream:
        raise ConfigError(
            f"upstream {upstream!r} is not http(s)", "give http(s)://HOST:PORT or a name"
        )
    registry = Registry.attach(engine, upstream, workdir)
    project_network(engine)  # made when missing, and checked to be reglab's
    container = registry.container
    attached = (container.attrs["NetworkSettings"]["Networks"] or {}) if container else {}
    if NETWORK not in attached:
        with docker_errors(f"cannot connect {upstream} to {NETWORK}"):
            engine.networks.get(NETWORK).connect(container, aliases=[upstream])
    if not registry.config.stage.tls:
        return Upstream(f"http://{upstream}:{CONTAINER_PORT}", probe=registry.url)
    paths = registry.config.paths
    if not Certificate.load(paths.server_cert).covers(upstream):
        paths.server_certificate((*registry.config.cert_names, upstream))
        if container is not None:  # the registry reads its certificate once, at start
            container.restart(timeout=10)
        registry.wait_ready()
    return Upstream(f"https://{upstream}:{CONTAINER_PORT}", paths.ca_cert, registry.url)


def check_upstream(
    upstream: Upstream, login: Credentials | None = None, version: RegistryVersion = V3
) -> None:
    """The upstream must answer ``GET /v2/`` before a mirror starts (both versions panic
    otherwise): 200, or 401 with a login it accepts. 2.8 cannot log in to a basic-auth one."""
    verify: str | bool = str(upstream.ca) if upstream.ca else True
    status = probe_status(f"{upstream.probe}/v2/", verify=verify, timeout=5)
    if status not in (200, 401):
        raise RegistryError(
            f"the upstream {upstream.url} does not answer GET /v2/ with 200 or 401 ({status})",
            "start it (reglab up persistent), check the name or URL",
        )
    if status == 200:
        return
    if login is None:
        raise ConfigError(
            f"the upstream {upstream.url} asks for a login",
            "give its user: reglab up mirror --upstream NAME --user NAME (password asked)",
        )
    with RegistryClient(upstream.probe, ca=upstream.ca) as anonymous:
        challenge = anonymous.answer("GET", "/v2/").headers.get("WWW-Authenticate", "")
    with RegistryClient(upstream.probe, ca=upstream.ca, auth=login.as_tuple()) as api:
        if api.status() != 200:
            raise ConfigError(
                f"the upstream {upstream.url} refuses {login.user}'s password",
                "give the password its registry accepts",
            )
    if not version.v3 and challenge.lower().startswith("basic"):
        raise ConfigError(
            f"registry {version.major}'s proxy logs in to token-auth upstreams only, and "
            f"{upstream.url} asks for basic auth",
            "run the mirror on registry 3 (--registry 3)",
        )


def login_step(login: Credentials, folder: Path, style: PathStyle | None = None) -> Step[Path]:
    """Write the env file ``docker run --env-file`` reads the upstream login from: mode 600, in
    the mirror's working folder; its line takes the password from a shell variable. (Whoever
    may run ``docker inspect`` still reads it: a mirror's login should be a pull-only account.)
    """
    path = folder / LOGIN_FILE
    shown = (style or PathStyle(folder)).show(path)
    line = (  # printf repeats its format: one NAME=VALUE line per pair
        f"(umask 077 && printf '%s=%s\\n' REGISTRY_PROXY_USERNAME {login.user} "
        f'REGISTRY_PROXY_PASSWORD "${password_variable(login.user)}" > {shown})'
    )
    text = f"REGISTRY_PROXY_USERNAME={login.user}\nREGISTRY_PROXY_PASSWORD={login.password}\n"
    return Step([line], lambda: write_atomic(path, text.encode(), mode=0o600))


def start_mirror(
    engine: docker.DockerClient,
    upstream: str,
    port: int,
    workdir: Path,
    name: str,
    notify: str | None = None,
    version: RegistryVersion = V3,
    login: Credentials | None = None,
    ttl: str | None = None,
) -> Registry:
    """Start (or replace) a mirror of ``upstream`` on ``port``; its data in workdir/mirror;
    its events (pulls that filled it) to ``notify`` when given; ``login`` for an upstream
    that asks for one; ``ttl`` its ``proxy.ttl``."""
    project_network(engine)
    found = upstream_of(engine, upstream, workdir)
    check_upstream(found, login, version)
    if login is not None:
        login_step(login, workdir / "mirror").run()
    config = mirror_config(found, port, workdir, name, notify, version, login is not None, ttl)
    return Registry(config, engine).start()


def mirror_config(
    upstream: Upstream | str,
    port: int,
    workdir: Path,
    name: str,
    notify: str | None = None,
    version: RegistryVersion = V3,
    login: bool = False,
    ttl: str | None = None,
) -> RegistryConfig:
    """The mirror of ``upstream`` (its URL as the mirror reaches it): on the workshop network,
    its data in workdir/mirror; with ``login``, its upstream login from the env file there."""
    found = Upstream(upstream) if isinstance(upstream, str) else upstream
    folder = workdir / "mirror"
    return RegistryConfig(
        stage=Stage.MIRROR, port=port, workdir=folder, name=name, upstream=found.url,
        network=NETWORK, notify=notify, version=version, upstream_ca=found.ca, proxy_ttl=ttl,
        upstream_login=folder / LOGIN_FILE if login else None,
    )  # fmt: skip
