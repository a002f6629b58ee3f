"""Notebook 09: one registry as several replicas behind a front, sharing one store."""

from __future__ import annotations

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
        "not retry: the replica answered, and a PATCH is not idempotent",
        "the upload's state (where it is, how far it got) travels in its URL, signed: who can "
        "check that signature?",
    )
