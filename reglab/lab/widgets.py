"""Widgets for JupyterLab: a login form, a registry browser and a status panel.

Each is a thin layer over plain reglab functions (which the tests call directly): the widget
only collects input and shows results.
"""

from __future__ import annotations

import html
from typing import Any

import docker
import ipywidgets as widgets

from reglab.auth.htpasswd import Htpasswd
from reglab.base.errors import ReglabError
from reglab.engine.connection import connect
from reglab.lab import picture
from reglab.registry import gc
from reglab.registry.container import Registry, owned_registries
from reglab.registry.endpoint import Endpoint
from reglab.registry.events import Event, Listener
from reglab.registry.login import Credentials, login


def add_user_and_login(
    engine: docker.DockerClient, registry: Registry, user: str, password: str
) -> str:
    """Add (or update) a user in the registry's htpasswd, then log the engine in as them.

    Returns a one-line report; raises ReglabError (one line) when anything is wrong.
    """
    credentials = Credentials(user, password)
    users = Htpasswd.load(registry.config.paths.htpasswd)
    users.set(credentials.user, credentials.password)
    users.save()
    answer = login(engine, registry.address, credentials)
    return f"✔ {credentials.user} is in {users.path.name} and can log in: {answer}"


class LoginForm(widgets.VBox):
    """User name, password (never echoed) and a button that calls :func:`add_user_and_login`.

    The password field is emptied as soon as it has been read, so it is not left in the widget
    for anyone at the screen to read back. (The engine client keeps it in memory for later
    pushes and pulls until ``logout``, as ``docker login`` does.)
    """

    def __init__(self, engine: docker.DockerClient, registry: Registry) -> None:
        self.engine, self.registry = engine, registry
        self.user = widgets.Text(description="user", placeholder="e.g. alice")
        self.password = widgets.Password(description="password")
        self.button = widgets.Button(description="Add user and log in", button_style="primary")
        self.message = widgets.HTML(value="")
        self.button.on_click(self.submit)
        super().__init__([self.user, self.password, self.button, self.message])

    def submit(self, _: Any = None) -> None:
        password, self.password.value = self.password.value, ""
        try:
            text = add_user_and_login(self.engine, self.registry, self.user.value.strip(), password)
        except ReglabError as exc:
            text = f"✘ {exc}"
        self.message.value = html.escape(text)


def _table(rows: list[tuple[str, str]]) -> str:
    cells = "".join(
        f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
        f"<td><code>{html.escape(v)}</code></td></tr>"
        for k, v in rows
    )
    return f"<table>{cells}</table>"


