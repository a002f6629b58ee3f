"""Registry events: a small HTTP listener that receives what the registry sends.

A registry configured with ``notifications.endpoints`` (``RegistryConfig(notify=URL)``) POSTs a
JSON envelope, ``{"events": [...]}``, for every manifest and blob pushed, pulled or deleted.
:class:`Listener` receives them in a thread of this process, on an address the registry container
reaches: the gateway of the workshop's own network (``reglab.engine.network``), an address of this
machine that only its containers use. It never listens anywhere else.

What an operator must know, and notebook 07 shows:

- Delivery is *at least once*: the registry retries a failed POST (after ``threshold`` failures
  in a row it waits ``backoff`` between tries), so a listener that was down gets the events late,
  in order. A resent envelope carries the same event ids: :attr:`Listener.events` keeps each
  once, :attr:`Listener.deliveries` counts every arrival.
- The queue lives in the registry's memory: events not yet delivered are lost when the registry
  restarts.
- An endpoint may leave out events by ``ignore: {mediatypes: [...], actions: [...]}``
  (distribution's ``notifications/endpoint.go``: the filter sits before the queue, so an ignored
  event is never queued nor sent): :func:`endpoints_ignoring`.

The learner's terminal has the same listener: ``reglab listen --port N`` (``reglab.cli.listen``),
on the port :func:`listener_port` plans, so the line a notebook prints is the one to type.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from reglab.base.errors import ConfigError, RegistryError
from reglab.base.ports import Ports
from reglab.base.wait import DEFAULT_INTERVAL, NotYet, WaitTimeout, poll
from reglab.registry.client import RegistryClient

#: The media type of the registry's event envelope.
ENVELOPE_TYPE = "application/vnd.docker.distribution.events.v1+json"
PATH = "/events"
#: The media type registry 3 gives a blob event's target (2.8: application/octet-stream too).
BLOB_TYPE = "application/octet-stream"


def listener_port(registry_port: int) -> int:
    """Where the workshop's listener listens: a fixed port (reglab.base.ports' plan), so a
    typed line can name it."""
    return Ports(registry_port).listener


def endpoints_ignoring(
    endpoints: str, mediatypes: tuple[str, ...], actions: tuple[str, ...]
) -> str:
    """``notifications.endpoints`` (as reglab.registry.config writes it, one endpoint in a
    YAML flow list) with ``ignore:``: events whose target has one of ``mediatypes``, or whose
    action is one of ``actions``, are dropped before the queue."""
    if not endpoints.endswith("}]"):
        raise ConfigError(f"not one endpoint: {endpoints!r}", "give notification_endpoints(url)")
    ignore = f"ignore: {{mediatypes: [{', '.join(mediatypes)}], actions: [{', '.join(actions)}]}}"
    return f"{endpoints[:-2]}, {ignore}}}]"


@dataclass(frozen=True)
class Event:
    """One registry event, the fields an operator reads."""

    id: str
    action: str  # push, pull or delete
    repository: str
    tag: str | None
    digest: str
    size: int
    media_type: str
    user: str | None
    timestamp: str
    user_agent: str = ""
    method: str = ""  # the HTTP request that caused it: a HEAD is reported as a pull too
    #: The event as the registry sent it: what a webhook's author codes against.
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Event:
        target = raw.get("target") or {}
        return cls(
            id=str(raw["id"]),
            action=str(raw["action"]),
            repository=str(target.get("repository", "")),
            tag=target.get("tag") or None,
            digest=str(target.get("digest", "")),
            size=int(target.get("size") or target.get("length") or 0),
            media_type=str(target.get("mediaType", "")),
            user=(raw.get("actor") or {}).get("name") or None,
            timestamp=str(raw.get("timestamp", "")),
            user_agent=str((raw.get("request") or {}).get("useragent", "")),
            method=str((raw.get("request") or {}).get("method", "")),
            raw=raw,
        )

    @property
    def sent(self) -> float:
        """When the registry made the event (wall-clock seconds; 0.0 if it has no time)."""
        try:  # 2.8 writes nanoseconds: Python reads microseconds
            text = re.sub(r"(\.\d{6})\d*", r"\1", self.timestamp).replace("Z", "+00:00")
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            return 0.0

    @property
    def is_manifest(self) -> bool:
        return "manifest" in self.media_type

    @property
    def what(self) -> str:
        """``manifest`` or ``blob``; a delete names no media type: ``manifest`` when it has a
        digest, ``tag`` when only a tag (deleting a manifest sends one of each)."""
        if self.action == "delete":
            return "manifest" if self.digest else "tag"
        return "manifest" if self.is_manifest else "blob"

    def line(self) -> str:
        """One line: action, manifest/blob/tag, repository[:tag], digest."""
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.action:<7}{self.what:<9}{self.repository}{tag} {self.digest}".rstrip()

    def row(self) -> dict[str, str | int]:
        """The event as a table row."""
        return {
            "action": self.action,
            "repository": self.repository,
            "tag": self.tag or "",
            "what": self.what,
            "digest": self.digest[:19],
            "size": self.size,
            "user": self.user or "(anonymous)",
        }


class Listener:
    """Receives registry events on ``host:port`` (port 0: any free one, kept across restarts).

    >>> with Listener("172.20.0.1") as events:                     # doctest: +SKIP
    ...     RegistryConfig(stage="persistent", notify=events.url, network="reglab-net")
    """

    def __init__(self, host: str, port: int = 0) -> None:
        self.host, self.port = host, port
        self.events: list[Event] = []
        #: (time of arrival, event) for every event received, resent ones too. Wall-clock
        #: seconds, as the registry's ``timestamp`` (containers share this machine's clock).
        self.deliveries: list[tuple[float, Event]] = []
        self.callbacks: list[Callable[[Event], None]] = []
        self._seen: set[str] = set()
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> Listener:
        """Listen (again, on the same port once one was chosen); return at once."""
        if self._server is not None:
            return self
        try:
            server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for events on {self.host}:{self.port}: {exc.strerror}",
                "the address must be this machine's (the network's gateway); pick another port",
            ) from None
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, name="reglab-events", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening: the registry's POSTs are refused and it retries them later."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def receive(self, envelope: dict[str, Any]) -> None:
        """Record the events of one envelope (each id once in :attr:`events`)."""
        parsed = [Event.parse(raw) for raw in envelope.get("events") or []]
        now = time.time()
        with self._changed:
            for event in parsed:
                self.deliveries.append((now, event))
                if event.id not in self._seen:
                    self._seen.add(event.id)
                    self.events.append(event)
                    for callback in self.callbacks:
                        callback(event)
            self._changed.notify_all()

    def wait_for(
        self, found: Callable[[list[Event]], bool], timeout: float = 30.0, what: str = "events"
    ) -> list[Event]:
        """Wait until ``found(events)`` is true; return the events. The probe sleeps on the
        arrivals, not on a clock: each one wakes it at once."""

        def arrived() -> list[Event] | None:
            with self._changed:
                if self._changed.wait_for(lambda: found(self.events), timeout=DEFAULT_INTERVAL):
                    return list(self.events)
                raise NotYet(f"{len(self.events)} event(s) received so far")

        try:
            return poll(what, arrived, timeout=timeout, interval=0)
        except WaitTimeout as exc:
            raise RegistryError(
                f"{what} did not arrive within {timeout:g} s ({exc.seen})",
                "check that the registry was started with notify= this listener's URL, "
                "and 'docker logs' of the registry",
            ) from None

    def flush(self, api: RegistryClient, repository: str, timeout: float = 30.0) -> list[Event]:
        """Wait until every event the registry queued so far has arrived; return the events.

        The registry sends one endpoint's events in order, so a marker made now arrives after
        all of them: waiting for it waits for them, without sleeping. The marker is an empty
        blob pushed to ``repository`` with a user agent of its own (0 bytes; no manifest uses
        it, so garbage collection removes it); it is left out of :attr:`events`.
        """
        marker = f"reglab-flush/{uuid.uuid4().hex}"
        api.upload_blob(repository, b"", headers={"User-Agent": marker})
        self.wait_for(
            lambda events: any(e.user_agent == marker for e in events), timeout, "the marker event"
        )
        with self._changed:
            self.events = [e for e in self.events if e.user_agent != marker]
            self.deliveries = [(t, e) for t, e in self.deliveries if e.user_agent != marker]
            return list(self.events)

    def clear(self) -> None:
        with self._changed:
            self.events.clear()
            self.deliveries.clear()
            self._seen.clear()


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            try:
                length = int(self.headers.get("Content-Length") or 0)
                envelope = json.loads(self.rfile.read(length))
                if not isinstance(envelope, dict):
                    raise ValueError("not an envelope")
                listener.receive(envelope)
            except (ValueError, KeyError, TypeError):  # not the registry's JSON: refused, quietly
                self.send_response(400)
                self.end_headers()
                return
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the notebook shows events, not an access log

    return Handler


__all__ = [
    "BLOB_TYPE", "ENVELOPE_TYPE", "Event", "Listener", "endpoints_ignoring", "listener_port",
]  # fmt: skip
