"""Checkpoints: each verifies one workshop step against the real registry or engine.

A check prints one line starting with ``✔`` when the step worked, and raises
:class:`CheckFailed` (one line: what is wrong and the fix) when it did not. The notebooks'
checkpoint cells call these, and the tests prove each one fails when its step is broken.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import docker
import docker.errors

from reglab.auth.htpasswd import Htpasswd, cost_of
from reglab.base.errors import ClientError, ReglabError, TLSVerificationFailed
from reglab.engine.login import Credentials
from reglab.engine.oneoff import run_once
from reglab.engine.transfer import exists
from reglab.registry.client import RegistryClient
from reglab.registry.container import Registry
from reglab.registry.events import Listener
from reglab.registry.gc import Collection
from reglab.swarm import PullStream, UploadStep


class CheckFailed(ReglabError):
    """A checkpoint found that a step did not do what it should."""


def _ok(message: str) -> None:
    print(f"✔ {message}")


def registry_answers(
    registry: Registry, expect: int = 200, auth: tuple[str, str] | None = None
) -> None:
    """``GET /v2/`` answers with ``expect`` (200 open, 401 when auth is on and none is sent)."""
    try:
        with registry.client(auth=auth) as api:
            status = api.status()
    except ClientError as exc:
        raise CheckFailed(
            f"the registry at {registry.url} does not answer: {exc.problem}",
            "start it (run the 'start the registry' cell again)",
        ) from None
    if status != expect:
        raise CheckFailed(
            f"GET {registry.url}/v2/ answered {status}, expected {expect}",
            "check the stage you started and the credentials",
        )
    _ok(f"GET {registry.url}/v2/ -> {status}")


def registry_serves(
    registry: Registry, repository: str, digest: str, auth: tuple[str, str] | None = None
) -> None:
    """The registry lists ``repository`` and serves ``digest`` for its ``latest`` tag."""
    with registry.client(auth=auth) as api:
        try:
            catalog = api.catalog()
            served = api.manifest_digest(repository) if repository in catalog else None
        except ClientError as exc:
            raise CheckFailed(
                f"cannot read the registry: {exc.problem}", exc.fix or "check the registry"
            ) from None
    if served is None:
        raise CheckFailed(
            f"{repository} is not in the registry's catalog {catalog}",
            "push the image first (the push cell above)",
        )
    if served != digest:
        raise CheckFailed(
            f"the registry serves {served} for {repository}, not {digest}", "push the image again"
        )
    _ok(f"the registry serves {repository}:latest with digest {digest}")


def image_present(engine: docker.DockerClient, ref: str, digest: str | None = None) -> None:
    """The local engine has ``ref`` (pulled with ``digest`` when given)."""
    if not exists(engine, ref):
        raise CheckFailed(f"the engine has no image {ref}", "run the pull cell above")
    if digest is not None:
        repo_digests = engine.images.get(ref).attrs.get("RepoDigests") or []
        if not any(d.endswith(digest) for d in repo_digests):
            raise CheckFailed(
                f"{ref} does not have digest {digest} (it has {repo_digests})",
                "pull it again from the registry",
            )
        _ok(f"{ref} is back in the engine, digest {digest}")
    else:
        _ok(f"the engine has {ref}")


def image_absent(engine: docker.DockerClient, *refs: str) -> None:
    """None of ``refs`` is in the local engine (so a later pull really comes from the registry)."""
    present = [ref for ref in refs if exists(engine, ref)]
    if present:
        raise CheckFailed(
            f"still in the engine: {', '.join(present)}", "remove them (the docker rmi cell above)"
        )
    _ok(f"removed from the engine: {', '.join(refs)}")


def tls_verified(registry: Registry) -> None:
    """A verifying client trusts the registry with the workshop CA, and refuses it without."""
    if not registry.url.startswith("https://"):
        raise CheckFailed(f"{registry.url} is not HTTPS", "start the tls stage")
    try:
        with RegistryClient(registry.url) as untrusting:
            untrusting.status()
    except TLSVerificationFailed as exc:
        _ok(f"without the CA, verification fails: {exc.problem.split(': ', 1)[-1]}")
    else:
        raise CheckFailed(
            "a client that does not have the workshop CA trusted the registry",
            "the registry must use the certificate issued by the workshop CA",
        )
    try:
        with registry.client() as trusting:
            status = trusting.status()
    except TLSVerificationFailed as exc:
        raise CheckFailed(
            f"with the workshop CA, verification still fails: {exc.problem}",
            "issue the certificate again from the workshop CA",
        ) from None
    _ok(f"with {Path(str(registry.ca_file)).name}, verification succeeds (GET /v2/ -> {status})")


def refused(registry: Registry, auth: tuple[str, str] | None = None) -> None:
    """The registry answers 401 to these credentials (or to none)."""
    with registry.client(auth=auth) as api:
        status = api.status()
    who = "no credentials" if auth is None else f"user {auth[0]} with that password"
    if status != 401:
        raise CheckFailed(
            f"the registry answered {status} to {who}, expected 401",
            "start the auth stage so the registry asks for credentials",
        )
    _ok(f"{who}: 401 Unauthorized")


def file_exists(path: str | Path, what: str) -> None:
    """A file the step should have written is there and not empty."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise CheckFailed(f"{what} {path.name} is missing or empty", "run the step above again")
    _ok(f"{what} {path.name} written ({path.stat().st_size} bytes)")


