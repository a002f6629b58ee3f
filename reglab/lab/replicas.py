"""Notebook 09 in the notebooks: registry replicas on Docker Swarm.

Like :class:`~reglab.lab.workshop.Workshop`'s methods, each function does the work through
reglab's core (``reglab.swarm``; what is measured, through :mod:`reglab.lab.measure`) AND
prints the command line that does the same (``$ ...``), complete and typeable in a terminal in
the notebook's folder.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from reglab.base.settings import TOOLS_IMAGE
from reglab.engine.oneoff import one_off, run_once
from reglab.lab import picture as pictures
from reglab.lab.access import token_command
from reglab.lab.checks.failed import CheckFailed, ok
from reglab.lab.measure import (
    CacheCount,
    PullStream,
    UploadStep,
    cache_count,
    digest_from_each,
    front_name,
    metrics_command,
    pull_via,
    slot_container,
    split_upload,
)
from reglab.lab.workshop import Workshop
from reglab.registry.answers import MANIFEST_TYPES
from reglab.registry.login import Credentials, login, login_command, logout
from reglab.swarm import StaleBridge, SwarmRegistry, init_step, swarm_owned, swarm_state
from reglab.swarm.store import bucket_bytes, bucket_command


def _named(ws: Workshop) -> str:
    return f" --name {ws.name}"


def up(ws: Workshop, replicas: int = 3) -> SwarmRegistry:
    """``reglab swarm up``: the swarm (if the engine is in none), the stack, the front; return
    once every replica answers through the front. Shows what it ran."""
    swarm = SwarmRegistry(ws.engine, ws.name, ws.port, ws.workdir, replicas, ws.settings.version)
    ws.cli(f"reglab swarm up --replicas {replicas} --port {ws.port}{_named(ws)}")
    before = swarm_state(ws.engine)
    created = swarm.up()
    print("it ran:")
    if created:
        for command in init_step(ws.engine).lines:
            print(f"  {command}")
    elif swarm_owned(ws.engine):
        print("  (the swarm reglab made earlier)")
    else:
        print(f"  (this engine was in a swarm already ({before}): used, and never left)")
    print(f"  {swarm.deploy_command(ws.style)}")
    print(f"  {swarm.relay_command(ws.style)}")
    status(swarm)
    return swarm


#: Present in the engine's network namespace when its kernel runs IPVS (the routing mesh's).
IPVS_SYSCTLS = "/proc/sys/net/ipv4/vs"


def this_machine(ws: Workshop) -> tuple[int, bool]:
    """What the engine's machine has, measured: its CPUs, and whether its kernel runs IPVS,
    which Swarm's routing mesh needs (asked inside the engine's own network namespace, which is
    where the mesh would run: on Docker Desktop, its virtual machine)."""
    ws.cli("docker info --format '{{.NCPU}} CPUs'")
    cpus = int(ws.engine.info().get("NCPU") or 0)
    probe = f"test -d {IPVS_SYSCTLS} && echo IPVS: yes || echo IPVS: no"
    spec = one_off(TOOLS_IMAGE, ("sh", "-c", probe), network="host")
    ws.cli(spec.shell(ws.style))
    ipvs = run_once(ws.engine, spec, what="cannot look for IPVS").strip() == "IPVS: yes"
    print(f"{cpus} CPUs")
    print(f"IPVS: {'yes' if ipvs else 'no'}")
    return cpus, ipvs


def show_section(ws: Workshop, path: Path, first: str) -> None:
    """Print the part of a file of the stack from the line that starts with ``first`` to the
    next empty line, as ``sed`` prints it."""
    ws.cli(f"sed -n '/^{first}/,/^$/p' {ws.style.show(path)}")
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i]), len(lines))
    print("\n".join(lines[start : end + 1]))


def picture(ws: Workshop, swarm: SwarmRegistry) -> pictures.Picture:
    """Draw the stack as it runs: every task, the relay, their networks, and the secrets and
    configs each task gets."""
    return pictures.show(ws.engine, ws.workdir, stack=swarm.name, name=ws.name)


def pictured(drawn: pictures.Picture, swarm: SwarmRegistry) -> None:
    """Checkpoint: the picture has every replica, each given the registry's configuration as
    a secret where its version reads it, and the relay holding the front's port."""
    tasks = [n for n in drawn.of_kind("container") if n.label.startswith(swarm.service + "\n")]
    if len(tasks) != swarm.replicas:
        raise CheckFailed(
            f"{len(tasks)} replica(s) drawn, expected {swarm.replicas}",
            "replicas.status(swarm) says what runs; draw it again once every replica is up",
        )
    config = swarm.version.config_path
    for task in tasks:
        held = pictures.mounted(drawn, task.id.removeprefix("c:"), config) or ""
        if not held.startswith("secret "):
            raise CheckFailed(
                f"{task.id.removeprefix('c:')} has {held or 'nothing'} at {config}",
                "the stack gives the replicas registry.yml as a secret: deploy it again",
            )
    if f"p:127.0.0.1:{swarm.port}" not in drawn.nodes:
        raise CheckFailed(
            f"nothing drawn holds 127.0.0.1:{swarm.port}",
            f"the relay holds it: docker ps -a -f name={swarm.relay}",
        )
    ok(f"{len(tasks)} replicas, each with the registry's configuration as a secret at {config}")


