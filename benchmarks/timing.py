"""How the benchmark times things: each pair in the same run, alternating which goes first,
medians reported (one machine's noise falls on both sides alike)."""

from __future__ import annotations

import statistics
import subprocess
import time
from collections.abc import Callable

Action = Callable[[], object]


def timed(action: Action) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def alternate_prepared(
    rounds: int, a: tuple[Action, Action], b: tuple[Action, Action]
) -> tuple[float, float]:
    """Median times of two (prepare, action) pairs, alternating which runs first; each side's
    preparation runs before its action and is not timed."""
    times_a: list[float] = []
    times_b: list[float] = []
    for n in range(rounds):
        order = [(a, times_a), (b, times_b)] if n % 2 == 0 else [(b, times_b), (a, times_a)]
        for (prepare, action), sink in order:
            prepare()
            sink.append(timed(action))
    return statistics.median(times_a), statistics.median(times_b)


def alternate(rounds: int, prepare: Action, a: Action, b: Action) -> tuple[float, float]:
    """Median times of ``a`` and ``b``, alternating which runs first; ``prepare`` before each."""
    return alternate_prepared(rounds, (prepare, a), (prepare, b))
