"""Notebook 05, diagnose and fix: a collection run on the live registry.

The distribution docs say never to collect while the registry accepts pushes, and notebook 05
restarts the registry after every collection. :func:`collect_while_live` skips both, as a
maintenance script written in a hurry would: after a client pulled an image (which fills the
registry's cache), it deletes the image, runs the collector on the running registry's storage,
and pushes the same image back. The push succeeds: the registry's
blob-descriptor cache still lists the swept blobs, so the engine's ``HEAD`` gets 200 and uploads
nothing, and the manifest ``PUT`` passes the same cache. Every pull then fails: the registry
answers 200 and sends no byte (:func:`pull_fresh` shows it). The fix is a new registry process
(an empty cache, so the swept blobs answer 404) and the push again; :func:`image_whole` checks
the result against the running registry.
"""

from __future__ import annotations

import hashlib
import re
import shutil

from reglab.base.errors import ReglabError
from reglab.engine.oneoff import run_once
from reglab.lab import operate
from reglab.lab.exercises.verdict import verdict
from reglab.lab.workshop import Workshop
from reglab.registry import gc, replicate
from reglab.registry.client import RegistryClient, read_all
from reglab.registry.container import Registry

#: One access-log line of registry 3 (2.8 alike): a blob GET, its status and the bytes sent.
BLOB_GET = re.compile(
    r'msg="response completed".*http\.request\.method=GET .*'
    r'http\.request\.uri="?(/v2/[^" ]+/blobs/sha256:[0-9a-f]{64})"?.*'
    r"http\.response\.status=(\d+) http\.response\.written=(\d+)"
)


def collect_while_live(ws: Workshop, registry: Registry, tag: str = "3") -> str:
    """The set-up: a client pulls ``reglab-app:TAG`` (the registry's cache now knows its
    blobs, as traffic fills it), it is deleted by digest, the collector runs at once on the
    running, writable registry (no read-only restart, no restart after), and the image is
    pushed back; return the digest the push printed."""
    _pull(ws, registry, operate.APP, tag, "before")
    operate.delete(ws, registry, operate.APP, tag)
    collector = gc.collector_spec(registry)
    ws.cli(collector.shell(ws.style))
    output = run_once(
        registry.engine,
        collector,
        what="the garbage collector failed",
        fix=f"read its output above, and 'docker logs {registry.config.name}'",
    )
    print(f"the collector deleted {len(gc.eligible_blobs(output))} blob(s); the registry ran on")
    return ws.push(registry.ref(operate.APP, tag))


def pull_fresh(ws: Workshop, registry: Registry, repository: str, tag: str) -> str | None:
    """Pull ``repository:tag`` as a client with nothing cached (skopeo, into a folder), then
    show what the registry's log says of the last blob request. Returns skopeo's error, if any."""
    error = _pull(ws, registry, repository, tag, "after")
    name = registry.config.name
    ws.cli(f"docker logs {name} 2>&1 | grep 'response completed' | grep 'GET.*/blobs/' | tail -n 1")
    gets = BLOB_GET.findall(registry.logs(tail=2000))
    if gets:
        uri, status, written = gets[-1]
        print(f"the registry's last blob GET: {uri} answered {status}, {written} bytes written")
    return error


def _pull(ws: Workshop, registry: Registry, repository: str, tag: str, when: str) -> str | None:
    """skopeo copy of ``repository:tag`` into a folder of its own (``pulled/REPO-TAG-WHEN``,
    removed with the notebook's other copies): every blob downloaded and checked."""
    into = ws.workdir / "pulled" / f"{repository}-{tag}-{when}"
    shutil.rmtree(into, ignore_errors=True)  # a copy from an earlier pull
    into.parent.mkdir(parents=True, exist_ok=True)
    ref = registry.ref(repository, tag)
    command = ["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}"]
    ws.cli(f"mkdir -p {ws.style.show(into.parent)}")
    ws.cli(replicate.shown(command) + f" dir:{ws.style.show(into)}")
    try:
        replicate.run([*command, f"dir:{into}"])
    except ReglabError as exc:
        problem = re.sub(r'time="[^"]*" level=\w+ msg=', "", exc.problem)  # skopeo's message
        print(f"refused: {problem}")
        return problem
    print(f"pulled {ref}")
    return None


def image_whole(registry: Registry, repository: str, tag: str) -> bool:
    """05, diagnose and fix: every blob of ``repository:tag`` downloads whole and hashes to its
    digest (what a pull needs); the hint says what the registry answers for one that does not."""
    with registry.client() as api:
        manifest = api.manifest(repository, tag)
        blobs = [manifest["config"]["digest"], *(b["digest"] for b in manifest["layers"])]
        broken = [digest for digest in blobs if not _served_whole(api, repository, digest)]
        heads = {digest: api.blob_status(repository, digest) for digest in broken}
    if not broken:
        return verdict(
            True,
            f"every blob of {repository}:{tag} downloads and hashes right. The new registry "
            "process started with an empty cache, answered 404 for the swept blobs, and the "
            "engine uploaded them again",
            "",
        )
    if all(status == 404 for status in heads.values()):
        return verdict(
            False,
            "",
            f"the registry now answers 404 for {len(broken)} blob(s) of {repository}:{tag}: it "
            "knows they are gone. What puts them back?",
        )
    return verdict(
        False,
        "",
        f"{len(broken)} blob(s) of {repository}:{tag} do not download, yet HEAD answers 200 for "
        "them: the registry says it has what it cannot send. Where does that answer come from, "
        "and what did Step 5 do after the sweep that this collection did not? Then push the "
        "image again",
    )


def _served_whole(api: RegistryClient, repository: str, digest: str) -> bool:
    """True when ``GET`` of the blob sends all its bytes and they hash to ``digest``."""
    data = bytearray()
    try:
        read_all(api.request("GET", f"/v2/{repository}/blobs/{digest}", stream=True), data)
    except ReglabError:  # a 404, or an answer that broke off
        return False
    return f"sha256:{hashlib.sha256(data).hexdigest()}" == digest


__all__ = ["collect_while_live", "image_whole", "pull_fresh"]
