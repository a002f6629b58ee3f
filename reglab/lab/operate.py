"""Day two in the notebooks (05-06): deleting and collecting, a mirror (07's events are in
reglab.lab.listening).

Like :class:`~reglab.lab.workshop.Workshop`'s methods, each function does the work through
reglab's core AND prints the command line that does the same (``$ ...``), complete and
typeable in a terminal in the notebook's folder. The logic lives in the core modules
(``gc``, ``disk``, ``mirror``, ``replicate`` and ``events`` of ``reglab.registry``); these
functions only show it.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil

from reglab.base.errors import ImageError, ReglabError, docker_errors
from reglab.base.settings import TOOLS_IMAGE
from reglab.base.versions import registry_version
from reglab.images.context import BuildContext
from reglab.lab.workshop import Workshop
from reglab.registry import gc, replicate
from reglab.registry.answers import MANIFEST_TYPES
from reglab.registry.client import RegistryClient
from reglab.registry.config import RegistryConfig, Stage
from reglab.registry.container import Registry
from reglab.registry.disk import SmallDisk, file_bytes_script, volume_file_bytes_spec

#: The repository (and local image name) of notebook 05's versions.
APP = "reglab-app"
MIB = 1 << 20


# --- 05: a small disk, versions, delete, collect ---------------------------------------------


def small_disk(ws: Workshop, size_mb: int = 24) -> SmallDisk:
    """A tmpfs volume of ``size_mb`` MiB (and its keeper) for the registry's storage."""
    disk = SmallDisk(f"{ws.name}-disk", size_mb)
    if Registry(ws.config("local"), ws.engine).container is not None:  # it may use the disk
        ws.cli(f"docker rm -f -v {ws.name}")
        Registry(ws.config("local"), ws.engine).remove()
    for command in disk.commands():
        ws.cli(command)
    disk.create(ws.engine)
    used, size = disk.usage(ws.engine)
    print(f"volume {disk.name}: {size / MIB:.0f} MiB, held mounted by {disk.keeper}")
    return disk


def build_version(ws: Workshop, version: int, size_mb: int) -> str:
    """Build ``reglab-app:VERSION``: reglab-tools plus one layer of ``size_mb`` MiB of random
    bytes (random, so no compression shrinks it). Every version shares reglab-tools' layer."""
    folder = ws.workdir / "app"
    name = f"v{version}.bin"
    dockerfile = f"FROM {TOOLS_IMAGE}\nCOPY {name} /data/{name}\n"
    ws.cli(f"mkdir -p {ws.style.show(folder)}")
    ws.cli(f"head -c {size_mb * MIB} /dev/urandom > {ws.style.show(folder / name)}")
    shown = dockerfile.replace("\n", "\\n")
    ws.cli(f"printf '{shown}' | docker build -q -t {APP}:{version} -f - {ws.style.show(folder)}")
    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size_mb * MIB)
    (folder / name).write_bytes(data)
    context = BuildContext(dockerfile.encode())
    context.add_bytes(data, name)
    ref = context.build(ws.engine, f"{APP}:{version}")
    print(f"built {ref}: {TOOLS_IMAGE} + a layer of {size_mb} MiB")
    return ref


def push_version(ws: Workshop, registry: Registry, version: int) -> str:
    """Tag ``reglab-app:VERSION`` into the registry and push it; return the digest."""
    ref = registry.ref(APP, str(version))
    ws.tag(f"{APP}:{version}", ref)
    return ws.push(ref)


def push_to_full_disk(ws: Workshop, registry: Registry, version: int) -> str | None:
    """Push a version's new layer once, through the HTTP API, and show the registry's answer.

    ``docker push`` tries each layer five times, over about a minute, then prints only
    ``received unexpected HTTP status: 500``; one upload shows the registry's own error.
    Returns that error (None if the upload worked)."""
    ref = registry.ref(APP, str(version))
    ws.tag(f"{APP}:{version}", ref)
    ws.cli(f"docker push {ref}")
    data = (ws.workdir / "app" / f"v{version}.bin").read_bytes()
    try:
        with registry.client() as api:
            api.upload_blob(APP, data)
    except ReglabError as exc:
        print(f"refused: {exc.problem}")
        return exc.problem
    print(f"the {len(data) / MIB:.0f} MiB layer was stored")
    return None


