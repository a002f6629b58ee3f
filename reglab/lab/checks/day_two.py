"""Checkpoints of notebooks 05 to 08: running a registry (garbage collection, a mirror, its
events) and token authentication."""

from __future__ import annotations

from collections.abc import Iterable

from reglab.base.errors import ClientError
from reglab.lab.checks.failed import CheckFailed, ok
from reglab.registry.container import Registry
from reglab.registry.endpoint import Endpoint
from reglab.registry.events import Listener
from reglab.registry.gc import Collection
from reglab.registry.login import Credentials


def images_intact(registry: Endpoint, images: dict[str, str]) -> None:
    """Each ``REPO:TAG`` in ``images`` still has its digest, and every blob of it downloads
    and hashes to its digest (a damaged store would fail here)."""
    with registry.client() as api:
        for ref, digest in images.items():
            repository, _, tag = ref.rpartition(":")
            try:
                served = api.manifest_digest(repository, tag)
                size = api.verify_image(repository, tag)
            except ClientError as exc:
                raise CheckFailed(
                    f"{ref} cannot be read back: {exc.problem}", "see 'docker logs' of the registry"
                ) from None
            if served != digest:
                raise CheckFailed(f"{ref} is {served} now, not {digest}", "push it again")
            ok(f"{ref}: digest unchanged, every blob hashes right ({size:,} bytes)")


def reclaimed(done: Collection, expected: dict[str, int]) -> None:
    """Garbage collection freed exactly the blobs in ``expected`` (digest: bytes)."""
    want = sum(expected.values())
    if set(done.eligible) != set(expected) or done.reclaimed != want:
        raise CheckFailed(
            f"the collector deleted {len(done.eligible)} blob(s), {done.reclaimed:,} bytes; "
            f"expected {len(expected)}, {want:,} bytes",
            "delete the version first (its manifest), then collect without --dry-run",
        )
    ok(f"reclaimed {want:,} bytes: exactly the {len(expected)} blobs only the deleted version used")


def blobs_gone(registry: Endpoint, repository: str, digests: Iterable[str]) -> None:
    """The registry answers 404 for each of these blobs."""
    with registry.client() as api:
        answers = {d: api.blob_status(repository, d) for d in digests}
    alive = [d for d, status in answers.items() if status != 404]
    if alive:
        raise CheckFailed(
            f"{len(alive)} deleted blob(s) still answer {answers[alive[0]]}",
            "restart the registry after collecting (its cache still knows them)",
        )
    ok(f"all {len(answers)} deleted blobs answer 404")


def refused_for(error: str | None, expected: str, by: str = "the registry") -> None:
    """An operation that should have failed did, with ``expected`` in the words of ``by``
    (the registry; a gate in front of it; a client's own policy)."""
    if error is None or expected not in error:
        raise CheckFailed(
            f"expected a refusal with {expected!r}, got {error!r}",
            "run the cells above in order, from the top",
        )
    ok(f"refused by {by}: {expected}")


def mirror_serves(mirror: Endpoint, upstream_digest: str, repository: str = "hello-world") -> None:
    """The mirror serves ``repository:latest`` with the upstream's digest, every blob intact."""
    with mirror.client() as api:
        try:
            digest = api.manifest_digest(repository)
            api.verify_image(repository)
        except ClientError as exc:
            raise CheckFailed(
                f"the mirror does not serve {repository}: {exc.problem}",
                "pull it through the mirror while the upstream answers",
            ) from None
    if digest != upstream_digest:
        raise CheckFailed(
            f"the mirror serves {digest}, the upstream {upstream_digest}",
            "the upstream changed: pull through the mirror again",
        )
    ok(f"the mirror serves {repository}:latest with the upstream's digest {digest}")


def events_exactly_once(listener: Listener, expected: list[tuple[str, str, str]]) -> None:
    """Each (action, repository, digest) arrived as exactly one event, delivered once."""
    for action, repository, digest in expected:
        found = [
            e for _, e in listener.deliveries
            if (e.action, e.repository, e.digest) == (action, repository, digest)
            and (action == "delete" or e.is_manifest)
        ]  # fmt: skip
        ids = {e.id for e in found}
        if len(ids) != 1 or len(found) != 1:
            raise CheckFailed(
                f"{action} of {repository}@{digest[:19]}...: {len(ids)} event(s), "
                f"{len(found)} deliveries; expected exactly one",
                "start the listener before the registry sends, and wait for the events",
            )
    ok(f"each of the {len(expected)} pushes and deletes arrived exactly once, right digest")


def access_as_written(registry: Registry, users: dict[str, Credentials]) -> None:
    """Every rule of the example access list does what it says, through the token flow
    (after notebook 08's Step 4 pushed ``team/app`` and ``public/hello``: a pull needs an
    image to pull)."""
    from reglab.lab.access import can  # the notebook layer's helper; checks stays importable alone

    expected = [
        ("bob", "push", "team/app", True),
        ("bob", "pull", "team/app", True),
        ("alice", "pull", "team/app", True),
        ("alice", "push", "team/app", False),
        (None, "pull", "public/hello", True),
        (None, "push", "public/hello", False),
        (None, "pull", "team/app", False),
        ("alice", "catalog", "", False),
        ("admin", "catalog", "", True),
    ]
    for user, action, repository, allowed in expected:
        got = can(registry, users[user] if user else None, action, repository or "_catalog")
        if got != allowed:
            raise CheckFailed(
                f"{user or 'anonymous'} {action} {repository}: "
                f"{'allowed' if got else 'refused'}, the access list says otherwise",
                "restore auth/acl.yml from Step 2 (the first matching rule decides)",
            )
    ok(f"all {len(expected)} rules behave as written (push, pull and catalog, per user)")
