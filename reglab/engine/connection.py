"""Connecting to the Docker engine, and the checks of the machine it runs on that the
preflight (:mod:`reglab.registry.preflight`) and the start of a registry share: who holds a
port, and whether a folder can be written. Each :class:`~reglab.base.errors.Problem` carries
its fix, so a learner can act on it without asking.
"""

from __future__ import annotations

import errno
import os
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from reglab.base.errors import EngineError, Problem, docker_errors

_DEFAULT_SOCKET = "/var/run/docker.sock"


def connect(timeout: int = 60) -> docker.DockerClient:
    """Return a client for the engine named by ``DOCKER_HOST`` (or the default socket).

    Raises EngineError, with the way to start one, when no engine answers, and leaves no socket
    open behind it: a client whose ping fails is closed, and a Unix socket nobody serves is
    tried (and closed) here first, because the SDK's own attempt leaks the socket it opened
    (docker.transport.unixconn connects a socket it only keeps on success).
    """
    host = os.environ.get("DOCKER_HOST", "")
    where = host or f"the default socket {_DEFAULT_SOCKET}"
    what = f"no Docker engine answers at {where}"
    fix = (
        "start Docker (Linux: 'sudo systemctl start docker', or 'sudo dockerd &' without "
        "systemd; Docker Desktop: open it), or set DOCKER_HOST"
    )
    path = host.removeprefix("unix://") if host.startswith("unix://") or not host else None
    if path is not None:
        _check_unix_socket(path or _DEFAULT_SOCKET, timeout, what, fix)
    client: docker.DockerClient | None = None
    try:
        with docker_errors(what, fix):
            client = docker.from_env(timeout=timeout)
            client.ping()
    except EngineError:
        if client is not None:
            client.close()
        raise
    return client


def _check_unix_socket(path: str, timeout: float, what: str, fix: str) -> None:
    """EngineError when nothing accepts a connection on the Unix socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            raise EngineError(f"{what}: {exc.strerror or exc}", fix) from None


@dataclass(frozen=True)
class EngineInfo:
    """Which engine answered: its version and the API version it speaks."""

    version: str
    api_version: str

    @classmethod
    def of(cls, client: docker.DockerClient) -> EngineInfo:
        info = client.version()
        return cls(str(info.get("Version", "?")), str(info.get("ApiVersion", "?")))

    def __str__(self) -> str:
        return f"Docker engine {self.version} (API {self.api_version})"


def port_owner(client: docker.DockerClient | None, port: int) -> str | None:
    """Name of the running container publishing ``port`` on the host, if any."""
    if client is None:
        return None
    for container in client.containers.list():
        for bindings in (container.ports or {}).values():
            for binding in bindings or []:
                if str(binding.get("HostPort")) == str(port):
                    return str(container.name)
    return None


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` (checked by binding it on all interfaces).

    SO_REUSEADDR makes the check ignore connections still closing (TIME_WAIT), which do not
    stop a new listener, while a real listener still makes the bind fail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def port_problem(
    client: docker.DockerClient | None, port: int, allowed_owner: str | None = None
) -> Problem | None:
    """A Problem when something listens on ``port``, naming the container that holds it.

    A container called ``allowed_owner`` is not a problem: it is the registry about to be
    replaced.
    """
    if port_is_free(port):
        return None
    owner = port_owner(client, port)
    if owner is not None and owner == allowed_owner:
        return None
    held = f"container {owner}" if owner else "another program"
    fix = "choose another port (--port N or REGLAB_PORT=N)"
    return Problem(
        f"port {port} is already in use by {held}",
        fix + (f", or stop it: docker rm -f {owner}" if owner else ""),
    )


def writable_problem(folder: Path) -> Problem | None:
    """A Problem when ``folder`` (or its nearest existing parent) cannot be written.

    It tries to write there: permission bits alone say nothing when running as root, and
    nothing at all about a read-only file system.
    """
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.is_dir():
        try:
            with tempfile.TemporaryFile(dir=probe):
                return None
        except OSError:
            pass
    return Problem(
        f"working folder {folder} is not writable",
        "choose another folder (--workdir DIR or REGLAB_WORKDIR=DIR) or fix its permissions",
    )
