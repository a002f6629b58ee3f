"""Progress reporting for pulls, pushes and image builds.

reglab's push/pull/build functions take a ``progress`` callback that receives
:class:`reglab.images.Progress` events (per-layer bytes). :class:`LayerTotals` adds them up;
:class:`TextProgress` prints a plain line on the command line.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from .images import COMPLETE, Progress

DONE = {"Pushed", "Pull complete", "Layer already exists", "Already exists", "Download complete"}


class LayerTotals:
    """Bytes done and total over all layers seen so far."""

    def __init__(self) -> None:
        self.layers: dict[str, tuple[int, int]] = {}
        self.done: set[str] = set()

    def add(self, event: Progress) -> None:
        if not event.layer:
            return
        if event.status in DONE:
            self.done.add(event.layer)
        if event.total:
            self.layers[event.layer] = (event.current or 0, event.total)

    @property
    def current(self) -> int:
        return sum(self.layers[k][1] if k in self.done else self.layers[k][0]
                   for k in self.layers)

    @property
    def total(self) -> int:
        return sum(total for _, total in self.layers.values())

    def summary(self, action: str) -> str:
        return (f"{action}: {len(self.done)} layer(s) done, "
                f"{self.current / 1e6:.1f}/{self.total / 1e6:.1f} MB")


class TextProgress:
    """A progress callback that prints at most one line per ``interval`` seconds."""

    def __init__(self, out: TextIO | None = None, interval: float = 1.0) -> None:
        self.out = out or sys.stderr
        self.interval = interval
        self.totals = LayerTotals()
        self._last = 0.0

    def __call__(self, event: Progress) -> None:
        if event.status == COMPLETE:
            if self.totals.total:
                print(self.totals.summary(event.action), file=self.out)
            return
        if event.action == "build":
            if event.status.startswith("Step "):
                print(f"build: {event.status}", file=self.out)
            return
        self.totals.add(event)
        now = time.monotonic()
        if now - self._last >= self.interval and self.totals.total:
            self._last = now
            print(self.totals.summary(event.action), file=self.out)


class NotebookProgress:
    """A progress bar in Jupyter (ipywidgets), fed by reglab's progress events.

    It is displayed once, at the first event, with the same initial state every time; later
    updates travel as widget messages, not as new outputs, so a notebook's stored outputs stay
    the same from run to run.
    """

    def __init__(self, action: str) -> None:
        self.action = action
        self.totals = LayerTotals()
        self.bar: object | None = None

    def _show(self) -> None:
        import ipywidgets as widgets
        from IPython.display import display

        self.bar = widgets.IntProgress(value=0, max=100, description=self.action)
        self.label = widgets.Label(value="")
        display(widgets.HBox([self.bar, self.label]))

    def __call__(self, event: Progress) -> None:
        if self.bar is None:
            self._show()
        if event.status == COMPLETE:  # small layers may never report byte totals
            self.bar.value = 100  # type: ignore[attr-defined]
            self.label.value = self.totals.summary(event.action) if self.totals.total else "done"
            return
        if event.action == "build":
            self.label.value = event.status[:80]
            return
        self.totals.add(event)
        if self.totals.total:
            self.bar.value = int(100 * self.totals.current / self.totals.total)  # type: ignore[attr-defined]
            self.label.value = self.totals.summary(event.action)


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where widgets can be shown)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def for_display(action: str) -> NotebookProgress | TextProgress | None:
    """The progress reporter that suits where we run: a bar in Jupyter, none elsewhere."""
    return NotebookProgress(action) if in_notebook() else None
