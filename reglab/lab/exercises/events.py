"""Notebook 07's exercises beyond the predicted pull (reglab.lab.exercises.operations):
a scanner's request typed in a terminal, and a registry whose events go nowhere.

Each check looks at the running registry and the kernel's listener, prints ``✔ Correct`` or
``✘ Not yet`` with a hint, and never raises.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from reglab.base.errors import ReglabError
from reglab.engine import transfer
from reglab.engine.network import NETWORK
from reglab.lab.exercises.verdict import verdict
from reglab.lab.workshop import Workshop
from reglab.registry.container import Registry
from reglab.registry.events import Event, Listener

#: The user agent the terminal exercise asks for.
SCANNER = "my-scanner"
#: How long a check waits for an event that should come at once (a broken set-up: never).
QUICK = 5.0


def _arrived(registry: Registry, listener: Listener, repository: str) -> list[Event] | None:
    """Every event queued so far, or None when the flush's marker did not arrive in time."""
    try:
        with registry.client() as api:
            return listener.flush(api, repository, timeout=QUICK)
    except ReglabError:
        return None


def scanner_fetch(registry: Registry, listener: Listener, answer: str | None) -> bool:
    """07, typed in a terminal: a scanner (user agent ``my-scanner``) fetches the manifest of
    ``hello-world:latest`` with curl; which action does its event carry? The registry reports
    any GET or HEAD of a manifest as a ``pull``, whoever asks: ``request.useragent`` tells a
    scanner's fetch from a deployment's."""
    events = _arrived(registry, listener, "hello-world") or []
    found = [e for e in events if e.user_agent == SCANNER]
    if not found:
        return verdict(
            False,
            "",
            f"no event with the user agent {SCANNER} yet: in a terminal, ask the registry for "
            f"the manifest of hello-world:latest with curl -A {SCANNER}, then run this check "
            "again",
        )
    event = found[-1]
    print(f"{event.method} by {event.user_agent}: {event.line()}")
    if not isinstance(answer, str) or not answer.strip():
        return verdict(False, "", 'answer with the action, for example answer = "push"')
    return verdict(
        answer.strip().lower() == event.action,
        f"{event.action}. The registry reports every request for a manifest, by docker or "
        "curl, HEAD or GET, as a pull; a webhook that counts deployments must look at "
        "request.useragent (or actor.name) too",
        f"the event arrived: read its action in the line above (you answered {answer!r})",
    )


def break_endpoint(ws: Workshop, listener: Listener) -> Registry:
    """Restart the registry with its events sent to ``127.0.0.1`` on the listener's port (a
    mistake that looks right on the host), push, and show that nothing arrives."""
    url = f"http://127.0.0.1:{listener.port}/events"
    registry = ws.up("local", notify=url, network=NETWORK)
    ref = registry.ref("broken/hello-world")
    ws.tag("hello-world", ref)
    ws.push(ref)
    arrived = _arrived(registry, listener, "broken/hello-world")
    print(
        "the push's events arrived"
        if arrived is not None
        else f"no event of broken/hello-world within {QUICK:g} s: why? (docker logs {ws.name})"
    )
    return registry


def events_delivered(ws: Workshop, listener: Listener) -> bool:
    """07, diagnose and fix: the running registry (whatever started it) sends its events where
    ``listener`` receives them: a push's manifest event arrives."""
    try:
        registry = Registry.attach(ws.engine, ws.name, ws.workdir)
    except ReglabError as exc:
        return verdict(False, "", f"no registry to check ({exc.problem}): start it again")
    url = registry.config.notify
    if url is None:
        return verdict(False, "", "this registry sends no events at all: give it notify=")
    if urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1"):
        return verdict(
            False,
            "",
            f"it still sends to {url}. 'docker logs {ws.name}' says why each POST fails: "
            "whose 127.0.0.1 is it, inside the container?",
        )
    ref = registry.ref("fixed/hello-world")
    transfer.tag(ws.engine, "hello-world", ref)
    try:
        pushed = transfer.push(ws.engine, ref)
    finally:
        transfer.remove(ws.engine, ref)
    events = _arrived(registry, listener, "fixed/hello-world") or []
    ok = any(e.is_manifest and e.action == "push" and e.digest == pushed for e in events)
    return verdict(
        ok,
        f"a push's events reach the listener at {url}. Inside a container 127.0.0.1 is the "
        "container itself (docker logs said: connection refused); the network's gateway is "
        "this machine as the container sees it",
        f"no event arrived from {url}: is it the listener's URL, {listener.url}?",
    )
