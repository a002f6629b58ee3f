"""A Debian base image made on this machine with ``debootstrap``: for parts that need more than
one binary and its libraries (the token server needs Python and three of its packages).

Docker Hub is out of reach in a workshop room, so nothing is pulled: ``debootstrap`` installs a
minimal Debian 12 with the packages asked for, from the Debian mirror ``apt`` already uses, into
a folder; the folder becomes an image (``docker import``). It needs Debian's apt (an Ubuntu
mirror has no ``bookworm``), root (it makes device nodes and runs ``chroot``) and about a
minute, once. Elsewhere the images come from a tarball made on a Debian machine.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

from reglab.base.errors import ImageError, docker_errors
from reglab.base.labels import BUILT_LABEL
from reglab.images.context import SOURCE_LABEL, source_digest

SUITE = "bookworm"
#: debootstrap's variant: essential packages and apt only, then the ones asked for.
VARIANT = "minbase"
#: Folders emptied from the file system before import (downloaded packages and lists).
LEFTOVERS = ("var/cache/apt/archives", "var/lib/apt/lists")
#: Where apt lists its mirrors, relative to the machine's root: deb822 first, then classic.
APT_SOURCES = ("etc/apt/sources.list.d/debian.sources", "etc/apt/sources.list")
#: The way to these images on a machine that cannot debootstrap Debian.
TARBALL_FIX = (
    "on a Debian machine run 'reglab images --save FILE.tar', then here "
    "'reglab images --load FILE.tar'"
)
#: The root of the machine whose apt is asked (a test points it at a folder of its own).
HOST_ROOT = Path("/")
#: Where a debootstrapped file system is kept as a tarball, so that another engine on this
#: machine (the test suite's second one) or a user who is not root imports it without root.
CACHE = Path("/var/cache/reglab/images")


def debian_mirror(root: Path | None = None) -> str | None:
    """The Debian mirror ``apt`` uses on the machine whose root is ``root``; None when its apt
    is not Debian's (no dpkg, or no Debian line in its sources: an Ubuntu or Fedora machine).

    A line is Debian's when its URL names ``debian`` (deb.debian.org/debian, a local
    mirror's /debian); the security archive holds updates only, so it is never the mirror.
    """
    root = HOST_ROOT if root is None else root
    if not (root / "usr/bin/dpkg").is_file():
        return None
    for name in APT_SOURCES:
        path = root / name
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            found = re.match(r"\s*(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s*)?)(\S+)", line)
            if found and "debian" in found.group(1) and "security" not in found.group(1):
                return found.group(1)
    return None


def _file_system(packages: list[str]) -> list[str]:
    """Everything that decides the file system debootstrap makes."""
    return [SUITE, VARIANT, *LEFTOVERS, *sorted(packages)]


def sources_of(packages: list[str], changes: list[str]) -> list[bytes]:
    """What an imported image is made from: the file system (suite, variant, what is emptied,
    packages) and its Dockerfile lines."""
    return [*map(str.encode, _file_system(packages)), *map(str.encode, changes)]


def _cache_key(packages: list[str]) -> str:
    return hashlib.sha256(" ".join(_file_system(packages)).encode()).hexdigest()[:16]


def _cached(ref: str, packages: list[str], cache: Path) -> Path:
    """The tarball of the file system: this image's, else one made for another image of the
    same packages (two images of the same packages share it)."""
    key = _cache_key(packages)
    cached = cache / f"{ref.replace(':', '-').replace('/', '-')}-{key}.tar"
    shared = next(iter(sorted(cache.glob(f"*-{key}.tar"))), None) if cache.is_dir() else None
    return shared if not cached.is_file() and shared is not None else cached


def host_problem(ref: str, packages: list[str]) -> ImageError | None:
    """Why this machine cannot make ``ref`` (None when it can): the file system is not cached
    and Debian's apt, debootstrap or root is missing. One line naming the image and the fix."""
    if _cached(ref, packages, CACHE).is_file():
        return None  # imported from the cache: no debootstrap, no root
    if debian_mirror() is None:
        return ImageError(
            f"{ref} is made with debootstrap from Debian's mirror, and this machine's apt is "
            "not Debian's",
            TARBALL_FIX,
        )
    if shutil.which("debootstrap") is None:
        return ImageError(
            f"debootstrap is needed to make {ref} offline",
            f"install it (sudo apt-get install debootstrap), or {TARBALL_FIX}",
        )
    if os.geteuid() != 0:
        return ImageError(
            f"making {ref} with debootstrap needs root",
            f"run 'sudo .venv/bin/reglab images --all' once, or {TARBALL_FIX}",
        )
    return None


def make_debian_image(
    client: docker.DockerClient,
    ref: str,
    packages: list[str],
    timeout: float = 900.0,
    changes: list[str] | None = None,
) -> str:
    """``debootstrap --variant=minbase --include=PACKAGES bookworm`` into a temporary folder,
    then ``docker import`` it as ``ref``; return ``ref``. The file system is kept in
    :data:`CACHE` and imported from there next time (by package list: two images of the same
    packages share it). ``changes`` are Dockerfile lines for the import, such as ``CMD``."""
    changes = changes or []
    cached = _cached(ref, packages, CACHE)
    if not cached.is_file():
        problem = host_problem(ref, packages)
        if problem is not None:
            raise problem
        _debootstrap(packages, cached, timeout)
    source = source_digest(sources_of(packages, changes))
    labels = [f"LABEL {BUILT_LABEL}=debootstrap", f"LABEL {SOURCE_LABEL}={source}"]
    with docker_errors(f"cannot import {ref}", error=ImageError):
        repository, _, tag = ref.rpartition(":")
        client.api.import_image_from_data(  # the archive becomes the image's file system
            cached.read_bytes(), repository=repository, tag=tag, changes=[*labels, *changes]
        )
    return ref


def _debootstrap(packages: list[str], cached: Path, timeout: float) -> None:
    mirror = str(debian_mirror())  # host_problem() made sure there is one
    with tempfile.TemporaryDirectory(prefix="reglab-debootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        command = [
            "debootstrap", f"--variant={VARIANT}", f"--include={','.join(packages)}",
            SUITE, str(root), mirror,
        ]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise ImageError(
                f"debootstrap took longer than {timeout:g} s", f"check the mirror {mirror}"
            ) from None
        if result.returncode != 0:
            last = (result.stdout + result.stderr).strip().splitlines()[-1:] or ["(no output)"]
            raise ImageError(f"debootstrap failed: {last[0][-300:]}", f"check the mirror {mirror}")
        for leftover in LEFTOVERS:  # a smaller image
            shutil.rmtree(root / leftover, ignore_errors=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        with tarfile.open(partial, mode="w") as tar:
            tar.add(root, arcname=".")
        partial.chmod(0o644)  # readable by a user who is not root: it holds no secret
        partial.replace(cached)  # whole or not at all


__all__ = ["debian_mirror", "host_problem", "make_debian_image", "sources_of"]
