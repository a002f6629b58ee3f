"""Checkpoints of notebook 09: one registry as several replicas behind a front, one store."""

from __future__ import annotations

from reglab.lab.checks.failed import CheckFailed, ok
from reglab.lab.measure import PullStream, UploadStep


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
    ok(f"all {replicas} replicas serve {digest} from the shared store")


def bucket_grew(before: int, after: int) -> None:
    """The store's bucket holds more bytes than before the push."""
    if after <= before:
        raise CheckFailed(
            f"the bucket holds {after:,} bytes, {before:,} before the push",
            "the replicas must store in the bucket: check registry.yml's storage section",
        )
    ok(f"the bucket grew by {after - before:,} bytes: the push went to the shared store")


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
    ok(f"an upload split over {len(where)} replicas committed")


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
    ok(f"at least {minimum} requests, none failed")
