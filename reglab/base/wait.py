"""The one way reglab waits: poll a probe until it says done, or fail in one line.

Containers, registries, swarm services and listeners all become ready "some time later". A
fixed sleep is either too short on a loaded machine or wasted on a fast one, so everything
polls. Every poll in reglab goes through :func:`poll`, so every wait behaves the same at its
deadline: it raises :class:`WaitTimeout`, whose one line names what was awaited and the last
thing the probe saw (never a silent return, never "break and go on").

A probe returns the result when it is done and ``None`` while it is not; it may raise
:class:`NotYet` to say what it saw this time, which the timeout's message then quotes::

    def answered() -> int | None:
        status = probe_status()
        if status not in (200, 401):
            raise NotYet(f"GET /v2/ answered {status}")
        return status

    status = poll("the registry to answer GET /v2/", answered, timeout=30)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from reglab.base.errors import ReglabError

T = TypeVar("T")

#: How often a probe is asked, by default: fast enough that a 0.3 s start is not felt, slow
#: enough that an engine call per poll does not load a 2-core machine.
DEFAULT_INTERVAL = 0.2


class NotYet(Exception):  # noqa: N818 - it is not an error: the probe is saying "not yet"
    """Raised by a probe: not done, and here is what it saw (quoted if the wait times out)."""

    def __init__(self, seen: str) -> None:
        super().__init__(seen)
        self.seen = seen


class WaitTimeout(ReglabError):
    """A wait reached its deadline; the message names what and the last thing seen."""

    def __init__(self, problem: str, fix: str | None = None, seen: str = "") -> None:
        super().__init__(problem, fix)
        self.seen = seen


def poll(
    what: str,
    probe: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = DEFAULT_INTERVAL,
    fix: str | None = None,
) -> T:
    """Call ``probe`` until it returns something other than ``None``; return that.

    ``what`` completes "waited for ...": for example "the registry to answer at URL". The
    probe is always called at least once, and once more at the deadline, so a slow machine
    never loses a result that arrived during the last interval. A probe may raise
    :class:`NotYet` (not done, with what it saw) or any :class:`ReglabError` (stop waiting:
    it cannot become ready, for example a container that exited).
    """
    deadline = time.monotonic() + timeout
    seen = ""
    while True:
        last_try = time.monotonic() >= deadline
        try:
            result = probe()
        except NotYet as exc:
            seen = exc.seen
        else:
            if result is not None:
                return result
        if last_try:
            tail = f"; last seen: {seen}" if seen else ""
            raise WaitTimeout(f"waited {timeout:g} s for {what}{tail}", fix, seen=seen)
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
