"""Short-lived containers: run one command, return what it printed, and always remove them.

``docker run --rm`` does not remove a container that could not start; these always go,
whatever happens, so a failed step leaves nothing behind on the learner's engine.
"""

from __future__ import annotations

import docker

from reglab.base.errors import ReglabError, docker_errors
from reglab.base.labels import owner_labels

Mounts = dict[str, dict[str, str]]


def run_once(
    engine: docker.DockerClient,
    image: str,
    command: list[str],
    volumes: Mounts | None = None,
    what: str = "a short-lived container failed",
    fix: str | None = None,
    error: type[ReglabError] = ReglabError,
    timeout: float = 120.0,
    entrypoint: list[str] | None = None,
    network: str | None = None,
) -> str:
    """Run ``command`` in a new container of ``image``; return its output; remove it.

    Raises ``error`` ("WHAT: ...") when the container cannot start or exits non-zero.
    """
    with docker_errors(what, fix, error):
        container = engine.containers.create(  # an empty command: the image's own CMD
            image,
            command or None,
            entrypoint=entrypoint,
            network=network,
            volumes=volumes or {},
            labels=owner_labels(),
        )
        try:
            container.start()
            status = container.wait(timeout=timeout)
            output = bytes(container.logs()).decode(errors="replace")
        finally:
            container.remove(force=True, v=True)
    if status.get("StatusCode", 1) != 0:
        raise error(f"{what}: {output.strip()[-300:] or 'exit ' + str(status)}", fix)
    return output
