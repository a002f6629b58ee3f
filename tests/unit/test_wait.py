"""The one way to wait: returns what the probe found, or fails in one line naming what it saw."""

from __future__ import annotations

import time

import pytest

from reglab.base.errors import ReglabError
from reglab.base.wait import NotYet, WaitTimeout, poll


def test_returns_the_first_result_that_is_not_none() -> None:
    answers = iter([None, None, 401])
    assert poll("a status", lambda: next(answers), timeout=5, interval=0) == 401


def test_a_false_but_present_result_counts_as_done() -> None:
    assert poll("zero", lambda: 0, timeout=1) == 0


def test_timeout_raises_one_line_with_what_and_the_last_thing_seen() -> None:
    calls = []

    def probe() -> None:
        calls.append(1)
        raise NotYet(f"answered 503 ({len(calls)})")

    start = time.monotonic()
    with pytest.raises(WaitTimeout) as info:
        poll("the registry to answer", probe, timeout=0.3, interval=0.05, fix="read its logs")
    assert time.monotonic() - start < 2
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("waited 0.3 s for the registry to answer; last seen: answered 503")
    assert message.endswith("- fix: read its logs")
    assert info.value.seen == f"answered 503 ({len(calls)})"
    assert len(calls) >= 2  # at least once, and once more at the deadline


def test_a_reglab_error_from_the_probe_stops_the_wait_at_once() -> None:
    def probe() -> None:
        raise ReglabError("the container exited", "docker logs NAME")

    start = time.monotonic()
    with pytest.raises(ReglabError, match="the container exited"):
        poll("a container", probe, timeout=10)
    assert time.monotonic() - start < 1
