"""The preflight check (``reglab doctor``): everything a registry of the workshop needs.

A workshop room fails in a handful of predictable ways; each
:class:`~reglab.base.errors.Problem` carries the fix, so a learner can act on it without asking.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from reglab.base.errors import EngineError, Problem
from reglab.base.settings import DEFAULT_NAME
from reglab.base.versions import DEFAULT_VERSION
from reglab.engine.connection import connect, port_problem, writable_problem
from reglab.images.build import missing_images
from reglab.images.recipes import FOUNDATION


def preflight(
    port: int,
    workdir: Path,
    name: str = DEFAULT_NAME,
    stage: str = FOUNDATION,
    registries: Sequence[str] = (DEFAULT_VERSION,),
) -> list[Problem]:
    """Check everything ``stage`` needs (its images: by default the foundation's, what notebooks
    00-07 run); return the problems found (empty when ready).

    A port held by reglab's own registry of the same name is not a problem: ``up`` replaces it.
    """
    problems: list[Problem] = []
    client = None
    try:
        client = connect()
    except EngineError as exc:
        problems.append(exc.as_problem())

    if client is not None:
        problems += [
            Problem(
                f"image {image} is missing",
                f"run 'reglab images --stage {stage}' (pulls, or builds it offline), "
                "or 'reglab images --load FILE.tar' in a room without network",
            )
            for image in missing_images(client, stage, registries)
        ]
    for problem in (port_problem(client, port, allowed_owner=name), writable_problem(workdir)):
        if problem:
            problems.append(problem)
    return problems