def disk_usage(ws: Workshop, disk: SmallDisk) -> tuple[int, int]:
    """How full the small disk is (``df`` in a one-off container)."""
    ws.cli(disk.usage_spec().shell(ws.style))
    used, size = disk.usage(ws.engine)
    print(f"{disk.name}: {used / MIB:.1f} of {size / MIB:.0f} MiB used ({used * 100 // size}%)")
    return used, size


def blob_bytes(ws: Workshop, registry: Registry) -> int:
    """Bytes of every blob the registry stores (what garbage collection can free)."""
    source = registry.data_source()
    if isinstance(source, str):
        ws.cli(volume_file_bytes_spec(source, gc.BLOBS).shell(ws.style))
    else:  # the same sum, of the files in registry-data
        ws.cli(file_bytes_script(ws.style.show(registry.config.paths.storage / "blobs")))
    total = gc.stored_blob_bytes(registry)
    print(f"blobs stored: {total:,} bytes")
    return total


def _accept(ws: Workshop) -> str:
    """``-H "$ACCEPT"``: the manifest types asked for, set once as a shell variable."""
    header = f"Accept: {MANIFEST_TYPES}"
    if header not in ws.shell_variables:
        ws.cli(f"ACCEPT={shlex.quote(header)}")
        ws.shell_variables[header] = "ACCEPT"
    return f'-H "{header}"'


def _digest_line(ws: Workshop, registry: Registry, repository: str, tag: str) -> str:
    return (
        f"DIGEST=$(curl -sI {_accept(ws)} {registry.url}/v2/{repository}/manifests/{tag} "
        "| sed -n 's/^docker-content-digest: //Ip' | tr -d '\\r')"
    )


def ask(ws: Workshop, registry: Registry, method: str, path: str) -> str:
    """Send one request that the registry may refuse, and show its answer as it is:
    ``STATUS: BODY``. Returns that line."""
    ws.cli(f"curl -s -X {method} {registry.url}{path}")
    with registry.client() as api:
        response = api.answer(method, path)
    answer = f"{response.status_code}: {response.text.strip()}"
    print(answer)
    return answer


def delete_by_tag(ws: Workshop, registry: Registry, repository: str, tag: str) -> str:
    """``DELETE /v2/REPO/manifests/TAG``, and the tags left: registry 3 removes that one tag
    (202, the manifest stays); 2.8 has no tag delete and refuses it (400 DIGEST_INVALID)."""
    answer = ask(ws, registry, "DELETE", f"/v2/{repository}/manifests/{tag}")
    ask(ws, registry, "GET", f"/v2/{repository}/tags/list")
    return answer


def tags_of(ws: Workshop, registry: Registry, repository: str, tag: str) -> list[str]:
    """The tags that point to the same image as ``repository:tag``."""
    ws.cli(_digest_line(ws, registry, repository, tag))
    with registry.client() as api:
        digest = api.manifest_digest(repository, tag)
        ws.shell_variables[digest] = "DIGEST"
        every = api.tags(repository)
        same = gc.tags_of(api, repository, digest)
    manifests = f"{registry.url}/v2/{repository}/manifests"
    ws.cli(
        f"for t in {' '.join(every)}; do curl -sI {_accept(ws)} {manifests}/$t "
        '| grep -qi "docker-content-digest: $DIGEST" && echo $t; done'
    )
    print(f"{repository}:{tag} is {digest}; its tags: {', '.join(same)}")
    return same


