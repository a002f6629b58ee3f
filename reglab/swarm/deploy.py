"""Deploying the stack: its files into ``workdir/swarm``, ``docker stack deploy``, the rolling
updates a deploy starts, and ``docker stack rm`` done to the end.

Swarm secrets and configs cannot change: each deploy names them by the hash of their files
(:data:`reglab.swarm.render.VERSIONS`), so a new user or access rule is a new version, and the
services that use it are updated one task at a time (the stack file's ``update_config``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import docker
import docker.errors

from reglab.base.errors import EngineError, RegistryError, docker_errors
from reglab.base.files import write_atomic
from reglab.base.shell import PathStyle
from reglab.base.versions import V3
from reglab.base.wait import NotYet, poll
from reglab.engine.spec import Step
from reglab.registry.token import use_acl
from reglab.registry.workdir import Workdir
from reglab.swarm.cluster import remove_network, swarm_state
from reglab.swarm.names import Named
from reglab.swarm.render import SECRET_FILES, VERSIONS, new_keys, render, versions


def write_files(
    names: Named, paths: Workdir, acl: Path | None = None, read_only: bool = False
) -> dict[str, str]:
    """Write the stack's files into ``workdir/swarm``; return their versions. ``read_only``:
    the replicas take pulls only (while garbage is collected).

    ``http.secret`` and the store's keys (``keys.json``) are made once and kept. The users
    and the access list are the working folder's (``acl``, when given, is copied there first,
    as ``reglab up token --acl``); the certificates are issued by the workshop CA when missing.
    """
    cert = paths.server_certificate()
    paths.signing_certificate()  # the token servers' key and certificate
    acl_file = use_acl(paths, acl)
    folder = paths.root / "swarm"
    folder.mkdir(parents=True, exist_ok=True)
    keys_file = folder / "keys.json"
    if keys_file.is_file():
        keys = json.loads(keys_file.read_text())
    else:
        keys = new_keys()
        write_atomic(keys_file, json.dumps(keys, indent=1).encode(), mode=0o600)
    copied = {
        "htpasswd": paths.htpasswd.read_bytes(),
        "token.key": paths.token_key.read_bytes(),
        "acl.yml": acl_file.read_bytes(),
        "token.crt": paths.token_cert.read_bytes(),
        "ca.crt": paths.ca_cert.read_bytes(),
        "front.pem": cert.cert_pem + cert.key_pem,
    }
    files = render(names, keys, copied, read_only)
    for name, data in files.items():
        write_atomic(folder / name, data, mode=0o600 if name in SECRET_FILES else 0o644)
    return versions(files)


def settings(names: Named, replicas: int) -> dict[str, str]:
    """The stack file's variables but the files' versions. Its defaults are registry 3's: the
    image and where it reads its config are set only for another version."""
    found = {"REGLAB_STACK": names.name, "REGLAB_REPLICAS": str(replicas)}
    if names.version != V3:
        found["REGLAB_REGISTRY_IMAGE"] = names.version.image
        found["REGLAB_REGISTRY_CONFIG"] = names.version.config_path
    return found


def environment(names: Named, replicas: int, found: dict[str, str]) -> dict[str, str]:
    """The stack file's variables."""
    return {**settings(names, replicas), **found}


#: ``docker stack deploy``'s words before the stack file and the stack's name (the images are
#: this machine's: never asked of a registry).
STACK_DEPLOY = ("docker", "stack", "deploy", "--resolve-image", "never", "-c")


def deploy_step(
    engine: docker.DockerClient,
    names: Named,
    replicas: int,
    folder: Path,
    versions: dict[str, str],
    style: PathStyle,
    timeout: float = 240.0,
) -> Step[None]:
    """The deploy: the line a terminal types (:func:`deploy_command`), and :func:`deploy` with
    the same variables."""
    env = environment(names, replicas, versions)
    return Step(
        [deploy_command(names, replicas, folder, style)],
        lambda: deploy(engine, names, folder, env, timeout),
    )


def deploy_command(names: Named, replicas: int, folder: Path, style: PathStyle) -> str:
    """The ``docker stack deploy`` line; the versions are the same hashes :func:`write_files`
    computes, worked out by the shell from the files."""
    fixed = " ".join(f"{k}={v}" for k, v in settings(names, replicas).items())
    found = " ".join(
        f"{variable}=$(cat {' '.join(style.show(folder / n) for n in group)} "
        "| sha256sum | cut -c1-12)"
        for variable, group in VERSIONS.items()
    )
    stack = style.show(folder / "stack.yml")
    return f"{fixed} {found} docker stack deploy --resolve-image never -c {stack} {names.name}"


