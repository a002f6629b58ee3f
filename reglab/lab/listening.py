"""Notebook 07: the registry's events, received in the kernel and, typed, in a terminal.

The kernel's listener (reglab.registry.events.Listener) and the terminal's
(``reglab listen``, reglab.cli.listen) listen on the same address: the workshop network's
gateway, on the port reglab.registry.events.listener_port plans. So the registry a notebook
starts and the one its ``$`` lines start send to the same URL, and whichever listener runs
receives. The terminal's writes its lines to ``workdir/events.log`` (``tail -f`` it), in the
background (``&``); its process id is kept in ``$LISTENER`` to stop it as the cell stops the
kernel's. Where a cell waits for events, its typed line waits for the last one's line in the log
(the registry sends one endpoint's events in order).

Each function does the work and prints the typed equivalent, as in reglab.lab.operate.
"""

from __future__ import annotations

import dataclasses
import json

from reglab.engine.network import project_network
from reglab.lab.workshop import Workshop
from reglab.registry.container import Registry
from reglab.registry.events import Event, Listener, endpoints_ignoring, listener_port

#: Where the typed listener writes, in the working folder.
LOG = "events.log"
#: The environment value that carries a registry's endpoint list.
ENDPOINTS = "REGISTRY_NOTIFICATIONS_ENDPOINTS"


def _typed_listener(ws: Workshop, listener: Listener) -> None:
    log = ws.style.show(ws.workdir / LOG)
    ws.cli(f"reglab listen --port {listener.port} --to {log} &")
    ws.cli("LISTENER=$!")


def listen(ws: Workshop) -> Listener:
    """Start the listener in this kernel, on the workshop network's gateway (an address of this
    machine that the registry container reaches) and the planned port. The typed log starts
    empty: its ``until grep`` lines must not find an earlier run's events."""
    listener = Listener(project_network(ws.engine), listener_port(ws.port))
    ws.cli(f"rm -f {ws.style.show(ws.workdir / LOG)}")
    _typed_listener(ws, listener)
    listener.start()
    print(f"listening for registry events at {listener.url}")
    return listener


def pause(ws: Workshop, listener: Listener) -> None:
    """Stop listening: the registry's POSTs are refused, and it queues and retries."""
    ws.cli("kill $LISTENER")
    listener.stop()


def resume(ws: Workshop, listener: Listener) -> None:
    """Listen again on the same port: the registry's next try delivers what it queued."""
    _typed_listener(ws, listener)
    listener.start()


def count_by_action(events: list[Event], repository: str) -> dict[str, int]:
    """How many events of each action ``repository`` had, e.g. {"push": 3, "pull": 2}."""
    counts: dict[str, int] = {}
    for event in events:
        if event.repository == repository:
            counts[event.action] = counts.get(event.action, 0) + 1
    return counts


def new_events(
    ws: Workshop,
    registry: Registry,
    listener: Listener,
    since: int,
    repository: str,
    pushed: str | None = None,
) -> list[Event]:
    """Wait for every event the registry has queued (Listener.flush: a marker's event comes
    after all of them), then show those after the first ``since``: one line each, and how many
    of each kind. ``pushed`` (a manifest digest): wait for that push's manifest event instead,
    the last of a push, for an endpoint that ignores the marker's blob event. The typed line
    waits for the last event's line in the log: in order, the others came before it."""
    if pushed is None:
        with registry.client() as api:
            events = listener.flush(api, repository)[since:]
    else:
        events = listener.wait_for(
            lambda got: any(
                (e.action, e.repository, e.digest) == ("push", repository, pushed)
                for e in got
                if e.is_manifest
            ),
            what=f"the push event of {repository}",
        )[since:]
    if events:
        last = events[-1].line().removesuffix(events[-1].digest).rstrip()
        log = ws.style.show(ws.workdir / LOG)
        ws.cli(f"until grep -qF '{last}' {log}; do sleep 1; done")
    for event in events:
        print(event.line())
    kinds: dict[str, int] = {}
    for event in events:
        kinds[f"{event.action} {event.what}"] = kinds.get(f"{event.action} {event.what}", 0) + 1
    print(f"{len(events)} event(s): " + ", ".join(f"{n} {kind}" for kind, n in kinds.items()))
    return events


def show_raw(event: Event) -> dict[str, object]:
    """Print one event as the registry sent it (inside the envelope's ``events`` list)."""
    print(json.dumps(event.raw, indent=2, sort_keys=True))
    return event.raw


def ignoring(
    ws: Workshop, registry: Registry, mediatypes: tuple[str, ...], actions: tuple[str, ...]
) -> Registry:
    """Restart ``registry`` with its endpoint ignoring events of ``mediatypes`` and
    ``actions`` (the same container otherwise; a local registry starts empty again)."""
    spec = registry.config.spec()
    env = dict(spec.env)
    env[ENDPOINTS] = endpoints_ignoring(env[ENDPOINTS], mediatypes, actions)
    spec = dataclasses.replace(spec, env=env)
    ws.cli(f"docker rm -f -v {registry.config.name}")
    registry.remove()
    ws.cli(spec.shell(ws.style))
    ws.engine.containers.run(**spec.run_kwargs())
    registry.wait_ready()
    print(
        f"registry {registry.config.name} answers at {registry.url}; its endpoint ignores "
        f"media types {', '.join(mediatypes)} and actions {', '.join(actions)}"
    )
    return registry