def delete(ws: Workshop, registry: Registry, repository: str, tag: str) -> gc.Deleted:
    """Delete what ``repository:tag`` points to, by digest; every tag of it goes."""
    ws.cli(_digest_line(ws, registry, repository, tag))
    with registry.client() as api:
        deleted = gc.delete_image(api, repository, tag)
    ws.shell_variables[deleted.digest] = "DIGEST"
    ws.cli(f'curl -fsS -X DELETE "{registry.url}/v2/{repository}/manifests/$DIGEST"')
    print(f"deleted {repository}@{deleted.digest}: 202 Accepted")
    print(f"tags that went with it: {', '.join(deleted.tags)}")
    return deleted


def collect(
    ws: Workshop,
    registry: Registry,
    dry_run: bool = False,
    delete_untagged: bool = False,
    watch: list[tuple[str, str]] | None = None,
) -> gc.Collection:
    """Garbage collection, safely: read-only registry, the collector, read-write again."""
    config = registry.config
    collector = gc.collector_spec(registry, dry_run, delete_untagged).shell(ws.style)
    heads = [_head_line(ws, registry, repository, digest) for repository, digest in watch or []]
    if not dry_run:
        read_only = dataclasses.replace(config, read_only=True)
        ws.cli(f"docker rm -f {config.name}")
        ws.cli(read_only.docker_run_command(ws.style))
    for line in heads:
        ws.cli(line)
    ws.cli(collector)
    for line in heads:
        ws.cli(line)
    if not dry_run:
        ws.cli(f"docker rm -f {config.name}")
        ws.cli(config.docker_run_command(ws.style))
    for line in heads:
        ws.cli(line)
    done = gc.collect(registry, dry_run, delete_untagged, watch or [])
    verb = "would" if dry_run else "did"
    if done.orphans:  # attachments whose image is gone: deleted first, by reglab
        print(
            f"attachments whose image is gone, deleted before the collection: {len(done.orphans)}"
        )
        for digest in done.orphans:
            print(f"  {digest}")
    if done.manifests:
        print(f"the collector {verb} unlink {len(done.manifests)} untagged manifest(s)")
        for digest in done.manifests:
            print(f"  {digest}")
    print(f"the collector {verb} delete {len(done.eligible)} blob(s)")
    for digest in done.eligible:
        print(f"  {digest}")
    if not dry_run:
        print(
            f"blobs stored: before {done.before:,} bytes, after {done.after:,}, "
            f"reclaimed {done.reclaimed:,}"
        )
    for digest, (before, swept, restarted) in done.watched.items():
        print(
            f"HEAD {digest}: {before} before the sweep, {swept} after it (the same "
            f"process), {restarted} after the restart"
        )
    return done


def _head_line(ws: Workshop, registry: Registry, repository: str, digest: str) -> str:
    """``curl`` printing the status of a HEAD for one blob, its digest as ``$BLOB``."""
    if digest not in ws.shell_variables:
        ws.cli(f"BLOB={digest}")
        ws.shell_variables[digest] = "BLOB"
    url = f"{registry.url}/v2/{repository}/blobs/{digest}"
    return f"curl -s -o /dev/null -I -w '%{{http_code}}\\n' {url}"


def only_in(api: RegistryClient, repository: str, tag: str, other: str) -> dict[str, int]:
    """The blobs (digest: bytes) of ``repository:tag`` that ``other`` does not use, with the
    manifest itself (stored as a blob too): what deleting ``tag`` can free."""
    mine, theirs = (api.manifest(repository, t) for t in (tag, other))
    used = {b["digest"] for b in [theirs["config"], *theirs["layers"]]}
    blobs = {b["digest"]: int(b["size"]) for b in [mine["config"], *mine["layers"]]}
    response = api.request(
        "GET", f"/v2/{repository}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES}
    )
    blobs[response.headers["Docker-Content-Digest"]] = len(response.content)
    return {d: size for d, size in blobs.items() if d not in used}


def remove_disk(ws: Workshop, disk: SmallDisk) -> None:
    for command in disk.remove_commands():
        ws.cli(command)
    disk.remove(ws.engine)
    print(f"volume {disk.name} removed: it lived in memory, and what it held is gone")