def status(swarm: SwarmRegistry) -> None:
    """What runs, and what the front sees."""
    for service, tasks in sorted(swarm.status()["services"].items()):
        print(f"{service}: {tasks} running")
    # after wait_ready: exactly swarm.replicas, all up (a slot being emptied may still show
    # for a moment, so they are not counted again here)
    print(f"the front sees {swarm.replicas} replica(s), all up")


def log_in(ws: Workshop, swarm: SwarmRegistry, credentials: Credentials) -> None:
    """``docker login`` at the front. No CA is given to Docker: it verifies no certificate on
    127.0.0.0/8 (notebook 03); reglab's own checks, and ``curl --cacert``, do."""
    ws.cli(login_command(swarm.address, credentials.user))
    print(login(ws.engine, swarm.address, credentials))


def bucket(ws: Workshop, swarm: SwarmRegistry) -> int:
    """How many bytes the store's bucket holds, as the store counts them."""
    ws.cli(bucket_command(swarm))
    size = bucket_bytes(swarm.engine, swarm)
    print(f"bucket registry: {size:,} bytes")
    return size


def each_replica(
    ws: Workshop, swarm: SwarmRegistry, credentials: Credentials, repository: str
) -> dict[str, str]:
    """Ask every replica, one by one, which digest it serves for ``repository:latest``: with
    one token from the front's ``/auth``, which every replica accepts."""
    ca = ws.config("tls").paths.ca_cert
    ws.cli(token_command(ws, ca, swarm.realm, credentials, f"repository:{repository}:pull"))
    accept = shlex.quote(f"Accept: {MANIFEST_TYPES}")
    found = digest_from_each(swarm, credentials.as_tuple(), repository)
    for replica in found:
        ws.cli(
            f'curl -s --cacert {ws.style.show(ca)} -I -H "Authorization: Bearer $TOKEN" '
            f"-H 'X-Reglab-Use: {replica}' -H {accept} "
            f"{swarm.url}/v2/{repository}/manifests/latest "
            "| grep -i -e docker-content-digest -e x-reglab-replica"
        )
    for replica, digest in found.items():
        print(f"{replica}: {digest}")
    return found


#: The blob notebook 09 uploads in three requests: this line, this many times (what
#: ``printf 'LINE\n%.0s' $(seq N)`` writes: no pipe, so nothing ends on SIGPIPE).
UPLOAD_LINE, UPLOAD_LINES = "an upload in three requests", 2048


def upload_bytes() -> bytes:
    return f"{UPLOAD_LINE}\n".encode() * UPLOAD_LINES


