"""Garbage collection through the Swarm: the collector of notebook 05, made safe for replicas
that share one store and one cache.

``registry garbage-collect`` must never run while the registry accepts pushes (a blob uploaded
during its mark phase would be swept). With replicas that is every replica, so:

1. **read-only**: the replicas' config again, with ``storage.maintenance.readonly``, deployed as
   a new version of its secret; Swarm replaces the replicas one at a time (the stack file's
   ``update_config``), so pulls go on and pushes are refused;
2. **collect**: the collector in a one-off container of the replicas' image, on the stack's
   network (it reaches the store as ``s3``), reading the replicas' own ``registry.yml``;
3. **flush the cache**: the shared Redis still describes the blobs just deleted, and a replica
   that asks it would answer 200 for them (notebook 05 restarted its registry for the same
   reason; here the cache outlives every replica);
4. **read-write**: the config as it was, replicas replaced again.

What was freed is what the store counts below ``docker/registry/v2/blobs``, before and after,
and the blobs the collector named.
"""

from __future__ import annotations

from pathlib import Path

import docker

from reglab.base.errors import RegistryError, docker_errors
from reglab.engine.oneoff import one_off, run_once
from reglab.engine.spec import ContainerSpec, Mount, Step
from reglab.registry.gc import Collection, eligible_blobs
from reglab.swarm.deploy import running_tasks
from reglab.swarm.names import Named
from reglab.swarm.registry import SwarmRegistry
from reglab.swarm.store import BLOBS, bucket_bytes


def collector_spec(
    names: Named, folder: Path, dry_run: bool = False, delete_untagged: bool = False
) -> ContainerSpec:
    """``registry garbage-collect`` with the replicas' config, on the stack's network."""
    config = names.version.config_path
    flags = ["--dry-run"] * dry_run + ["--delete-untagged"] * delete_untagged
    return one_off(
        names.version.image,
        ("garbage-collect", config, *flags),
        entrypoint=("/bin/registry",),
        network=names.network,
        mounts=(Mount(folder / "registry.yml", config, read_only=True),),
    )


def flush_step(engine: docker.DockerClient, names: Named) -> Step[None]:
    """``redis-cli FLUSHDB`` in the cache's container: every descriptor forgotten."""
    label = f"com.docker.swarm.service.name={names.cache_service}"

    def flush() -> None:
        tasks = running_tasks(engine, names.cache_service)
        if not tasks:
            raise RegistryError(f"the cache of {names.name} does not run", "reglab swarm up")
        cid = tasks[0]["Status"]["ContainerStatus"]["ContainerID"]
        with docker_errors("cannot flush the cache", error=RegistryError):
            result = engine.containers.get(cid).exec_run(["redis-cli", "FLUSHDB"])
        said = bytes(result.output).decode(errors="replace").strip()
        if result.exit_code != 0 or said != "OK":
            raise RegistryError(f"redis-cli FLUSHDB said {said!r}", f"docker logs of {label}")

    return Step([f"docker exec $(docker ps -q -f label={label}) redis-cli FLUSHDB"], flush)


def collect(
    registry: SwarmRegistry,
    dry_run: bool = False,
    delete_untagged: bool = False,
    timeout: float = 240.0,
) -> Collection:
    """Collect the stack's garbage safely (see the module's docstring); a dry run changes
    nothing and only names what would go."""
    registry.require_deployed()
    engine = registry.engine
    before = bucket_bytes(engine, registry, BLOBS)
    collector = collector_spec(registry, registry.folder.resolve(), dry_run, delete_untagged)
    if not dry_run:  # no push may land while blobs are swept
        registry.deploy(registry.write_files(read_only=True), timeout)
        registry.wait_ready(registry.replicas, timeout)
    try:
        output = run_once(
            engine,
            collector,
            what="the garbage collector failed",
            fix=f"read its output above; docker service logs {registry.service}",
            error=RegistryError,
            timeout=timeout,
        )
    finally:
        if not dry_run:
            flush_step(engine, registry).run()
            registry.deploy(registry.write_files(), timeout)
            registry.wait_ready(registry.replicas, timeout)
    return Collection(
        before, bucket_bytes(engine, registry, BLOBS), eligible_blobs(output), dry_run
    )