def services(engine: docker.DockerClient, names: Named) -> list[Any]:
    with docker_errors("cannot list the swarm's services", error=EngineError):
        return list(engine.services.list(filters=names.namespace))


def update_started(svc: Any) -> str:
    """When the service's last update started ("" if it had none)."""
    return str((svc.attrs.get("UpdateStatus") or {}).get("StartedAt", ""))


def deploy(
    engine: docker.DockerClient,
    names: Named,
    folder: Path,
    env: dict[str, str],
    timeout: float = 240.0,
) -> None:
    """``docker stack deploy`` (the Docker SDK has no stacks: the docker command does it).
    Deployed over a running stack, it returns when the services it changed have completed
    their rolling updates (new secrets or configs: new tasks, started as the stack file's
    ``update_config`` says)."""
    if shutil.which("docker") is None:
        raise EngineError("the docker command is needed to deploy a stack", "install Docker's CLI")
    before = {
        svc.name: (svc.attrs["Spec"].get("TaskTemplate"), update_started(svc))
        for svc in services(engine, names)
    }
    command = [*STACK_DEPLOY, str(folder / "stack.yml"), names.name]
    result = subprocess.run(
        command, env={**os.environ, **env}, cwd=folder, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise RegistryError(
            f"docker stack deploy failed: {last[0][:300]}", f"see docker stack ps {names.name}"
        )
    for svc in services(engine, names):
        template, started = before.get(svc.name, (None, ""))
        if template is not None and svc.attrs["Spec"].get("TaskTemplate") != template:
            wait_update(svc, started, timeout)


def wait_update(svc: Any, before: str, timeout: float) -> None:
    """Wait until the service's update that started after ``before`` completed; a paused or
    rolled back one raises (see the stack file's ``update_config``)."""

    def completed() -> bool | None:
        svc.reload()
        status = svc.attrs.get("UpdateStatus") or {}
        if status.get("StartedAt", "") == before:
            raise NotYet("the update has not started")
        state = status.get("State")
        if state == "completed":
            return True
        if state in ("paused", "rollback_completed", "rollback_paused"):
            raise RegistryError(
                f"the update of {svc.name} ended {state}: {status.get('Message', '')}",
                f"see docker service ps {svc.name}",
            )
        raise NotYet(f"the update is {state}")

    poll(
        f"the update of {svc.name}",
        completed,
        timeout=timeout,
        interval=0.3,
        fix=f"see docker service ps {svc.name}",
    )


def running_tasks(engine: docker.DockerClient, service: str) -> list[dict[str, Any]]:
    """The service's tasks that run now (and are meant to)."""
    try:
        svc = engine.services.get(service)
    except docker.errors.NotFound:
        return []
    tasks = svc.tasks(filters={"desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


def remove_stack(engine: docker.DockerClient, names: Named, timeout: float = 60.0) -> None:
    """``docker stack rm``, done by the SDK in the same order; return when the stack's
    containers, network, secrets and configs are gone (the command itself returns before its
    tasks have stopped: a registry drains for up to 5 s, then Swarm kills after 10 s)."""
    if swarm_state(engine) != "active":
        return
    with docker_errors(f"cannot remove the stack {names.name}", error=RegistryError):
        for svc in services(engine, names):
            svc.remove()

        def containers_gone() -> bool | None:
            # the low-level list: containers.list() inspects each, racing their removal
            left = engine.api.containers(all=True, filters=names.namespace)
            if left:
                shown = sorted(str(c["Names"][0]).lstrip("/") for c in left)
                raise NotYet(f"{len(left)} left: {', '.join(shown[:3])}")
            return True

        poll(
            f"the containers of the stack {names.name} to go",
            containers_gone,
            timeout=timeout,
            interval=0.3,
            fix=f"see docker ps -a -f label=com.docker.stack.namespace={names.name}",
        )
        for secret in engine.secrets.list(filters=names.namespace):
            secret.remove()
        for config in engine.configs.list(filters=names.namespace):
            config.remove()
        for network in engine.networks.list(filters=names.namespace):
            remove_network(engine, str(network.name), timeout)


def down_commands(names: Named, purge: bool) -> list[str]:
    """What :func:`remove_stack` (and the relay's removal) does, as a terminal types it."""
    gone = f"docker network ls -q -f label=com.docker.stack.namespace={names.name}"
    commands = [
        f"docker rm -f {names.relay}",
        f"docker stack rm {names.name}",
        # the command returns at once; the network goes a moment later
        f'until [ -z "$({gone})" ]; do sleep 0.2; done',
    ]
    if purge:
        commands.append(f"docker volume rm {names.volume}")
    return commands