def upload_commands(
    ws: Workshop,
    swarm: SwarmRegistry,
    credentials: Credentials,
    route: tuple[str, str, str],
    repository: str,
) -> list[str]:
    """The split upload as a terminal types it: a token, the blob's file, then POST, PATCH and
    PUT with ``curl``, each to the replica ``route`` names, following the ``Location`` the
    previous answer gave (``%header{...}``: curl 7.84 or later)."""
    ca = ws.config("tls").paths.ca_cert
    blob = ws.style.show(ws.workdir / "upload.bin")
    curl = f'curl -s --cacert {ws.style.show(ca)} -H "Authorization: Bearer $TOKEN"'
    uploads = f"{swarm.url}/v2/{repository}/blobs/uploads/"
    first, second, third = route
    return [
        token_command(ws, ca, swarm.realm, credentials, f"repository:{repository}:push,pull"),
        f"printf {shlex.quote(UPLOAD_LINE + chr(92) + 'n%.0s')} $(seq {UPLOAD_LINES}) > {blob}",
        f"LOCATION=$({curl} -H 'X-Reglab-Use: {first}' -X POST -o /dev/null "
        f"-w '%header{{location}}' {uploads})",
        f"LOCATION=$({curl} -H 'X-Reglab-Use: {second}' -X PATCH "
        f"-H 'Content-Type: application/octet-stream' --data-binary @{blob} -o /dev/null "
        f"-w '%header{{location}}' \"$LOCATION\")",
        f"{curl} -H 'X-Reglab-Use: {third}' -X PUT -o /dev/null -w '%{{http_code}}\\n' "
        f'"$LOCATION&digest=sha256:$(sha256sum {blob} | cut -d " " -f 1)"',
    ]


def upload_across(
    ws: Workshop,
    swarm: SwarmRegistry,
    credentials: Credentials,
    route: tuple[str, str, str],
    repository: str = "team/split",
) -> list[UploadStep]:
    """One blob uploaded in three requests, each sent to the replica ``route`` names."""
    for command in upload_commands(ws, swarm, credentials, route, repository):
        ws.cli(command)
    data = upload_bytes()
    (ws.workdir / "upload.bin").write_bytes(data)
    digest, steps = split_upload(swarm, credentials.as_tuple(), repository, data, route)
    for step in steps:
        said = f" {step.error}" if step.error else ""
        print(f"{step.request:<6} on {step.replica:<9} -> {step.status}{said}")
    if steps[-1].status == 201:
        print(f"committed: {digest}")
    return steps


def start_odd(ws: Workshop, swarm: SwarmRegistry) -> None:
    """A registry like the replicas but with another ``http.secret``, beside the stack."""
    for command in swarm.odd_commands(ws.style):
        ws.cli(command)
    swarm.start_odd()
    print(f"{swarm.odd} runs with another http.secret; the front calls it odd")


def remove_odd(ws: Workshop, swarm: SwarmRegistry) -> None:
    ws.cli(f"docker rm -f -v {swarm.odd}")  # -v: and the image's anonymous volume
    swarm.remove_odd()


def scale(ws: Workshop, swarm: SwarmRegistry, replicas: int) -> None:
    """``docker service scale``; return when the front sees exactly that many up."""
    ws.cli(f"docker service scale {swarm.service}={replicas}")
    swarm.scale(replicas)
    status(swarm)


def kill_during_pulls(
    ws: Workshop, swarm: SwarmRegistry, credentials: Credentials, repository: str
) -> PullStream:
    """Pull ``repository`` over and over while one replica is killed; return the counts."""
    with PullStream(swarm, credentials.as_tuple(), repository) as stream:
        stream.wait_for(100)
        label = f"com.docker.swarm.service.name={swarm.service}"
        ws.cli(f"docker kill $(docker ps -q -f label={label} | head -n 1)")
        swarm.kill_replica()
        print(f"killed one replica of {swarm.service}; Swarm starts another")
        swarm.wait_ready(swarm.replicas)  # Swarm starts another in its place
        stream.wait_for(stream.requests + 100)
    _counts(stream)
    return stream


