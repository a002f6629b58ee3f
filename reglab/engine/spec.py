"""One description of a container, rendered two ways: as the Docker SDK call and as the
``docker run`` line a learner types.

Every container reglab starts (the registry, the token server, a mirror, the small disk's
keeper, the garbage collector and the other one-off containers) is described once, by a
:class:`ContainerSpec`. :meth:`ContainerSpec.run_kwargs` gives ``containers.run(**kwargs)``'s
arguments; :meth:`ContainerSpec.argv` and :meth:`ContainerSpec.shell` the command line, with the
working folder's paths written as the notebook's terminal reaches them
(:class:`~reglab.base.shell.PathStyle`). Both come from the same fields, so what reglab runs
and what it prints cannot drift apart (``tests/unit/test_spec_roundtrip.py`` parses the line
back and compares).

Steps that are not containers (openssl, mkdir, ``docker volume create``) are a :class:`Step`:
the lines a learner types and the action reglab runs, side by side.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from reglab.base.errors import ConfigError
from reglab.base.shell import PathStyle

T = TypeVar("T")

#: The user who types the command: ``--user "$(id -u):$(id -g)"``; reglab runs it as its own
#: uid:gid, so files written in bind-mounted folders belong to the learner.
INVOKER = "$(id -u):$(id -g)"


def invoker() -> str:
    """``uid:gid`` of this process: what :data:`INVOKER` expands to in the learner's shell."""
    return f"{os.getuid()}:{os.getgid()}"


@dataclass(frozen=True)
class Mount:
    """``-v SOURCE:TARGET[:ro]``: a host path (a :class:`~pathlib.Path`) or a named volume (a
    ``str``: the engine makes it when missing)."""

    source: Path | str
    target: str
    read_only: bool = False

    @property
    def mode(self) -> str:
        return "ro" if self.read_only else "rw"

    @property
    def text(self) -> str:
        """``SOURCE:TARGET[:ro]``, unquoted, the path absolute."""
        return f"{self.source}:{self.target}" + (":ro" if self.read_only else "")

    def shown(self, style: PathStyle | None) -> str:
        """As typed: a path of the working folder the way ``style``'s terminal reaches it."""
        if isinstance(self.source, Path) and style is not None:
            return style.show(self.source, mount_to=self.target + (":ro" * self.read_only))
        return shlex.quote(self.text)


def env_argument(name: str, value: str) -> str:
    """``NAME=VALUE`` quoted for the shell; in double quotes when the value holds single
    quotes, so that a shell variable written into it (``$GATEWAY``) still expands."""
    if "'" not in value:
        return shlex.quote(f"{name}={value}")
    escaped = "".join("\\" + c if c in '"\\`' else c for c in value)
    return f'"{name}={escaped}"'


