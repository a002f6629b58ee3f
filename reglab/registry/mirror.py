"""A pull-through mirror: a second registry that caches another one (``proxy.remoteurl``).

The first pull of an image through the mirror fetches it from the upstream and keeps it; later
pulls are served from the mirror, even while the upstream is down. Pushes to a mirror are
refused. Both registries join the workshop's network, where the mirror reaches the upstream by
its container name.

Registry 2.8's proxy panics at start when its upstream does not answer, so :func:`start_mirror`
asks first, from inside the network, and says so in one line. (It sends credentials only to
token-auth upstreams; a basic-auth upstream answers 401 and the mirror reports
MANIFEST_UNKNOWN. The engine's ``registry-mirrors`` setting applies to Docker Hub images only.)
"""

from __future__ import annotations

from pathlib import Path

import docker

from reglab.base.errors import ConfigError, RegistryError, docker_errors
from reglab.base.versions import V3, RegistryVersion
from reglab.engine.network import NETWORK, project_network
from reglab.registry.client import probe_status
from reglab.registry.config import RegistryConfig, Stage
from reglab.registry.container import CONTAINER_PORT, Registry


def upstream_url(engine: docker.DockerClient, upstream: str, workdir: Path) -> str:
    """The upstream as the mirror reaches it. A URL is taken as it is; a reglab registry's name
    joins the workshop network and becomes ``http://NAME:5000``."""
    if upstream.startswith(("http://", "https://")):
        return upstream.rstrip("/")
    if "://" in upstream:
        raise ConfigError(
            f"upstream {upstream!r} is not http(s)", "give http://HOST:PORT or a name"
        )
    registry = Registry.attach(engine, upstream, workdir)
    if registry.config.stage.tls:
        raise ConfigError(
            f"registry {upstream} speaks HTTPS with the workshop CA, which a mirror does not trust",
            "mirror a plain-HTTP registry (reglab up persistent), or give --upstream URL",
        )
    project_network(engine)  # made when missing, and checked to be reglab's
    container = registry.container
    attached = (container.attrs["NetworkSettings"]["Networks"] or {}) if container else {}
    if NETWORK not in attached:
        with docker_errors(f"cannot connect {upstream} to {NETWORK}"):
            engine.networks.get(NETWORK).connect(container, aliases=[upstream])
    return f"http://{upstream}:{CONTAINER_PORT}"


def check_upstream(engine: docker.DockerClient, url: str) -> None:
    """GET URL/v2/ must answer 200 before a mirror starts (2.8's proxy panics otherwise).

    A reglab upstream is asked at its address on the workshop network, where the mirror will
    reach it; a URL is asked as given, from this machine. (Not from a container: the tools
    image's static busybox cannot look names up.)
    """
    target = f"{url}/v2/"
    host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
    found = engine.containers.list(filters={"name": f"^{host}$"})
    if found:
        networks = found[0].attrs["NetworkSettings"]["Networks"] or {}
        address = (networks.get(NETWORK) or {}).get("IPAddress")
        if address:
            target = f"http://{address}:{CONTAINER_PORT}/v2/"
    status = probe_status(target, timeout=5)
    if status != 200:
        raise RegistryError(
            f"the upstream {url} does not answer GET /v2/ with 200 ({status})",
            "start it (reglab up persistent), check the name or URL; a mirror of a registry "
            "that asks for a login needs token auth upstream",
        )


def start_mirror(
    engine: docker.DockerClient,
    upstream: str,
    port: int,
    workdir: Path,
    name: str,
    notify: str | None = None,
    version: RegistryVersion = V3,
) -> Registry:
    """Start (or replace) a mirror of ``upstream`` on ``port``; its data in workdir/mirror;
    its events (pulls that filled it) to ``notify`` when given."""
    project_network(engine)
    url = upstream_url(engine, upstream, workdir)
    check_upstream(engine, url)
    return Registry(mirror_config(url, port, workdir, name, notify, version), engine).start()


def mirror_config(
    url: str,
    port: int,
    workdir: Path,
    name: str,
    notify: str | None = None,
    version: RegistryVersion = V3,
) -> RegistryConfig:
    """The mirror of the upstream at ``url`` (as the mirror reaches it): on the workshop
    network, its data in workdir/mirror."""
    return RegistryConfig(
        stage=Stage.MIRROR, port=port, workdir=workdir / "mirror", name=name, upstream=url,
        network=NETWORK, notify=notify, version=version,
    )  # fmt: skip
