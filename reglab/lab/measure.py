"""What notebook 09 measures on the swarm registry (and the benchmark with it): the digest
each replica serves, an upload split across replicas, pulls streamed while replicas die or are
replaced (every failed request counted, none lost), and what each replica's own counters say
of the shared cache. (The bytes the store holds: :mod:`reglab.swarm.store`, which the garbage
collection reports with.)

Not the core's: nothing in ``reglab swarm`` needs them. They work through the front, with the
header that picks a replica (:func:`reglab.swarm.replica_header`).
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from reglab.base.errors import ClientError, RegistryError, ReglabError, docker_errors
from reglab.base.wait import NotYet, poll
from reglab.registry.answers import MANIFEST_TYPES
from reglab.registry.client import RegistryClient, read_all
from reglab.swarm import SwarmRegistry, replica_header, served_by
from reglab.swarm.render import DEBUG_PORT


def digest_from_each(
    registry: SwarmRegistry, auth: tuple[str, str], repository: str, reference: str = "latest"
) -> dict[str, str]:
    """{replica: digest} for ``repository:reference``, asking every replica the front has up,
    one by one (the answer says which replica it came from: it must be the one asked)."""
    found = {}
    with registry.client(auth=auth) as api:
        for replica in registry.up_replicas():
            response = api.request(
                "HEAD",
                f"/v2/{repository}/manifests/{reference}",
                headers={"Accept": MANIFEST_TYPES, **replica_header(replica.name)},
            )
            if served_by(response) != replica.name:
                raise RegistryError(
                    f"asked {replica.name}, {served_by(response)} answered",
                    "check the front's haproxy.cfg (use-server lines)",
                )
            found[replica.name] = str(response.headers["Docker-Content-Digest"])
    return found


@dataclass
class UploadStep:
    """One request of a chunked upload: what, where it went, what came back."""

    request: str  # POST, PATCH, PUT
    replica: str
    status: int
    error: str = ""


def split_upload(
    registry: SwarmRegistry,
    auth: tuple[str, str],
    repository: str,
    data: bytes,
    route: tuple[str, str, str],
) -> tuple[str, list[UploadStep]]:
    """Upload ``data`` as one blob in three requests (start, one chunk, commit), each sent to
    the replica ``route`` names; return the digest and each step. A step that fails ends it.

    The upload's state travels in its URL, signed with ``http.secret``: a replica with
    another secret cannot read it.
    """
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    steps: list[UploadStep] = []
    location = f"/v2/{repository}/blobs/uploads/"
    with registry.client(auth=auth) as api:
        for method, replica in zip(("POST", "PATCH", "PUT"), route, strict=True):
            path = location.split(registry.url, 1)[-1]
            kwargs: dict[str, Any] = {"headers": replica_header(replica)}
            if method == "PATCH":
                kwargs["data"] = data
                kwargs["headers"]["Content-Type"] = "application/octet-stream"
            if method == "PUT":
                path += ("&" if "?" in path else "?") + f"digest={digest}"
            try:
                response = api.request(method, path, **kwargs)
            except ClientError as exc:
                steps.append(UploadStep(method, replica, exc.status or 0, exc.problem))
                return digest, steps
            steps.append(UploadStep(method, replica, response.status_code))
            location = response.headers.get("Location", location)
    return digest, steps


@dataclass
class PullStream:
    """Pulls of one image through the front, over and over, from ``workers`` threads: the
    manifest, then every blob, each checked by its digest. Counts what failed and how.

    ``with PullStream(...) as stream: ...`` runs it while the block runs.
    """

    registry: SwarmRegistry
    auth: tuple[str, str]
    repository: str
    workers: int = 4
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    #: Blob downloads that broke off (their replica was killed mid-answer) and were resumed.
    resumed: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def requests(self) -> int:
        return self.ok + len(self.failed)

    def _count(self, error: str | None, resumed: int = 0) -> None:
        with self._lock:
            self.resumed += resumed
            if error is None:
                self.ok += 1
            else:
                self.failed.append(error)

    def _run(self) -> None:
        with self.registry.client(auth=self.auth) as api:
            while not self._stop.is_set():
                try:
                    manifest = api.manifest(self.repository)
                    self._count(None)
                except ReglabError as exc:
                    self._count(exc.problem)
                    continue
                except Exception as exc:  # counted, never lost with the thread
                    self._count(f"{type(exc).__name__}: {exc}")
                    continue
                for blob in [manifest["config"], *manifest.get("layers", [])]:
                    self._count(*_fetch_blob(api, self.repository, blob["digest"]))

    def wait_for(self, count: int, timeout: float = 60.0) -> int:
        """Wait until at least ``count`` requests were made (so far); return how many. Too few
        by the deadline raises: a failover measured without traffic proves nothing."""

        def enough() -> int | None:
            made = self.requests
            if made < count:
                raise NotYet(f"{made} made, {len(self.failed)} failed")
            return made

        return poll(
            f"{count} requests through the front of {self.registry.name}",
            enough,
            timeout=timeout,
            interval=0.05,
            fix="see reglab swarm status: is a replica up at the front?",
        )

    def __enter__(self) -> PullStream:
        self._threads = [
            threading.Thread(target=self._run, daemon=True) for _ in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


#: How many times a blob download that broke off is resumed (the Docker engine: 5).
RESUMES = 3


def _fetch_blob(
    api: RegistryClient, repository: str, digest: str, replica: str | None = None
) -> tuple[str | None, int]:
    """GET one blob; (None, resumed) when its bytes hash to its digest, else (what went wrong,
    resumed).

    A download that broke off (its replica was killed while it answered: no front can replay
    an answer already under way) is resumed where it stopped with a ``Range`` request, as the
    Docker engine resumes a layer; ``resumed`` counts how often. ``replica``: the one to ask.
    """
    data = bytearray()
    resumed = 0
    while True:
        headers = {"Range": f"bytes={len(data)}-"} if data else {}
        headers.update(replica_header(replica) if replica else {})
        try:  # a request that gets no answer, or an error, has failed: not retried here
            response = api.request(
                "GET", f"/v2/{repository}/blobs/{digest}", headers=headers, stream=True
            )
        except ReglabError as exc:
            return exc.problem, resumed
        if data and response.status_code != 206:
            data.clear()  # the whole blob again, not the rest of it
        try:
            read_all(response, data)
            break
        except ClientError as exc:  # the answer broke off
            if resumed == RESUMES:
                return f"the answer broke off {RESUMES + 1} times: {exc.__cause__}", resumed
            resumed += 1
    if f"sha256:{hashlib.sha256(data).hexdigest()}" != digest:
        return f"blob {digest[:19]} came back with other bytes", resumed
    return None, resumed


def pull_via(registry: SwarmRegistry, auth: tuple[str, str], repository: str, replica: str) -> int:
    """Pull ``repository:latest`` (the manifest, then every blob, each checked by its digest)
    from the replica ``replica`` only; return how many blobs came."""
    with registry.client(auth=auth) as api:
        manifest = api.request(
            "GET",
            f"/v2/{repository}/manifests/latest",
            headers={"Accept": MANIFEST_TYPES, **replica_header(replica)},
        ).json()
        blobs = [manifest["config"], *manifest.get("layers", [])]
        for blob in blobs:
            error, _ = _fetch_blob(api, repository, blob["digest"], replica)
            if error is not None:
                raise RegistryError(f"{replica} did not serve {blob['digest'][:19]}: {error}")
    return len(blobs)


# --- a replica's own counters (registry 3's debug server, Prometheus text) -----------------

#: Every lookup of a blob's descriptor (size, media type) counts as a cache request; one the
#: cache answered (here: the shared Redis) as a hit, and the rest went to the store (S3).
#: distribution's registry/storage/cache/cachedblobdescriptorstore.go.
CACHE_REQUESTS = "registry_storage_cache_requests_total"
CACHE_HITS = "registry_storage_cache_hits_total"


@dataclass(frozen=True)
class CacheCount:
    """A replica's cache counters: lookups, and how many the cache answered."""

    lookups: int
    hits: int

    def __sub__(self, before: CacheCount) -> CacheCount:
        return CacheCount(self.lookups - before.lookups, self.hits - before.hits)