@dataclass(frozen=True)
class ContainerSpec:
    """How one container runs: what ``docker run`` takes, as plain data."""

    image: str
    #: Arguments after the image (empty: the image's own CMD).
    command: tuple[str, ...] = ()
    name: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    #: Published ports: (host address, host port, container port), TCP.
    ports: tuple[tuple[str, int, int], ...] = ()
    mounts: tuple[Mount, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: ``--env-file``: more ``NAME=VALUE`` lines, read from a file at run time, so a secret
    #: in it (a mirror's upstream password) is on no command line. ``env`` wins over it.
    env_file: Path | None = None
    #: ``uid:gid``, or :data:`INVOKER` for the user who runs the command.
    user: str | None = None
    #: A restart policy's name (``unless-stopped``).
    restart: str | None = None
    network: str | None = None
    #: ``--cap-add``: kernel capabilities beyond Docker's default set (the node's mounts).
    cap_add: tuple[str, ...] = ()
    #: ``--add-host NAME:ADDRESS``: names the container's /etc/hosts gives (a DNS name).
    extra_hosts: tuple[tuple[str, str], ...] = ()
    entrypoint: tuple[str, ...] = ()
    #: True: a service left running (``-d``); False: a one-off, removed once it ran (``--rm``).
    detach: bool = True
    #: Print one option a line (services); one-offs stay on one line.
    wrap: bool = False

    def run_kwargs(self) -> dict[str, Any]:
        """The Docker SDK's ``containers.run(**kwargs)`` arguments."""
        ports: dict[str, list[tuple[str, int]]] = {}
        for address, host_port, container_port in self.ports:
            ports.setdefault(f"{container_port}/tcp", []).append((address, host_port))
        return {
            "image": self.image,
            "command": list(self.command) or None,
            "detach": self.detach,
            "remove": not self.detach,
            "name": self.name,
            "entrypoint": list(self.entrypoint) or None,
            "labels": dict(self.labels),
            "ports": ports,
            "volumes": volumes_of(self.mounts),
            "environment": {**read_env_file(self.env_file), **self.env},
            "user": invoker() if self.user == INVOKER else self.user,
            "restart_policy": {"Name": self.restart} if self.restart else None,
            "network": self.network,
            "cap_add": list(self.cap_add) or None,
            "extra_hosts": dict(self.extra_hosts) or None,
        }

    def _options(self, style: PathStyle | None) -> list[tuple[list[str], str]]:
        """Each option of the line: its words as the program receives them (absolute paths,
        the real uid:gid) and its text as typed. The one place the line is written."""
        opts: list[tuple[list[str], str]] = []

        def add(flag: str, value: str, shown: str | None = None, real: str | None = None) -> None:
            opts.append(([flag, real or value], f"{flag} {shown or shlex.quote(value)}"))

        if self.name:
            add("--name", self.name)
        if self.entrypoint:  # docker run takes the entrypoint's program only
            add("--entrypoint", self.entrypoint[0])
        for key, value in self.labels.items():
            add("--label", f"{key}={value}")
        for address, host_port, container_port in self.ports:
            add("-p", f"{address}:{host_port}:{container_port}")
        if self.network:
            add("--network", self.network)
        for capability in self.cap_add:
            add("--cap-add", capability)
        for host, address in self.extra_hosts:
            add("--add-host", f"{host}:{address}")
        if self.restart:
            add("--restart", self.restart)
        if self.user:
            shown = f'"{INVOKER}"' if self.user == INVOKER else None
            add("--user", self.user, shown, invoker() if self.user == INVOKER else None)
        for mount in self.mounts:
            add("-v", mount.text, mount.shown(style))
        if self.env_file is not None:
            shown = style.show(self.env_file) if style else None
            add("--env-file", str(self.env_file), shown)
        for key, value in self.env.items():
            add("-e", f"{key}={value}", env_argument(key, value))
        return opts

    def argv(self) -> list[str]:
        """The line's words as ``docker`` receives them once the shell has expanded them."""
        words = ["docker", "run", "-d" if self.detach else "--rm"]
        for real, _ in self._options(None):
            words += real
        return [*words, self.image, *self.entrypoint[1:], *self.command]

    def shell(self, style: PathStyle | None = None) -> str:
        """The ``docker run`` line as a learner types it in ``style``'s terminal (default:
        absolute paths). Complete: every option reglab passes that the line can carry."""
        parts = [f"docker run {'-d' if self.detach else '--rm'}"]
        parts += [text for _, text in self._options(style)]
        args = [shlex.quote(a) for a in (*self.entrypoint[1:], *self.command)]
        if not self.wrap:
            return " ".join([*parts, self.image, *args])
        parts.append(self.image)
        i = 0
        while i < len(args):  # a flag and its value on one line: --listen 0.0.0.0:5001
            pair = args[i].startswith("-") and i + 1 < len(args) and not args[i + 1].startswith("-")
            parts.append(" ".join(args[i : i + 1 + pair]))
            i += 1 + pair
        return " \\\n  ".join(parts)


def read_env_file(path: Path | None) -> dict[str, str]:
    """``NAME=VALUE`` lines as ``docker run --env-file`` reads them: taken as they are (no
    quotes, no ``$``), blank lines and ``#`` comments skipped; a missing file is one line."""
    if path is None:
        return {}
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the env file {path}: {exc.strerror}", "write it again, then retry"
        ) from None
    found = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {name.strip(): value for name, value in found}


def volumes_of(mounts: tuple[Mount, ...]) -> dict[str, dict[str, str]]:
    """Mounts as the Docker SDK's ``volumes=`` wants them."""
    return {str(m.source): {"bind": m.target, "mode": m.mode} for m in mounts}


@dataclass(frozen=True)
class Step(Generic[T]):
    """A step that is not a container: the lines a learner types, and the action reglab runs
    to do the same (with ``cryptography`` instead of openssl, Python instead of mkdir)."""

    lines: list[str]
    action: Callable[[], T]

    def run(self, show: Callable[[str], None] | None = None) -> T:
        """Show each line (when ``show`` is given), then do the step."""
        for line in self.lines:
            if show is not None:
                show(line)
        return self.action()


__all__ = [
    "INVOKER",
    "ContainerSpec",
    "Mount",
    "Step",
    "env_argument",
    "invoker",
    "read_env_file",
    "volumes_of",
]
