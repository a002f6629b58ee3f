"""The two registry versions the workshop runs: distribution 3 (the default, what
``docker run registry`` gives today) and 2.8 (frozen since 2023, what older deployments run).

Everything that differs between them *as data* lives here, once: the image, the release it is
pinned to, where the configuration file sits inside the image, and the Redis key's shape. The
rest of reglab asks :func:`registry_version` and never compares version strings itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from reglab.base.errors import ConfigError

#: The Go module of registry 3, and the release built when Docker Hub cannot be reached (the
#: newest 3.1.x the module proxy serves; 3.1.2 fixes a proxied manifest whose digest was not
#: verified again).
V3_MODULE = "github.com/distribution/distribution/v3"
V3_RELEASE = "3.1.2"


@dataclass(frozen=True)
class RegistryVersion:
    """One registry version as the workshop runs it."""

    #: "3" or "2": what ``--registry`` and ``REGLAB_REGISTRY`` take.
    major: str
    #: The image every stage runs (made by ``reglab images``).
    image: str
    #: The exact tag pulled from Docker Hub when it answers (then tagged as :attr:`image`).
    release_tag: str
    #: The configuration file inside the image (the collector and the swarm's replicas read it).
    config_path: str
    #: What ``registry --version`` says the program is, for status and doctor.
    label: str

    @property
    def v3(self) -> bool:
        return self.major == "3"


V3 = RegistryVersion(
    "3",
    "registry:3",
    f"registry:{V3_RELEASE}",
    "/etc/distribution/config.yml",
    f"distribution {V3_RELEASE}",
)
#: Debian's docker-registry package (2.8.x in every Debian release) is how 2.8 is made offline.
V2 = RegistryVersion("2", "registry:2", "registry:2.8", "/etc/docker/registry/config.yml", "2.8")

VERSIONS = {"3": V3, "2": V2}
DEFAULT_VERSION = "3"


def registry_version(value: str | RegistryVersion | None = None) -> RegistryVersion:
    """The version ``value`` names ("3", "2", "v3", "2.8", ...); None gives the default."""
    if isinstance(value, RegistryVersion):
        return value
    text = (value or DEFAULT_VERSION).strip().lower().removeprefix("v")
    major = text.split(".", 1)[0]
    if major not in VERSIONS or (major == "2" and text not in ("2", "2.8")):
        raise ConfigError(
            f"registry version {value!r} is not one reglab runs",
            "give 3 (distribution 3.1, the default) or 2 (distribution 2.8)",
        )
    return VERSIONS[major]


def version_of_image(image: str) -> RegistryVersion | None:
    """The version whose image ``image`` is (None for an image reglab did not name)."""
    return next((v for v in VERSIONS.values() if image in (v.image, v.release_tag)), None)


__all__ = [
    "DEFAULT_VERSION",
    "V2",
    "V3",
    "V3_MODULE",
    "V3_RELEASE",
    "VERSIONS",
    "RegistryVersion",
    "registry_version",
    "version_of_image",
]
