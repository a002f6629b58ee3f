"""The table of the workshop's images: per image, how it is made, what it needs from this
machine, and which stages (and so which notebooks) need it.

Stages nest like the notebooks: the *foundation* (the local, persistent, tls, auth and mirror
stages: notebooks 00-07) needs three images; *token* (notebook 08) adds the token server's two;
*swarm* (notebook 09, whose front also routes to token servers) adds the store, the cache and
the front; *node* (notebook 11) adds Debian's containerd and crictl; *supply* (notebook 12)
adds the signature gate. So a room makes only
what its notebooks run, and notebook 00 needs neither
debootstrap nor root. ``reglab.images.build.ensure_images`` walks this table in order (an
image's base comes before it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import docker

from reglab.base import settings
from reglab.base.errors import ConfigError, ImageError
from reglab.base.progress import ProgressCallback
from reglab.base.versions import DEFAULT_VERSION, V2, V3, VERSIONS, registry_version
from reglab.images import debian, node, programs, services
from reglab.images.context import source_digest

FOUNDATION, TOKEN, SWARM, NODE, SUPPLY = "foundation", "token", "swarm", "node", "supply"
#: What ``--all`` asks for: every image (what the offline tarball holds).
ALL = "all"
#: The stages in the order they build on each other.
LEVELS = (FOUNDATION, TOKEN, SWARM, NODE, SUPPLY)
#: Every stage name reglab knows (the registry's stages are the foundation's), and its level.
STAGES = {
    FOUNDATION: FOUNDATION,
    "local": FOUNDATION,
    "persistent": FOUNDATION,
    "tls": FOUNDATION,
    "auth": FOUNDATION,
    "mirror": FOUNDATION,
    TOKEN: TOKEN,
    SWARM: SWARM,
    NODE: NODE,
    SUPPLY: SUPPLY,
    ALL: SUPPLY,
}
#: The notebooks past the foundation, by number.
NOTEBOOK_STAGES = {"08": TOKEN, "09": SWARM, "11": NODE, "12": SUPPLY}


@dataclass(frozen=True)
class BuildOptions:
    """What the caller of ``ensure_images`` passes on to a build."""

    progress: ProgressCallback | None = None
    registry_binary: str | Path | None = None


@dataclass(frozen=True)
class Recipe:
    """How one image is made here, and who needs it."""

    ref: str
    #: The first stage that needs it (every later one does too).
    stage: str
    #: Builds it on this machine; returns the ref.
    make: Callable[[docker.DockerClient, BuildOptions], str]
    #: reglab's files it is made from: their hash is its ``org.reglab.source`` label.
    sources: Callable[[], Sequence[bytes]]
    #: Pulled by this exact tag from Docker Hub first (when it answers and not offline).
    pullable: bool = False
    #: The exact release tag to pull instead of ``ref`` (then tagged as ``ref``): registry:3
    #: is pulled as registry:3.1.2, so every room runs the release reglab was tested with.
    release_tag: str | None = None
    #: The registry version this image is the server of ("3" or "2"; None: not a registry).
    registry: str | None = None
    #: The Debian packages this machine needs to build it (what an error names).
    host_packages: tuple[str, ...] = ()
    #: The Debian packages debootstrapped into it: needs Debian's apt and root, once.
    debootstrap: tuple[str, ...] = ()

    def digest(self) -> str:
        return source_digest(self.sources())

    def host_problem(self) -> ImageError | None:
        """Why this machine cannot make the image (None when it can try)."""
        if not self.debootstrap:
            return None  # the builders themselves name a missing program and its package
        return debian.host_problem(self.ref, list(self.debootstrap))


def _debian(ref: str, packages: list[str], stage: str, changes: list[str] | None = None) -> Recipe:
    return Recipe(
        ref,
        stage,
        lambda client, _: debian.make_debian_image(client, ref, packages, changes=changes),
        lambda: debian.sources_of(packages, changes or []),
        host_packages=("debootstrap",),
        debootstrap=tuple(packages),
    )


RECIPES = (
    Recipe(
        V3.image,
        FOUNDATION,
        lambda client, o: programs.build_registry3_image(client, progress=o.progress),
        programs.registry3_sources,
        pullable=True,
        release_tag=V3.release_tag,
        registry=V3.major,
    ),
    Recipe(
        V2.image,
        FOUNDATION,
        lambda client, o: programs.build_registry_image(
            client, binary=o.registry_binary, progress=o.progress
        ),
        programs.registry_sources,
        pullable=True,
        release_tag=V2.release_tag,
        host_packages=("docker-registry",),
        registry=V2.major,
    ),
    Recipe(
        settings.HELLO_IMAGE,
        FOUNDATION,
        lambda client, o: programs.build_hello_image(client, progress=o.progress),
        programs.hello_sources,
        pullable=True,
        host_packages=("gcc", "libc6-dev"),
    ),
    Recipe(
        settings.TOOLS_IMAGE,
        FOUNDATION,
        lambda client, o: programs.build_tools_image(client, progress=o.progress),
        programs.tools_sources,
        host_packages=("busybox-static",),
    ),
    _debian(settings.PYTHON_IMAGE, services.PYTHON_PACKAGES, TOKEN),
    Recipe(
        settings.TOKEN_IMAGE,
        TOKEN,
        lambda client, o: services.build_token_image(client, progress=o.progress),
        services.token_sources,
    ),
    Recipe(
        settings.S3_IMAGE,
        SWARM,
        lambda client, o: services.build_s3_image(client, progress=o.progress),
        services.s3_sources,
    ),
    _debian(settings.REDIS_IMAGE, services.SERVICE_PACKAGES, SWARM, ['CMD ["redis-server"]']),
    _debian(settings.FRONT_IMAGE, services.SERVICE_PACKAGES, SWARM, ['CMD ["haproxy", "-v"]']),
    _debian(settings.CONTAINERD_IMAGE, node.CONTAINERD_PACKAGES, NODE),
    Recipe(
        settings.NODE_IMAGE,
        NODE,
        lambda client, o: node.build_node_image(client, progress=o.progress),
        node.node_sources,
        host_packages=("golang",),
    ),
    Recipe(
        settings.GATE_IMAGE,
        SUPPLY,
        lambda client, o: services.build_gate_image(client, progress=o.progress),
        services.gate_sources,
    ),
)
#: Every image, in the order they are made.
WORKSHOP_IMAGES = tuple(recipe.ref for recipe in RECIPES)


def stage_level(stage: str) -> str:
    """The level (foundation, token or swarm) of a stage name or a notebook ("08-token-auth")."""
    notebook = re.match(r"(\d\d)(?:\D|$)", stage)
    if notebook:
        return NOTEBOOK_STAGES.get(notebook.group(1), FOUNDATION)
    if stage not in STAGES:
        raise ConfigError(f"no images for stage {stage!r}", f"choose one of: {', '.join(STAGES)}")
    return STAGES[stage]


def recipes_for(stage: str = FOUNDATION, registries: Sequence[str] | None = None) -> list[Recipe]:
    """The recipes of the images ``stage`` needs, bases first, with the server of each registry
    version in ``registries`` (default: the workshop's, 3; ``"all"`` makes both)."""
    level = LEVELS.index(stage_level(stage))
    wanted = (
        set(VERSIONS)
        if stage == ALL
        else {registry_version(r).major for r in (registries or (DEFAULT_VERSION,))}
    )
    return [
        recipe
        for recipe in RECIPES
        if LEVELS.index(recipe.stage) <= level
        and (recipe.registry is None or recipe.registry in wanted)
    ]
