"""Image names, read the way Docker reads them."""

from __future__ import annotations


def parse_reference(name: str) -> tuple[str, str, str]:
    """Split an image name into (registry host, repository, tag) the way Docker reads it.

    The first part is a registry host only if it has a '.' or ':' or is ``localhost``;
    otherwise the image is on Docker Hub (``docker.io``), where one-word names live under
    ``library/``: ``hello-world`` is ``docker.io/library/hello-world:latest``.
    """
    name = name.split("@", 1)[0]
    named = named_registry(name)
    host, remainder = (named, name.partition("/")[2]) if named else ("docker.io", name)
    if host == "docker.io" and "/" not in remainder:
        remainder = f"library/{remainder}"
    repository, tag = split_ref(remainder)
    return host, repository, tag


def named_registry(ref: str) -> str | None:
    """The registry host ``ref`` names itself, None when it names none (Docker Hub's)."""
    first, slash, _ = ref.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def split_ref(ref: str) -> tuple[str, str]:
    """Split ``host:port/repo:tag`` into (``host:port/repo``, ``tag``); default tag latest."""
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag:
        return ref, "latest"
    return name, tag


def is_local_name(ref: str) -> bool:
    """True for a name in a registry other than Docker Hub (one the workshop gave out)."""
    return parse_reference(ref)[0] != "docker.io"
