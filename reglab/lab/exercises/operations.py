"""Notebooks 05, 06 and 07: running a registry (garbage collection, a mirror, its events)."""

from __future__ import annotations

from collections.abc import Iterable

from reglab.base.errors import ReglabError
from reglab.engine import transfer
from reglab.lab.exercises.verdict import verdict
from reglab.lab.workshop import Workshop
from reglab.registry import gc
from reglab.registry.container import Registry
from reglab.registry.events import Listener

# --- 05 -------------------------------------------------------------------------------------


def blobs_collected(registry: Registry, answer: int | None) -> bool:
    """05, predict: how many blobs garbage collection deletes now (a dry run tells)."""
    if not isinstance(answer, int):
        return verdict(False, "", "answer with a number, for example answer = 1")
    done = gc.collect(registry, dry_run=True)
    print(f"the collector's dry run: {len(done.eligible)} blob(s) eligible for deletion")
    return verdict(
        answer == len(done.eligible),
        "the deleted version's own layer, its config and its manifest (a manifest is stored "
        "as a blob too); the layer both versions share stays, because version 2 still uses it",
        "count what only version 1 used: look at its manifest (config, layers), remember that "
        "the manifest is a blob itself, and that a layer shared with version 2 is still in use",
    )


# --- 06 -------------------------------------------------------------------------------------


def served_without_upstream(mirror: Registry, upstream: Registry, answer: Iterable[str]) -> bool:
    """06, predict: with the upstream stopped, which repositories does the mirror serve?"""
    chosen = {str(a) for a in answer}
    container = upstream.container
    if container is not None and container.status == "running":
        return verdict(False, "", "stop the upstream first (the cell above)")
    served = set()
    with mirror.client() as api:
        for repository in ("hello-world", "tools"):
            try:
                api.verify_image(repository)
                served.add(repository)
                print(f"{repository}: served by the mirror")
            except ReglabError as exc:
                print(f"{repository}: {exc.problem[:160]}")
    return verdict(
        chosen == served,
        "the mirror serves what it has stored (hello-world, fetched through it) and nothing "
        "else: tools was never asked for, so it never came",
        "a mirror stores what passes through it, and only that; which repository did a "
        "client already fetch through the mirror?",
    )


# --- 07 -------------------------------------------------------------------------------------


def pull_events(ws: Workshop, registry: Registry, listener: Listener, answer: int | None) -> bool:
    """07, predict: how many blob events (layer or config downloads) one ``docker pull`` of
    an image the engine already has produces.

    The question is about blobs because that number is fixed: the engine asks for no part it
    has. Its manifest requests are not: a ``HEAD`` to resolve the tag, then a ``GET`` by digest
    only when it no longer keeps the manifest itself, so one or two manifest events.
    """
    if not isinstance(answer, int):
        return verdict(False, "", "answer with a number, for example answer = 3")
    ref = registry.ref("hello-world")
    with registry.client() as api:
        listener.flush(api, "hello-world")
        before = len(listener.events)
        transfer.remove(ws.engine, ref)
        transfer.pull(ws.engine, ref)
        events = listener.flush(api, "hello-world")[before:]
    blobs = [e for e in events if e.what == "blob"]
    others = [e for e in events if e.what != "blob"]
    print(f"docker pull {ref}: {len(blobs)} blob event(s)")
    if all(e.action == "pull" and e.what == "manifest" for e in others):
        print("every other event was a request for the manifest")
    else:
        print(f"other events: {[(e.action, e.what, e.method) for e in others]}")
    return verdict(
        answer == len(blobs),
        "none. The engine already has every layer and the config, so it asks only about the "
        "manifest: a HEAD to resolve the tag, and a GET when it no longer keeps the manifest "
        "itself. A registry's pull events count requests, not downloads",
        "the engine downloads only what it does not have; which parts of hello-world does it "
        "have already?",
    )
