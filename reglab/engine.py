"""Connecting to the Docker engine, and the preflight check (``reglab doctor``).

The preflight exists because a workshop room fails in a handful of predictable ways; each
:class:`Problem` carries the fix, so a learner can act on it without asking.
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

from . import settings
from .errors import EngineError


def connect(timeout: int = 60) -> docker.DockerClient:
    """Return a client for the engine named by ``DOCKER_HOST`` (or the default socket).

    Raises EngineError, with the way to start one, when no engine answers.
    """
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        where = os.environ.get("DOCKER_HOST", "the default socket /var/run/docker.sock")
        raise EngineError(
            f"no Docker engine answers at {where} ({_short(exc)})",
            "start Docker (Linux: 'sudo dockerd &' or 'sudo systemctl start docker'; "
            "Docker Desktop: open it), or set DOCKER_HOST",
        ) from None
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


@dataclass(frozen=True)
class Problem:
    """One thing in the way of the workshop, with the fix."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what} - fix: {self.fix}"


def port_owner(client: docker.DockerClient | None, port: int) -> str | None:
    """Name of the running container publishing ``port`` on the host, if any."""
    if client is None:
        return None
    for container in client.containers.list():
        for bindings in (container.ports or {}).values():
            for binding in bindings or []:
                if str(binding.get("HostPort")) == str(port):
                    return container.name
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


def preflight(
    port: int | None = None,
    workdir: Path | None = None,
    name: str | None = None,
) -> list[Problem]:
    """Check everything the workshop needs; return the problems found (empty when ready).

    A port held by reglab's own registry of the same name is not a problem: ``up`` replaces it.
    """
    from .images import missing_images  # local import: images imports engine

    port = settings.check_port(port if port is not None else settings.port())
    workdir = Path(workdir) if workdir is not None else settings.workdir()
    name = name or settings.name()
    problems: list[Problem] = []

    client = None
    try:
        client = connect()
    except EngineError as exc:
        problems.append(Problem(exc.problem, exc.fix or ""))

    if client is not None:
        for image in missing_images(client):
            problems.append(
                Problem(
                    f"image {image} is missing",
                    "run 'reglab images' (pulls, or builds it offline), "
                    "or 'reglab images --load FILE.tar' in a room without network",
                )
            )

    problem = port_problem(client, port, allowed_owner=name)
    if problem:
        problems.append(problem)

    problem = writable_problem(workdir)
    if problem:
        problems.append(problem)
    return problems


def port_problem(client: docker.DockerClient | None, port: int,
                 allowed_owner: str | None = None) -> Problem | None:
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
    return Problem(f"port {port} is already in use by {held}",
                   "choose another port (--port N or REGLAB_PORT=N)"
                   + (f", or stop it: docker rm -f {owner}" if owner else ""))


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
