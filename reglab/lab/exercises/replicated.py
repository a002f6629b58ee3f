"""Notebook 09: one registry as several replicas behind a front, sharing one store."""

from __future__ import annotations

from reglab.base.errors import ReglabError
from reglab.base.wait import WaitTimeout, poll
from reglab.lab.exercises.verdict import letter, verdict
from reglab.lab.measure import split_upload
from reglab.registry.login import Credentials
from reglab.swarm import SwarmRegistry

#: Notebook 09's choices: what happens to an upload whose chunk goes to the odd replica.
ODD_SECRET_CHOICES = {
    "a": "it commits as usual: every replica reads the same store",
    "b": "the odd replica refuses the chunk with the registry's own error",
    "c": "the front sees the error and retries on another replica, where it commits",
    "d": "the front answers 502 Bad Gateway",
}


def odd_secret(
    swarm: SwarmRegistry, credentials: Credentials, answer: str, repository: str = "team/odd"
) -> bool:
    """09, predict: an upload started on replica1 sends its chunk to a registry with another
    ``http.secret``. The check makes that upload (into ``repository``, which the access list
    must let ``credentials`` push) and shows each request."""
    choice = letter(answer)
    if choice not in ODD_SECRET_CHOICES:
        return verdict(False, "", 'answer with one letter, for example answer = "a"')
    data = b"one chunk for the odd replica\n" * 1024
    _, steps = split_upload(
        swarm, credentials.as_tuple(), repository, data, ("replica1", "odd", "replica1")
    )
    for step in steps:
        said = f" {step.error}" if step.error else ""
        print(f"{step.request:<6} on {step.replica:<9} -> {step.status}{said}")
    refused = len(steps) == 2 and "BLOB_UPLOAD_INVALID" in steps[1].error
    happened = "b" if refused else ("a" if steps[-1].status == 201 else "?")
    return verdict(
        choice == happened,
        "the upload's state travels in its Location URL, signed with http.secret; a replica "
        "with another secret cannot verify it and answers BLOB_UPLOAD_INVALID. The front does "
        "not retry: a registry's 404 is none of its retry-on reasons (a failed connection, no "
        "answer, a timeout, 502-504), and X-Reglab-Use pinned the request to odd",
        "the upload's state (where it is, how far it got) travels in its URL, signed: who can "
        "check that signature?",
    )


def odd_fixed(swarm: SwarmRegistry, credentials: Credentials, repository: str = "team/odd") -> bool:
    """09, diagnose then fix (in a terminal): the odd registry made a true replica, so an
    upload whose chunk goes to it commits. The check makes that upload (replica1, odd,
    replica1) once the front sees odd up."""
    container = swarm.odd_container()
    if container is None or container.status != "running":
        return verdict(
            False, "", f"{swarm.odd} is not running: docker start {swarm.odd} (or the cell above)"
        )
    try:
        poll(
            "the front to see odd up",
            lambda: True if any(r.name == "odd" for r in swarm.replicas_seen(odd=True)
                                if r.status == "UP") else None,
            timeout=30,
            interval=0.5,
        )  # fmt: skip
    except WaitTimeout:
        return verdict(
            False, "", f"the front does not see odd up: what does docker logs {swarm.odd} say?"
        )
    data = b"one chunk for the repaired odd replica\n" * 1024
    try:
        digest, steps = split_upload(
            swarm, credentials.as_tuple(), repository, data, ("replica1", "odd", "replica1")
        )
    except ReglabError as exc:
        return verdict(False, "", f"the upload could not start: {exc.problem[:120]}")
    for step in steps:
        said = f" {step.error}" if step.error else ""
        print(f"{step.request:<6} on {step.replica:<9} -> {step.status}{said}")
    return verdict(
        steps[-1].request == "PUT" and steps[-1].status == 201,
        f"committed {digest[:19]}...: odd now signs and checks upload states with the "
        "replicas' http.secret. The registry reads its configuration when it starts: a new "
        "file needed a restart (a running registry never rereads it)",
        "odd still refuses the chunk. Which value must every replica share? Compare "
        "workdir/swarm/odd.yml with workdir/swarm/registry.yml (the replicas' file), and "
        "remember when a registry reads its file",
    )
