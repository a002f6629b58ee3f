"""Workshop settings: the port, the working folder and names, from the environment.

The port is a setting because 5000 is taken on some machines (the AirPlay receiver on macOS 12+,
or another registry). Notebooks and the command line read the same variables:

- ``REGLAB_PORT``     host port of the registry (default 5000)
- ``REGLAB_WORKDIR``  folder holding registry-data/, certs/, ca/ and auth/ (default ./workdir)
- ``REGLAB_NAME``     container name (default ``reglab-registry``)
- ``REGLAB_OFFLINE``  ``1`` never tries to pull from Docker Hub; images are built locally instead
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import ConfigError

DEFAULT_PORT = 5000
DEFAULT_NAME = "reglab-registry"
DEFAULT_WORKDIR = "workdir"

#: The registry image. Pinned to the v2 line on purpose: ``registry`` / ``registry:latest`` now
#: pull distribution v3, which reads its config from a different path (/etc/distribution/).
REGISTRY_IMAGE = "registry:2"
HELLO_IMAGE = "hello-world:latest"

#: Label that marks every container, network and image reglab created, so that reglab only ever
#: replaces or removes what it owns.
OWNER_LABEL = "org.reglab.owned"


def check_port(port: int | str) -> int:
    """Return ``port`` as an int, or raise ConfigError when it is not a usable TCP port."""
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise ConfigError(
            f"port {port!r} is not a number", "give a port between 1 and 65535, e.g. 5000"
        ) from None
    if not 1 <= value <= 65535:
        raise ConfigError(
            f"port {value} is out of range", "give a port between 1 and 65535, e.g. 5000"
        )
    return value


def check_name(name: str) -> str:
    """Container names follow Docker's rule: [a-zA-Z0-9][a-zA-Z0-9_.-]*."""
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", name or ""):
        raise ConfigError(
            f"container name {name!r} is not valid",
            "use letters, digits, '_', '.' or '-', starting with a letter or digit",
        )
    return name


def port() -> int:
    """The registry port from ``REGLAB_PORT`` (default 5000)."""
    return check_port(os.environ.get("REGLAB_PORT", DEFAULT_PORT))


def workdir() -> Path:
    """The working folder from ``REGLAB_WORKDIR`` (default ``./workdir``), as an absolute path."""
    return Path(os.environ.get("REGLAB_WORKDIR", DEFAULT_WORKDIR)).expanduser().resolve()


def name() -> str:
    """The registry container name from ``REGLAB_NAME``."""
    return check_name(os.environ.get("REGLAB_NAME", DEFAULT_NAME))


def offline() -> bool:
    """True when ``REGLAB_OFFLINE`` asks never to contact Docker Hub."""
    return os.environ.get("REGLAB_OFFLINE", "").lower() in {"1", "true", "yes"}
