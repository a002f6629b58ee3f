"""Checkpoints of notebook 12: attachments as the registry serves them, and what came
through the signature gate."""

from __future__ import annotations

from pathlib import Path

import docker

from reglab.base.errors import ClientError
from reglab.engine.transfer import exists
from reglab.lab.checks.failed import CheckFailed, ok
from reglab.registry import attach
from reglab.registry.container import Registry


def attached(registry: Registry, repository: str, digest: str, subject: str, file: Path) -> None:
    """The registry serves the attachment ``digest``: its ``subject`` is the image's digest
    and its file is the very bytes of ``file``."""
    with registry.client() as api:
        try:
            manifest = api.manifest(repository, digest)
        except ClientError as exc:
            raise CheckFailed(f"the registry does not serve {digest}: {exc.problem}",
                              "run the attach cell again") from None  # fmt: skip
        named = (manifest.get("subject") or {}).get("digest")
        if named != subject:
            raise CheckFailed(f"{digest} is about {named}, not the image {subject}",
                              "attach it to the image's tag again")  # fmt: skip
        if attach.fetch(api, repository, digest) != Path(file).read_bytes():
            raise CheckFailed(f"{digest} holds other bytes than {Path(file).name}",
                              "attach the file again")  # fmt: skip
    ok(f"{digest} is attached to {subject}, and holds {Path(file).name} byte for byte")


def collected(registry: Registry, repository: str, kept: dict[str, Path], gone: list[str]) -> None:
    """After a collection: each attachment in ``kept`` is still served with its file's bytes,
    and each one in ``gone`` answers 404."""
    with registry.client() as api:
        for digest, file in kept.items():
            try:
                same = attach.fetch(api, repository, digest) == Path(file).read_bytes()
            except ClientError as exc:
                raise CheckFailed(
                    f"{digest} ({Path(file).name}) is gone: {exc.problem}",
                    "its image is live: collect with reglab, which keeps it",
                ) from None
            if not same:
                raise CheckFailed(f"{digest} holds other bytes", "attach it again")
        for digest in gone:
            try:
                api.manifest(repository, digest)
            except ClientError as exc:
                if exc.status == 404:
                    continue
                raise
            raise CheckFailed(
                f"{digest} is still served, though its image is gone",
                "collect with reglab (it deletes such attachments first)",
            )
    ok(f"kept {len(kept)} attachment(s) of a live image; {len(gone)} orphan(s) answer 404")


def pulled_through(engine: docker.DockerClient, address: str, ref: str, digest: str) -> None:
    """The engine pulled ``ADDRESS/ref`` (through the gate) and has it with ``digest``."""
    full = f"{address}/{ref}"
    if not exists(engine, full):
        raise CheckFailed(f"the engine has no {full}", "run the pull cell above")
    repository = ref.rsplit(":", 1)[0]
    found = engine.images.get(full).attrs.get("RepoDigests") or []
    if f"{address}/{repository}@{digest}" not in found:
        raise CheckFailed(f"{full} has {found}, not {digest}", "pull it again through the gate")
    ok(f"the engine pulled {full} through the gate: digest {digest}")


__all__ = ["attached", "collected", "pulled_through"]
