"""Making the images a stage needs available, offline when Docker Hub is out of reach.

:func:`ensure_images` walks the table in ``reglab.images.recipes``, keeping to the images the
asked stage needs: an image that is present and current stays; else it is pulled by its exact
tag (only ``registry:3``, ``registry:2`` and ``hello-world`` exist on Docker Hub, and the
registries are pulled by release: ``registry:3.1.2``; never when offline); else it
is built on this machine. A failed pull says why, in one line, before the build. An image reglab
made from its own files is *current* while its ``org.reglab.source`` label is the hash of
those files today; a changed file makes it again.

A room without network can also be provisioned from a tarball (``reglab.images.archive``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
import docker.errors

from reglab.base.errors import ReglabError
from reglab.base.labels import BUILT_LABEL
from reglab.base.progress import ProgressCallback
from reglab.engine.transfer import exists, pull
from reglab.images.context import SOURCE_LABEL, BuildContext
from reglab.images.programs import build_hello_image, build_registry_image, build_tools_image
from reglab.images.recipes import (
    ALL,
    FOUNDATION,
    RECIPES,
    WORKSHOP_IMAGES,
    BuildOptions,
    Recipe,
    recipes_for,
)
from reglab.images.services import build_s3_image, build_token_image

#: Receives one line for the user: why a pull failed, why an outdated image is kept.
Notice = Callable[[str], None]


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def missing_images(
    client: docker.DockerClient, stage: str = FOUNDATION, registries: Sequence[str] | None = None
) -> list[str]:
    """The images ``stage`` needs that the engine does not have yet."""
    return [
        recipe.ref for recipe in recipes_for(stage, registries) if not exists(client, recipe.ref)
    ]


def image_current(client: docker.DockerClient, recipe: Recipe) -> bool:
    """False when the image is one reglab made and its label names other versions of reglab's
    files than today's. An image reglab did not make (pulled from Docker Hub) is current."""
    labels = client.images.get(recipe.ref).labels or {}
    return BUILT_LABEL not in labels or labels.get(SOURCE_LABEL) == recipe.digest()


def ensure_images(
    client: docker.DockerClient,
    stage: str = FOUNDATION,
    *,
    registries: Sequence[str] | None = None,
    offline: bool = False,
    registry_binary: str | Path | None = None,
    progress: ProgressCallback | None = None,
    notice: Notice | None = None,
) -> dict[str, str]:
    """Make the images ``stage`` needs available (a stage, a notebook such as ``"08"``, or
    ``"all"``); return how each was obtained: present, pulled or built.

    ``notice`` receives the one line that says why a pull failed or why an outdated image is
    kept (default: standard error). CLI: ``reglab images --stage STAGE``.
    """
    say = notice or _to_stderr
    options = BuildOptions(progress=progress, registry_binary=registry_binary)
    pulls = not offline
    how: dict[str, str] = {}
    for recipe in recipes_for(stage, registries):
        present = exists(client, recipe.ref)
        if present and image_current(client, recipe):
            how[recipe.ref] = "present"
            continue
        if pulls and recipe.pullable:
            try:
                _pull(client, recipe, progress)
                how[recipe.ref] = "pulled"
                continue
            except ReglabError as exc:
                pulls = False  # Docker Hub did not answer: not asked again for the next one
                say(f"{exc.problem[:240]}; building {recipe.ref} here instead")
        how[recipe.ref] = _build(client, recipe, present, options, say)
    return how


def _pull(client: docker.DockerClient, recipe: Recipe, progress: ProgressCallback | None) -> None:
    """Pull the recipe's image by its exact tag (its release tag when it has one)."""
    if recipe.release_tag is None:
        pull(client, recipe.ref, progress=progress)
        return
    pull(client, recipe.release_tag, progress=progress)
    repository, _, tag = recipe.ref.rpartition(":")
    client.images.get(recipe.release_tag).tag(repository, tag)


def _build(
    client: docker.DockerClient, recipe: Recipe, present: bool, options: BuildOptions, say: Notice
) -> str:
    """Build one image on this machine: the outdated build it replaces is removed, and an
    outdated image this machine cannot make again is kept, with a notice."""
    problem = recipe.host_problem()
    if problem is not None:
        if not present:
            raise problem
        say(f"{recipe.ref} is older than reglab's files for it, and kept: {problem}")
        return "present (outdated)"
    outdated = client.images.get(recipe.ref).id if present else None
    recipe.make(client, options)
    if outdated is not None and outdated != client.images.get(recipe.ref).id:
        _remove_unused(client, outdated)
    return "built"


def _remove_unused(client: docker.DockerClient, image_id: str) -> None:
    """Remove an image reglab built and no longer names, unless a container still uses it."""
    # In use (a token server still runs on it), or the base of another image: it stays.
    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(image_id)


__all__ = [
    "ALL",
    "FOUNDATION",
    "RECIPES",
    "WORKSHOP_IMAGES",
    "BuildContext",
    "build_hello_image",
    "build_registry_image",
    "build_s3_image",
    "build_token_image",
    "build_tools_image",
    "ensure_images",
    "image_current",
    "missing_images",
]
