"""Short-lived containers: run one command, return what it printed, and always remove them.

``docker run --rm`` does not remove a container that could not start; these always go,
whatever happens, so a failed step leaves nothing behind on the learner's engine. What runs is
a :class:`~reglab.engine.spec.ContainerSpec` (``detach=False``), so its ``docker run --rm``
line is the same description.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import docker

from reglab.base.errors import ReglabError, docker_errors
from reglab.base.labels import owner_labels
from reglab.engine.spec import ContainerSpec


def one_off(image: str, command: Sequence[str] = (), **fields: Any) -> ContainerSpec:
    """A one-off container's description (``docker run --rm IMAGE COMMAND``)."""
    return ContainerSpec(image, tuple(command), detach=False, **fields)


def run_once(
    engine: docker.DockerClient,
    spec: ContainerSpec | str,
    command: Sequence[str] = (),
    what: str = "a short-lived container failed",
    fix: str | None = None,
    error: type[ReglabError] = ReglabError,
    timeout: float = 120.0,
    entrypoint: Sequence[str] = (),
) -> str:
    """Run ``spec`` (or ``command`` in a new container of the image ``spec``); return its
    output; remove it.

    Raises ``error`` ("WHAT: ...") when the container cannot start or exits non-zero.
    """
    if isinstance(spec, str):
        spec = one_off(spec, command, entrypoint=tuple(entrypoint))
    kwargs = spec.run_kwargs()
    del kwargs["detach"], kwargs["remove"]  # removed here, even when it never started
    # The owner label, not on the line: should the removal below fail, reglab may clean it up.
    kwargs["labels"] = {**owner_labels(), **kwargs["labels"]}
    with docker_errors(what, fix, error):
        container = engine.containers.create(**kwargs)
        try:
            container.start()
            status = container.wait(timeout=timeout)
            output = bytes(container.logs()).decode(errors="replace")
        finally:
            container.remove(force=True, v=True)
    if status.get("StatusCode", 1) != 0:
        raise error(f"{what}: {output.strip()[-300:] or 'exit ' + str(status)}", fix)
    return output