def remove_versions(ws: Workshop) -> None:
    """Remove the local ``reglab-app`` images notebook 05 built, by ID: with every name and
    digest they got (moving tag 2 left version 2 with a digest of the registry but no tag of
    it, which ``docker rmi NAME`` would leave behind)."""
    ws.cli(f"docker rmi -f $(docker images -q {APP})")
    with docker_errors(f"cannot remove the {APP} images", error=ImageError):
        for image in ws.engine.images.list(name=APP):
            ws.engine.images.remove(image.id, force=True)
    ws.cli(f"rm -rf {ws.style.show(ws.workdir / 'app')}")  # the versions' random layers
    shutil.rmtree(ws.workdir / "app", ignore_errors=True)


# --- 06: a mirror, and skopeo -----------------------------------------------------------------


def fetch(ws: Workshop, registry: Registry, repository: str, into: str) -> str:
    """Fetch every blob of ``repository:latest`` from ``registry`` with skopeo, into a folder
    (a client with nothing cached, unlike the Docker engine); return the digest."""
    target = ws.workdir / into
    command = [
        "skopeo", "copy", "--src-tls-verify=false",
        f"docker://{registry.ref(repository)}", f"dir:{target}",
    ]  # fmt: skip
    ws.cli(" ".join([*command[:-1], f"dir:{ws.style.show(target)}"]))
    target.parent.mkdir(parents=True, exist_ok=True)
    replicate.run(command)
    digest = replicate.digest(registry.ref(repository))
    print(f"fetched {registry.ref(repository)}: digest {digest}")
    return digest


def blob_requests(ws: Workshop, registry: Registry, repository: str) -> int:
    """How many blob GETs the registry's access log shows for ``repository`` (not printed:
    how many a mirror makes depends on its timing; compare two counts instead). Access-log
    lines only (``] "GET ...``): registry 3's debug log names each request again, seconds
    later, in its trace spans (``"Name":"GET /v2/...``)."""
    pattern = f'] "GET /v2/{repository}/blobs/'
    ws.cli(f"docker logs {registry.config.name} 2>&1 | grep -cF {shlex.quote(pattern)}")
    return sum(pattern in line for line in registry.logs(tail=100_000).splitlines())


def stop(ws: Workshop, registry: Registry) -> None:
    ws.cli(f"docker stop {registry.config.name}")
    container = registry.container
    if container is not None:
        container.stop(timeout=10)
    print(f"{registry.config.name} stopped")


def start(ws: Workshop, registry: Registry) -> None:
    ws.cli(f"docker start {registry.config.name}")
    container = registry.container
    if container is not None:
        container.start()
    registry.wait_ready()
    print(f"{registry.config.name} answers again")


def sync(ws: Workshop, source: Registry, repository: str, destination: Registry) -> str:
    """Copy every tag of ``repository`` from one registry to another with ``skopeo sync``;
    return the destination's digest of ``repository:latest``."""
    command = replicate.sync_command(source.address, repository, destination.address)
    ws.cli(replicate.shown(command))
    replicate.run(command)
    ws.cli(replicate.shown(replicate.inspect_command(destination.ref(repository))))
    digest = replicate.digest(destination.ref(repository))
    print(f"{destination.ref(repository)}: digest {digest}")
    return digest


def start_other(ws: Workshop, suffix: str, port: int, version: str | None = None) -> Registry:
    """A second plain registry of the workshop (persistent, its own folder, name and port), of
    ``version`` ("3" or "2"; the workshop's by default)."""
    config = RegistryConfig(
        stage=Stage.PERSISTENT,
        port=port,
        workdir=ws.workdir / suffix,
        name=f"{ws.name}-{suffix}",
        version=registry_version(version) if version else ws.settings.version,
    )
    for command in config.folder_commands(ws.style):
        ws.cli(command)
    ws.cli(config.docker_run_command(ws.style))
    registry = Registry(config, ws.engine).start()
    print(f"registry {config.name} answers at {registry.url}")
    return registry


def remove(ws: Workshop, registry: Registry) -> None:
    ws.cli(f"docker rm -f -v {registry.config.name}")
    registry.remove()