def slot_filter(registry: SwarmRegistry, slot: int) -> str:
    """``docker ps``'s filter for the container of the registry's task ``slot`` (Swarm names
    it SERVICE.SLOT.TASK)."""
    return f"name={registry.service}.{slot}."


def metrics_command(registry: SwarmRegistry, slot: int) -> str:
    """How a terminal reads the cache's counters of the replica in ``slot``: its debug server
    listens inside the container only (the image has busybox's wget)."""
    return (
        f"docker exec $(docker ps -q -f {slot_filter(registry, slot)}) busybox wget -qO- "
        f"http://127.0.0.1:{DEBUG_PORT}/metrics | grep -E '^registry_storage_cache_(requests|hits)'"
    )


def slot_container(registry: SwarmRegistry, slot: int) -> Any:
    """The container of the registry's running task ``slot``."""
    for task in registry.running_tasks(registry.service):
        if task.get("Slot") == slot:
            cid = task["Status"].get("ContainerStatus", {}).get("ContainerID")
            with docker_errors(f"cannot find replica {slot}", error=RegistryError):
                return registry.engine.containers.get(cid)
    raise RegistryError(f"no replica runs in slot {slot} of {registry.service}", "reglab swarm up")


def front_name(registry: SwarmRegistry, container: Any) -> str:
    """The front's name for ``container`` (replica1, ...): the one at its address."""
    networks = container.attrs["NetworkSettings"]["Networks"]
    address = (networks.get(registry.network) or {}).get("IPAddress")
    for replica in registry.up_replicas():
        if replica.address == address:
            return replica.name
    raise RegistryError(f"the front does not show {container.name} ({address}) up")


def cache_count(registry: SwarmRegistry, container: Any) -> CacheCount:
    """The replica's cache counters, from its metrics (registry 3: http.debug, Prometheus)."""
    url = f"http://127.0.0.1:{DEBUG_PORT}/metrics"
    with docker_errors(f"cannot read the metrics of {container.name}", error=RegistryError):
        result = container.exec_run(["busybox", "wget", "-qO-", url])
    text = bytes(result.output).decode(errors="replace")
    values = {}
    for name in (CACHE_REQUESTS, CACHE_HITS):
        match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
        values[name] = int(float(match.group(1))) if match else 0
    if result.exit_code != 0 or CACHE_REQUESTS not in text and "registry_" not in text:
        raise RegistryError(
            f"{container.name} served no metrics: {text.strip()[-200:]}",
            "registry.yml needs http.debug (addr :5001, prometheus enabled)",
        )
    return CacheCount(values[CACHE_REQUESTS], values[CACHE_HITS])