def container_says(engine: docker.DockerClient, image: str, text: str) -> None:
    """A container from ``image`` runs and prints ``text``."""
    output = run_once(
        engine,
        image,
        [],
        what=f"{image} did not run",
        fix="run 'reglab images' again",
        error=CheckFailed,
    )
    if text not in output:
        raise CheckFailed(f"{image} ran but did not print {text!r}", "run 'reglab images' again")
    _ok(f"{image} ran and printed {text!r}")


def push_refused(error: str | None, expected: str) -> None:
    """A push that should have been refused was, for the expected reason."""
    if error is None:
        raise CheckFailed(
            "the push was accepted, but it should have been refused",
            "check the registry's stage and Docker's insecure-registries setting",
        )
    if expected not in error:
        raise CheckFailed(
            f"the push was refused for another reason: {error}",
            "read the message; the troubleshooting table below may help",
        )
    _ok(f"refused as expected: {expected}")


def same(actual: object, expected: object, what: str, fix: str) -> None:
    """``actual`` equals ``expected``; says so with ``what``."""
    if actual != expected:
        raise CheckFailed(f"{what}: got {_shown(actual)}, expected {_shown(expected)}", fix)
    _ok(f"{what}: {_shown(actual)}")


def _shown(value: object) -> str:
    """Numbers with thousands separators (byte counts read better, and compare as N)."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def htpasswd_matches(path: str | Path, credentials: Credentials) -> None:
    """The htpasswd file has a bcrypt entry for the user that matches the password."""
    users = Htpasswd.load(path)  # refuses non-bcrypt entries
    if not users.verify(credentials.user, credentials.password):
        raise CheckFailed(
            f"{Path(path).name} has no matching entry for {credentials.user}", "add the user again"
        )
    _ok(
        f"{credentials.user}'s entry is bcrypt (cost {cost_of(users.users[credentials.user])}) "
        "and matches the password"
    )


# --- day two (05-07) ------------------------------------------------------------------------


def images_intact(registry: Registry, images: dict[str, str]) -> None:
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
            _ok(f"{ref}: digest unchanged, every blob hashes right ({size:,} bytes)")


def reclaimed(done: Collection, expected: dict[str, int]) -> None:
    """Garbage collection freed exactly the blobs in ``expected`` (digest: bytes)."""
    want = sum(expected.values())
    if set(done.eligible) != set(expected) or done.reclaimed != want:
        raise CheckFailed(
            f"the collector deleted {len(done.eligible)} blob(s), {done.reclaimed:,} bytes; "
            f"expected {len(expected)}, {want:,} bytes",
            "delete the version first (its manifest), then collect without --dry-run",
        )
    _ok(
        f"reclaimed {want:,} bytes: exactly the {len(expected)} blobs only the deleted version used"
    )


def blobs_gone(registry: Registry, repository: str, digests: Iterable[str]) -> None:
    """The registry answers 404 for each of these blobs."""
    with registry.client() as api:
        answers = {d: api.blob_status(repository, d) for d in digests}
    alive = [d for d, status in answers.items() if status != 404]
    if alive:
        raise CheckFailed(
            f"{len(alive)} deleted blob(s) still answer {answers[alive[0]]}",
            "restart the registry after collecting (its cache still knows them)",
        )
    _ok(f"all {len(answers)} deleted blobs answer 404")


def refused_for(error: str | None, expected: str) -> None:
    """An operation that should have failed did, with ``expected`` in the registry's words."""
    if error is None or expected not in error:
        raise CheckFailed(
            f"expected a refusal with {expected!r}, got {error!r}",
            "run the cells above in order, from the top",
        )
    _ok(f"refused by the registry: {expected}")