def update_during_pulls(
    ws: Workshop, swarm: SwarmRegistry, credentials: Credentials, repository: str
) -> PullStream:
    """Pull ``repository`` over and over during a rolling update of every replica."""
    with PullStream(swarm, credentials.as_tuple(), repository) as stream:
        stream.wait_for(100)
        ws.cli(f"docker service update --force {swarm.service}")
        swarm.rolling_update()
        stream.wait_for(stream.requests + 100)
    print(f"every replica replaced, one at a time; the front sees {len(swarm.up_replicas())} up")
    _counts(stream)
    return stream


def _counts(stream: PullStream) -> None:
    print(f"{stream.requests} requests (manifests and blobs): {len(stream.failed)} failed")
    if stream.resumed:  # a blob under way when its replica died: no front can replay that
        print(
            f"{stream.resumed} blob download(s) broke off with their replica and were resumed "
            "with a Range request, as the Docker engine does"
        )
    for error in sorted(set(stream.failed))[:5]:
        print(f"  failed: {error}")


def cache_across(
    ws: Workshop, swarm: SwarmRegistry, credentials: Credentials, repository: str
) -> list[CacheCount]:
    """Pull ``repository`` from the replica in slot 1, then from the one in slot 2; return
    what each one's cache counters rose by (registry 3's metrics, read before and after)."""
    rose = []
    for slot in (1, 2):
        container = slot_container(swarm, slot)
        replica = front_name(swarm, container)
        ws.cli(metrics_command(swarm, slot))
        before = cache_count(swarm, container)
        blobs = pull_via(swarm, credentials.as_tuple(), repository, replica)
        count = cache_count(swarm, container) - before
        rose.append(count)
        print(
            f"replica {slot} served {repository} (manifest and {blobs} blobs): "
            f"{count.lookups} cache lookups, {count.hits} answered by Redis"
        )
    return rose


def cache_shared(counts: list[CacheCount]) -> None:
    """Checkpoint: the first replica missed in the cache (it was empty), and the second found
    every descriptor there, though it had looked up none of them before."""
    first, second = counts
    if first.lookups == 0 or second.lookups == 0:
        raise CheckFailed(
            "a replica counted no cache lookup",
            "registry.yml needs storage.cache.blobdescriptor: redis",
        )
    if first.hits == first.lookups:
        raise CheckFailed(
            "the first replica found everything in the cache: it was not empty",
            "run the cell right after the stack was deployed again (Redis keeps nothing)",
        )
    if second.hits != second.lookups:
        raise CheckFailed(
            f"the second replica found {second.hits} of {second.lookups} in the cache",
            "every replica needs the same redis.addrs (registry.yml)",
        )
    missed = first.lookups - first.hits
    ok(
        f"{missed} lookup(s) missed on the first replica and went to the store; the second "
        f"found all {second.lookups} in Redis: one cache for every replica"
    )


def redeploy(ws: Workshop, swarm: SwarmRegistry) -> None:
    """Remove the whole stack and its relay, then deploy it again: the volume stays."""
    for command in swarm.down_commands(purge=False):
        ws.cli(command)
    swarm.down(leave=False)
    print(f"stack {swarm.name} removed; volume {swarm.volume} kept")
    swarm.deploy_step(swarm.write_files(), ws.style).run(ws.cli)
    ws.cli(swarm.relay_command(ws.style))
    swarm.start_relay()
    ws.cli(swarm.wait_command(ws.style))
    swarm.wait_ready(swarm.replicas)
    status(swarm)


def down(ws: Workshop, swarm: SwarmRegistry, purge: bool = True) -> None:
    """Log out, remove everything this notebook started; leave the swarm if reglab made it."""
    ws.cli(f"docker logout {swarm.address}")
    logout(ws.engine, swarm.address)
    ws.cli(f"reglab swarm down{' --purge' if purge else ''}{_named(ws)}")
    try:
        left, note = swarm.down(purge=purge), ""
    except StaleBridge as exc:  # left, and the engine keeps an empty docker_gwbridge
        left, note = True, f"\n{exc}"
    print(("left the swarm reglab made" if left else "the engine's swarm is as it was") + note)
