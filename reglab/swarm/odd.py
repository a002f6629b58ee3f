"""A registry with another ``http.secret``, started beside the stack (notebook 09 shows what
it breaks): the same store, cache and tokens as the replicas, and the front sends it only the
requests that ask for it (``X-Reglab-Use: odd``)."""

from __future__ import annotations

import secrets
from pathlib import Path

import docker
import docker.errors
import yaml

from reglab.base.errors import RegistryError, docker_errors
from reglab.base.files import write_atomic
from reglab.base.labels import owner_labels
from reglab.base.shell import PathStyle
from reglab.base.wait import WaitTimeout, poll
from reglab.engine.spec import ContainerSpec, Mount
from reglab.swarm.front import answers_as, replicas_seen
from reglab.swarm.names import Named

#: Containers started, at most, before giving up (see :func:`start_odd`).
ATTEMPTS = 3


def odd_spec(names: Named, folder: Path) -> ContainerSpec:
    """The odd registry: the replicas' configuration with another ``http.secret``, on the
    stack's network, where the front reaches it by name."""
    return ContainerSpec(
        names.version.image,
        name=names.odd,
        labels=owner_labels(),
        network=names.network,
        mounts=(
            Mount(folder / "odd.yml", names.version.config_path, read_only=True),
            Mount(folder / "ca.crt", "/etc/reglab/ca.crt", read_only=True),
        ),
    )


def odd_commands(names: Named, folder: Path, style: PathStyle) -> list[str]:
    registry_yml = style.show(folder / "registry.yml")
    odd_yml = style.show(folder / "odd.yml")
    return [
        # another secret from the kernel's random numbers (od and tr: any shell, not bash only)
        f'(umask 077; sed "s/^  secret: .*/  secret: $(od -An -N32 -tx1 /dev/urandom '
        f"| tr -d ' \\n')/\" {registry_yml} > {odd_yml})",
        odd_spec(names, folder).shell(style),
    ]


def start_odd(engine: docker.DockerClient, names: Named, folder: Path, timeout: float) -> None:
    """Start the odd registry; return when the front sees it up and it answers as itself.

    Rarely, the front has been seen never to reach a plain container that just joined the
    stack's network (for a whole minute; by name, through Docker's DNS). A new container,
    with a new address, is then started: up to :data:`ATTEMPTS` in all.
    """
    config = yaml.safe_load((folder / "registry.yml").read_text())
    config["http"]["secret"] = secrets.token_hex(32)
    write_atomic(folder / "odd.yml", yaml.safe_dump(config, sort_keys=False).encode(), 0o600)
    ca = folder / "ca.crt"
    for _attempt in range(ATTEMPTS):
        _run_odd(engine, names, folder)
        try:
            poll(
                f"the front to reach {names.odd}",
                lambda: True if answers_as(names, ca, "odd") else None,
                timeout=timeout / ATTEMPTS,
                interval=0.3,
            )
            return
        except WaitTimeout:
            continue
    seen = [r.status for r in replicas_seen(names, True) if r.name == "odd"]
    raise RegistryError(
        f"the front never reached {names.odd} (it shows it "
        f"{seen[0] if seen else 'with no address: not resolved'})",
        f"docker logs {names.odd}; docker service logs {names.front}",
    )


def _run_odd(engine: docker.DockerClient, names: Named, folder: Path) -> None:
    remove_odd(engine, names)
    with docker_errors(f"cannot start {names.odd}", error=RegistryError):
        engine.containers.run(**odd_spec(names, folder.resolve()).run_kwargs())


def remove_odd(engine: docker.DockerClient, names: Named) -> bool:
    """Remove the odd registry (and its anonymous volume); False when none ran."""
    try:
        engine.containers.get(names.odd).remove(force=True, v=True)
    except docker.errors.NotFound:
        return False
    return True
