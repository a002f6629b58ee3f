"""A container reglab runs beside a registry (the token stage's token server, the signature
gate): found by its name, waited for until it answers, its last log lines in the one line a
failed start gives, and removed only when reglab made it. The registry's own container has
more to it (:mod:`.container`); these two are alike, and alike here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

import docker
import docker.errors

from reglab.base.errors import NotOwned, RegistryError, docker_errors
from reglab.base.labels import is_owned
from reglab.base.wait import NotYet, WaitTimeout, poll


def remove_owned(engine: docker.DockerClient, name: str) -> bool:
    """Remove the container ``name`` if reglab made it; True when one went (a learner's
    container of that name is left alone)."""
    try:
        container = engine.containers.get(name)
    except docker.errors.NotFound:
        return False
    if not is_owned(container.labels):
        return False
    with docker_errors(f"cannot remove {name}", error=RegistryError):
        container.remove(force=True)
    return True


class Companion:
    """One companion container: ``name`` on ``engine``, as ``what`` in messages."""

    what = "the companion"

    def __init__(self, engine: docker.DockerClient, name: str) -> None:
        self.engine = engine
        self.name = name

    @property
    def container(self) -> docker.models.containers.Container | None:
        try:
            return self.engine.containers.get(self.name)
        except docker.errors.NotFound:
            return None

    def logs(self, tail: int = 20) -> str:
        container = self.container
        return bytes(container.logs(tail=tail)).decode(errors="replace") if container else ""

    def fail(self, problem: str) -> NoReturn:
        """A start that went wrong, in one line with the container's last log lines."""
        last = " | ".join(line for line in self.logs(5).splitlines() if line.strip())[-300:]
        raise RegistryError(
            f"{problem}; last log lines: {last or '(none)'}", f"docker logs {self.name}"
        )

    def wait_answering(
        self, url: str, probe: Callable[[], int | str], ok: tuple[int, ...], timeout: float
    ) -> None:
        """Poll ``probe`` until it answers one of ``ok``; one line (with the last log lines)
        when the container stops first or the time runs out."""

        def answered() -> bool | None:
            status = probe()
            if status in ok:
                return True
            container = self.container
            if container is None or container.status in ("exited", "dead"):
                self.fail(f"{self.what} stopped before answering")
            raise NotYet(f"{self.what} answered {status}")

        try:
            poll(f"{self.what} to answer at {url}", answered, timeout=timeout, interval=0.02)
        except WaitTimeout as exc:
            self.fail(exc.problem)

    def remove(self) -> bool:
        """Remove it (reglab's only: another container of that name is refused in one line)."""
        container = self.container
        if container is not None and not is_owned(container.labels):
            raise NotOwned(
                f"a container named {self.name} exists and was not created by reglab",
                f"remove it yourself (docker rm -f {self.name}) or choose another --name",
            )
        return remove_owned(self.engine, self.name)


__all__ = ["Companion", "remove_owned"]
