"""The stack's store, as the store itself counts it: SeaweedFS's ``weed shell`` in the store's
container (``fs.du``), and the same line for a terminal. The notebook shows the bucket growing
on a push; :mod:`reglab.swarm.gc` what a garbage collection freed."""

from __future__ import annotations

import re

import docker

from reglab.base.errors import RegistryError, docker_errors
from reglab.swarm.names import BUCKET, Named

#: Where the registry keeps the blobs, below the bucket (its rootdirectory is /).
BLOBS = "docker/registry/v2/blobs"


def _folder(below: str) -> str:
    return f"/buckets/{BUCKET}" + (f"/{below}" if below else "")


def bucket_command(names: Named, below: str = "") -> str:
    """How a terminal asks the store how much the bucket (or a folder ``below`` it) holds."""
    label = f"com.docker.swarm.service.name={names.store_service}"
    return (
        f"echo 'fs.du {_folder(below)}' | "
        f"docker exec -i $(docker ps -q -f label={label}) weed shell"
    )


def bucket_bytes(engine: docker.DockerClient, names: Named, below: str = "") -> int:
    """The bytes the bucket (or a folder ``below`` it) holds, as the store counts them
    (``weed shell fs.du``); 0 when there is no such folder."""
    label = f"com.docker.swarm.service.name={names.store_service}"
    store = engine.containers.list(filters={"label": label})
    if not store:
        raise RegistryError(f"the store of {names.name} does not run", "reglab swarm up")
    with docker_errors("cannot ask the store", error=RegistryError):
        result = store[0].exec_run(
            ["/bin/busybox", "sh", "-c", f"echo 'fs.du {_folder(below)}' | weed shell"]
        )
    output = bytes(result.output).decode(errors="replace")
    match = re.search(r"logical size:\s*(\d+)", output)
    if match is None:
        if below and "not found" in output.lower():
            return 0
        raise RegistryError(f"the store did not say its size: {output.strip()[-200:]}")
    return int(match.group(1))
