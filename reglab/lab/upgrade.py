"""Notebook 10: upgrading the learner's 2.8 registry to 3, and back, each step with its command.

from reglab.lab import upgrade
found = upgrade.check(ws)                       # $ reglab upgrade --check --name NAME
file = upgrade.translate(ws)                    # $ reglab upgrade --name NAME --write ...
served = upgrade.inventory(ws, reg)             # every manifest and blob 2.8 serves
reg = upgrade.up_with_file(ws, file)            # registry:3 on the same registry-data
upgrade.serves_all(reg, served)                 # checkpoint: every digest, blob by blob
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import yaml

from reglab.base.errors import ClientError
from reglab.base.files import write_atomic
from reglab.base.labels import owner_labels
from reglab.base.versions import V2, V3
from reglab.base.wait import NotYet, poll
from reglab.engine.spec import ContainerSpec, Mount
from reglab.images import build as images
from reglab.lab.checks.failed import CheckFailed, ok
from reglab.lab.display import for_display
from reglab.lab.exercises.verdict import verdict
from reglab.lab.workshop import Workshop
from reglab.registry.answers import MANIFEST_TYPES
from reglab.registry.client import RegistryClient
from reglab.registry.container import Registry
from reglab.registry.inventory import Inventory, take
from reglab.registry.upgrade import Finding, report, write_translation
from reglab.registry.upgrade import check as check_source
from reglab.registry.v2config import Source, from_container, parse_yaml
from reglab.registry.v3keys import unknown_keys

#: The notebook's files, in the working folder.
FOLDER = "upgrade"
#: The exercise's 2.8 configuration: notebook 09's replicas as 2.8 ran them, trimmed.
SAMPLE = """\
version: 0.1
log:
  level: info
storage:
  s3:
    region: us-east-1
    regionendpoint: http://s3:8333
    bucket: registry
  cache:
    blobdescriptor: redis
  delete:
    enabled: true
redis:
  addr: redis:6379
  pool:
    maxidle: 16
http:
  addr: :5000
  secret: one-secret-for-every-replica
compatibility:
  schema1:
    enabled: true
"""


def setup() -> Workshop:
    """:meth:`Workshop.setup`, and both registry images: this notebook runs 2.8 and 3."""
    ws = Workshop.setup()
    how = images.ensure_images(
        ws.engine, "foundation", registries=(V2.major, V3.major), offline=ws.settings.offline,
        progress=for_display("images"), notice=print,
    )  # fmt: skip
    print(f"images {V2.image} and {V3.image}: {how[V2.image]}, {how[V3.image]}")
    return ws


def _folder(ws: Workshop) -> Path:
    folder = ws.workdir / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def check(ws: Workshop, config: Path | None = None) -> list[Finding]:
    """``reglab upgrade --check`` on the running registry (or a file): its lines, its findings."""
    if config is None:
        ws.cli(f"reglab upgrade --check --name {ws.name}")
        container = ws.engine.containers.get(ws.name)
        source = from_container(ws.name, container.attrs)
    else:
        ws.cli(f"reglab upgrade --check --config {ws.style.show(config)}")
        source = Source(ws.style.show(config), parse_yaml(config.read_text(), config.name))
    found = check_source(source)
    if any(f.blocking for f in found):  # what the command's exit status 1 says
        print("refused: registry 3 would not read it as 2.8 did (exit status 1)")
    for line in report(source.label, found):
        print(line)
    return found


def translate(ws: Workshop, name: str = "config-v3.yml") -> Path:
    """``reglab upgrade --write``: the running 2.8 registry's configuration for registry 3."""
    path = _folder(ws) / name
    ws.cli(f"reglab upgrade --name {ws.name} --write {ws.style.show(path)}")
    source = from_container(ws.name, ws.engine.containers.get(ws.name).attrs)
    for change in write_translation(source, path).changes:
        print(f"{source.label}: {change}")
    ws.cli(f"cat {ws.style.show(path)}")
    print(path.read_text(), end="")
    return path


def file_spec(ws: Workshop, file: Path) -> ContainerSpec:
    """registry:3 of the persistent stage, its configuration the file alone (at v3's path)."""
    base = ws.config("persistent", version=V3).spec()
    mount = Mount(file, V3.config_path, read_only=True)
    return replace(base, mounts=(*base.mounts, mount), env={})


def up_with_file(ws: Workshop, file: Path) -> Registry:
    """Replace the registry by registry:3 on the same ``registry-data``, configured by ``file``."""
    config = ws.config("persistent", version=V3)
    registry = Registry(config, ws.engine)
    if registry.container is not None:
        ws.cli(f"docker rm -f -v {ws.name}")
        registry.remove()
    spec = file_spec(ws, file)
    ws.cli(spec.shell(ws.style))
    ws.engine.containers.run(**spec.run_kwargs())
    registry.wait_ready()
    ws.registry = registry
    print(f"registry {ws.name} ({V3.image}) answers at {registry.url}")
    return registry


def inventory(ws: Workshop, registry: Registry) -> Inventory:
    """Each repository, each tag, its manifest and the blobs it names; written to
    ``upgrade/manifests.txt`` and ``upgrade/blobs.txt`` for the shell loops that check them."""
    folder = _folder(ws)
    ws.cli(f"curl -s {registry.url}/v2/_catalog")
    ws.cli(f"python -m reglab.registry.inventory {registry.url} {ws.style.show(folder)}")
    with registry.client() as api:
        found = take(api)
    lists = [ws.style.show(path) for path in found.write(folder)]
    print(f"{len(found.manifests)} manifests and {len(found.blobs)} blobs served, listed in "
          f"{lists[0]} and {lists[1]}")  # fmt: skip
    return found