def mirror_serves(mirror: Registry, upstream_digest: str, repository: str = "hello-world") -> None:
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
    _ok(f"the mirror serves {repository}:latest with the upstream's digest {digest}")


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
    _ok(f"each of the {len(expected)} pushes and deletes arrived exactly once, right digest")


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
    _ok(f"all {len(expected)} rules behave as written (push, pull and catalog, per user)")


# --- 09 ---------------------------------------------------------------------------------------


def replicas_agree(found: dict[str, str], digest: str, replicas: int) -> None:
    """Each of ``replicas`` replicas, asked one by one, served ``digest``."""
    if len(found) != replicas:
        raise CheckFailed(
            f"{len(found)} replica(s) answered, expected {replicas}",
            "wait for the front to see every replica (replicas.status), then ask again",
        )
    wrong = {name: d for name, d in found.items() if d != digest}
    if wrong:
        raise CheckFailed(
            f"{', '.join(wrong)} served another digest than {digest[:19]}...",
            "every replica must use the same storage: check registry.yml's s3 section",
        )
    _ok(f"all {replicas} replicas serve {digest} from the shared store")


def bucket_grew(before: int, after: int) -> None:
    """The store's bucket holds more bytes than before the push."""
    if after <= before:
        raise CheckFailed(
            f"the bucket holds {after:,} bytes, {before:,} before the push",
            "the replicas must store in the bucket: check registry.yml's storage section",
        )
    _ok(f"the bucket grew by {after - before:,} bytes: the push went to the shared store")


def upload_committed(steps: list[UploadStep]) -> None:
    """A three-request upload ended with 201 Created, its requests on different replicas."""
    if not steps or steps[-1].status != 201:
        last = steps[-1] if steps else None
        raise CheckFailed(
            f"the upload did not commit ({last.request if last else '-'} answered "
            f"{last.status if last else '-'} {last.error if last else ''})",
            "every replica needs the same http.secret (registry.yml), shared by the stack",
        )
    where = {s.replica for s in steps}
    if len(where) < 2:
        raise CheckFailed("the upload's requests all went to one replica", "route them apart")
    _ok(f"an upload split over {len(where)} replicas committed")


def no_failed_requests(stream: PullStream, minimum: int = 200) -> None:
    """At least ``minimum`` pull requests were made, and none failed."""
    if stream.failed:
        raise CheckFailed(
            f"{len(stream.failed)} of {stream.requests} requests failed: {stream.failed[0]}",
            "the front must retry on another replica (haproxy.cfg: retry-on, redispatch)",
        )
    if stream.requests < minimum:
        raise CheckFailed(
            f"only {stream.requests} requests were made, expected at least {minimum}",
            "run the cell again",
        )
    _ok(f"at least {minimum} requests, none failed")