class RegistryBrowser(widgets.VBox):
    """Repositories -> tags -> digest, size and layers (or platforms, for an image index),
    read through the registry's HTTP API; and a delete that says first what will go.

    Works with TLS (verified against the workshop CA) and with auth (pass ``auth``), on a
    single registry or the swarm's front alike (any Endpoint). The catalog is read page by
    page, so every repository shows.
    """

    def __init__(self, registry: Endpoint, auth: tuple[str, str] | None = None) -> None:
        self.api = registry.client(auth=auth)
        self.repositories = widgets.Select(description="repository", rows=6)
        self.tags = widgets.Select(description="tag", rows=6)
        self.details = widgets.HTML(value="")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.delete_button = widgets.Button(description="Delete…", icon="trash")
        self.confirm_button = widgets.Button(
            description="Delete them", button_style="danger", layout={"display": "none"}
        )
        self.cancel_button = widgets.Button(description="Cancel", layout={"display": "none"})
        self.message = widgets.HTML(value="")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.delete_button.on_click(lambda _: self.ask_delete())
        self.confirm_button.on_click(lambda _: self.delete())
        self.cancel_button.on_click(lambda _: self._confirming(False))
        self.repositories.observe(lambda _: self._show_tags(), names="value")
        self.tags.observe(lambda _: self._show_details(), names="value")
        buttons = [self.refresh_button, self.delete_button, self.confirm_button, self.cancel_button]
        super().__init__(
            [
                widgets.HBox(buttons),
                self.message,
                widgets.HBox([self.repositories, self.tags]),
                self.details,
            ]
        )
        self.refresh()

    def refresh(self) -> None:
        """Read the catalog again (after a push, say)."""
        try:
            self.repositories.options = self.api.catalog()
        except ReglabError as exc:
            self.repositories.options = []
            self.details.value = html.escape(f"✘ {exc}")

    def _show_tags(self) -> None:
        repo = self.repositories.value
        self.tags.options = self.api.tags(repo) if repo else []

    def _show_details(self) -> None:
        repo, tag = self.repositories.value, self.tags.value
        if not (repo and tag):
            self.details.value = ""
            return
        info = self.api.image_summary(repo, tag)
        rows = [
            ("image", f"{repo}:{tag}"),
            ("digest", info.digest),
            ("size", f"{info.size:,} bytes"),
        ]
        if info.platforms:  # an index: one image per platform
            rows.append(("platforms", str(len(info.platforms))))
            rows += [(platform, digest) for platform, digest in info.platforms]
        else:
            rows.append(("layers", str(len(info.layers))))
            rows += [
                (f"layer {n + 1}", f"{d} ({s:,} bytes)") for n, (d, s) in enumerate(info.layers)
            ]
        self.details.value = _table(rows)

    def _confirming(self, on: bool) -> None:
        self.confirm_button.layout.display = "" if on else "none"
        self.cancel_button.layout.display = "" if on else "none"
        if not on:
            self.message.value = ""

    def ask_delete(self) -> list[str]:
        """Say which tags a delete of the selected image removes (all that share its digest),
        and wait for "Delete them"."""
        repo, tag = self.repositories.value, self.tags.value
        if not (repo and tag):
            self.message.value = "✘ choose a repository and a tag first"
            return []
        try:
            digest = self.api.manifest_digest(repo, tag)
            going = gc.tags_of(self.api, repo, digest)
        except ReglabError as exc:
            self.message.value = html.escape(f"✘ {exc}")
            return []
        self.message.value = html.escape(
            f"Delete {repo}@{digest}? These tags go with it: {', '.join(going)}. "
            "(Its blobs stay on disk until garbage collection: reglab gc.)"
        )
        self._confirming(True)
        return going

    def delete(self) -> None:
        """Delete the selected image by its digest (every tag listed goes), then refresh."""
        repo, tag = self.repositories.value, self.tags.value
        try:
            deleted = gc.delete_image(self.api, repo, tag)  # by digest: what it asked
        except ReglabError as exc:
            self.message.value = html.escape(f"✘ {exc}")
            return
        self._confirming(False)
        self.message.value = html.escape(
            f"✔ deleted {repo}@{deleted.digest}; gone: {', '.join(deleted.tags)}"
        )
        self._show_tags()


class StatusPanel(widgets.VBox):
    """Which reglab registries exist: stage, port, TLS, auth. Refreshed on demand."""

    def __init__(self, engine: docker.DockerClient | None = None) -> None:
        self.engine = engine
        self.table = widgets.HTML(value="")
        #: What runs, drawn from the engine (reglab.lab.picture).
        self.picture = widgets.HTML(value="")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.refresh_button.on_click(lambda _: self.refresh())
        super().__init__([self.refresh_button, self.table, self.picture])
        self.refresh()

    def refresh(self) -> None:
        found = owned_registries(self.engine)
        self.picture.value = ""
        if not found:
            self.table.value = "no reglab registry is running"
            return
        try:
            self.picture.value = picture.svg(picture.of_engine(self.engine or connect()))
        except (FileNotFoundError, RuntimeError) as exc:  # no Graphviz: the table is enough
            self.picture.value = html.escape(str(exc))
        head = "".join(
            f"<th style='padding-right:1em'>{h}</th>"
            for h in ("name", "state", "stage", "port", "TLS", "auth")
        )
        body = "".join(
            "<tr>"
            + "".join(
                f"<td style='padding-right:1em'>{html.escape(str(v))}</td>"
                for v in (
                    r.name,
                    r.state,
                    r.stage,
                    ", ".join(r.ports) or "-",
                    "on" if r.tls else "off",
                    "on" if r.auth else "off",
                )
            )
            + "</tr>"
            for r in found
        )
        self.table.value = f"<table><tr>{head}</tr>{body}</table>"


def events_table(events: list[Event], last: int = 12) -> str:
    """The last ``last`` events as an HTML table (newest at the bottom)."""
    rows = [e.row() for e in events[-last:]]
    if not rows:
        return "<i>no events yet: push, pull or delete something</i>"
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table><small>{len(events)} event(s) in all</small>"


class EventTable(widgets.VBox):
    """A live table of the registry's events: it grows as the listener receives them."""

    def __init__(self, listener: Listener, last: int = 12) -> None:
        self.last = last
        self.listener = listener
        self.table = widgets.HTML(events_table(listener.events, last))
        super().__init__([self.table])
        listener.callbacks.append(self._received)

    def _received(self, event: Event) -> None:
        # Called in the listener's thread; a widget update is a message to the front end.
        self.table.value = events_table(self.listener.events, self.last)

    def __repr__(self) -> str:  # what nbval compares: the same on every run
        return f"EventTable(last={self.last})"