def verify_commands(ws: Workshop, registry: Registry) -> None:
    """The shell's way to do what :func:`serves_all` does: a HEAD per manifest, a GET per blob
    hashed and compared with its digest."""
    folder = ws.workdir / FOLDER
    url = registry.url
    ws.cli(
        'while read -r ref; do curl -s -o /dev/null -w "%{http_code} $ref\\n" -I '
        f"-H 'Accept: {MANIFEST_TYPES}' \"{url}/v2/${{ref%@*}}/manifests/${{ref#*@}}\"; "
        f"done < {ws.style.show(folder / 'manifests.txt')}"
    )
    ws.cli(
        'while read -r ref; do echo "$(curl -s "' + url + '/v2/${ref%@*}/blobs/${ref#*@}" '
        '| sha256sum | cut -c1-64) ${ref#*@sha256:}"; done < '
        f"{ws.style.show(folder / 'blobs.txt')} "
        "| awk '$1 != $2 {bad++} END {print bad+0, \"wrong\"}'"
    )


def serves_all(ws: Workshop, registry: Registry, served: Inventory) -> None:
    """Checkpoint: ``registry`` serves every manifest of ``served`` (same digest) and every blob
    (downloaded whole, its SHA-256 its digest)."""
    verify_commands(ws, registry)
    with registry.client() as api:
        for ref in served.manifests:
            repository, digest = ref.split("@")
            if _answer(ref, api.manifest_digest, repository, digest) != digest:
                raise CheckFailed(f"{ref} answers another digest", "is it the same registry-data?")
        for ref in served.blobs:
            repository, digest = ref.split("@")
            if _answer(ref, partial(_sha256, api), repository, digest) != digest:
                raise CheckFailed(f"{ref} does not hash to its digest", "push the image again")
    ok(f"{registry.config.image} serves every digest of the list: each manifest, each blob whole")


def _sha256(api: RegistryClient, repository: str, digest: str) -> str:
    sha = hashlib.sha256()
    response = api.request("GET", f"/v2/{repository}/blobs/{digest}", stream=True)
    for chunk in response.iter_content(1 << 20):
        sha.update(chunk)
    return f"sha256:{sha.hexdigest()}"


def _answer(ref: str, ask: Callable[[str, str], str], repository: str, digest: str) -> str:
    """What ``ask`` finds; a refusal (404: not served) fails the checkpoint."""
    try:
        return ask(repository, digest)
    except ClientError as exc:
        raise CheckFailed(
            f"{ref} is not served: {exc.problem}", "is it the same registry-data?"
        ) from None


def redis_panic(ws: Workshop, translated: Path) -> str:
    """registry:3 on an untranslated Redis cache (2.8's ``redis.addr``): it exits at start.
    Returns its ``panic:`` line."""
    file = _folder(ws) / "redis-addr.yml"
    # The 2.8 way to name the cache, written as a learner would: sed, then printf.
    shown, source = ws.style.show(file), ws.style.show(translated)
    ws.cli(f"sed 's/blobdescriptor: inmemory/blobdescriptor: redis/' {source} > {shown}")
    ws.cli(f"printf 'redis:\\n  addr: redis:6379\\n' >> {shown}")
    text = translated.read_text().replace("blobdescriptor: inmemory", "blobdescriptor: redis")
    write_atomic(file, (text + "redis:\n  addr: redis:6379\n").encode())
    name = f"{ws.name}-redis-addr"
    # Only the file: the registry never gets as far as its storage.
    mount = Mount(file, V3.config_path, read_only=True)
    spec = ContainerSpec(V3.image, name=name, labels=owner_labels(), mounts=(mount,))
    _remove(ws, name)  # a run interrupted before its clean-up (the finally below)
    ws.cli(spec.shell(ws.style))
    container = ws.engine.containers.run(**spec.run_kwargs())

    def exited() -> str | None:
        container.reload()
        if container.status not in ("exited", "dead"):
            raise NotYet(f"the container is {container.status}")
        return str(container.status)

    try:
        ws.cli(f"docker wait {name}")
        poll(f"{name} to exit", exited, timeout=30, interval=0.2)
        ws.cli(f"docker logs {name} 2>&1 | grep '^panic'")
        logs = bytes(container.logs()).decode(errors="replace").splitlines()
        line = next(
            (entry for entry in logs if entry.startswith("panic")), logs[-1] if logs else ""
        )
        print(line)
    finally:
        ws.cli(f"docker rm -f -v {name}")
        _remove(ws, name)
    return line


def _remove(ws: Workshop, name: str) -> None:
    for container in ws.engine.containers.list(all=True, filters={"name": f"^{name}$"}):
        container.remove(force=True, v=True)  # and the volume the image declares


def ignored_keys(answer: object) -> bool:
    """Exercise: which keys of :data:`SAMPLE` does registry 3 ignore in silence?"""
    truth = set(unknown_keys(yaml.safe_load(SAMPLE)))
    given = {str(k).strip() for k in answer} if isinstance(answer, (set, list, tuple)) else set()
    missed, extra = truth - given, given - truth
    hint = (
        "give a set of dotted keys, such as {'log.level'}"
        if not given
        else f"{len(missed)} ignored key(s) missing, {len(extra)} that v3 reads after all; "
        "compare each section with what v3 reads (the check lists them)"
    )
    return verdict(not missed and not extra, f"v3 ignores exactly {sorted(truth)}", hint)


__all__ = [
    "SAMPLE", "Inventory", "check", "file_spec", "ignored_keys", "inventory", "redis_panic",
    "serves_all", "setup", "translate", "up_with_file", "verify_commands",
]  # fmt: skip
