"""Progress of pulls, pushes and image builds, as events, and a plain text reporter.

reglab's push/pull/build functions take a ``progress`` callback that receives :class:`Progress`
events (per-layer bytes). :class:`LayerTotals` adds them up; :class:`TextProgress` prints a
plain line on the command line. The notebook's progress bar lives in ``reglab.lab.progress``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class Progress:
    """One progress event: which layer, what is happening, bytes done of total (when known)."""

    action: str
    status: str
    layer: str | None = None
    current: int | None = None
    total: int | None = None


ProgressCallback = Callable[[Progress], None]
#: The status of the last event of a push, pull or build that succeeded.
COMPLETE = "complete"
#: Engine statuses that mean a layer is finished.
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
        return sum(total if k in self.done else cur for k, (cur, total) in self.layers.items())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.layers.values())

    def summary(self, action: str) -> str:
        return (
            f"{action}: {len(self.done)} layer(s) done, "
            f"{self.current / 1e6:.1f}/{self.total / 1e6:.1f} MB"
        )


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
