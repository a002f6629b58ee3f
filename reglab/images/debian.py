"""A Debian base image made on this machine with ``debootstrap``: for parts that need more than
one binary and its libraries (the token server needs Python and three of its packages).

Docker Hub is out of reach in a workshop room, so nothing is pulled: ``debootstrap`` installs a
minimal Debian 12 with the packages asked for, from the Debian mirror ``apt`` already uses, into
a folder; the folder becomes an image (``docker import``). It needs root (it makes device nodes
and runs ``chroot``) and about a minute, once.
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

SUITE = "bookworm"
APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str:
    """The Debian mirror ``apt`` uses here (deb822 ``URIs:``, else a classic ``deb`` line)."""
    for path in sources:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            found = re.match(r"\s*(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s*)?)(\S+)", line)
            if found:
                return found.group(1)
    raise ImageError(
        "no Debian mirror found in /etc/apt",
        "build on Debian, or load the images from a tarball: reglab images --load FILE.tar",
    )


#: Where a debootstrapped file system is kept as a tarball, so that another engine on this
#: machine (the test suite's second one) or a user who is not root imports it without root.
CACHE = Path("/var/cache/reglab/images")


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
    key = hashlib.sha256(f"{SUITE} {' '.join(sorted(packages))}".encode()).hexdigest()[:16]
    cached = CACHE / f"{ref.replace(':', '-').replace('/', '-')}-{key}.tar"
    shared = next(iter(sorted(CACHE.glob(f"*-{key}.tar"))), None) if CACHE.is_dir() else None
    if not cached.is_file() and shared is not None:
        cached = shared  # the same packages made for another image
    if not cached.is_file():
        _debootstrap(ref, packages, cached, timeout)
    with docker_errors(f"cannot import {ref}", error=ImageError):
        repository, _, tag = ref.rpartition(":")
        client.api.import_image_from_data(  # the archive becomes the image's file system
            cached.read_bytes(),
            repository=repository,
            tag=tag,
            changes=[f"LABEL {BUILT_LABEL}=debootstrap", *(changes or [])],
        )
    return ref


def _debootstrap(ref: str, packages: list[str], cached: Path, timeout: float) -> None:
    if shutil.which("debootstrap") is None:
        raise ImageError(
            f"debootstrap is needed to make {ref} offline",
            "install it (sudo apt-get install debootstrap), or load the images from a "
            "tarball: reglab images --load FILE.tar",
        )
    if os.geteuid() != 0:
        raise ImageError(
            f"making {ref} with debootstrap needs root",
            "run 'sudo .venv/bin/reglab images' once (scripts/workshop does), or load the "
            "images from a tarball: reglab images --load FILE.tar",
        )
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="reglab-debootstrap-") as tmp:
        root = Path(tmp) / "rootfs"
        command = [
            "debootstrap", "--variant=minbase", f"--include={','.join(packages)}",
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
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):  # smaller image
            shutil.rmtree(root / leftover, ignore_errors=True)
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".partial")
        with tarfile.open(partial, mode="w") as tar:
            tar.add(root, arcname=".")
        partial.chmod(0o644)  # readable by a user who is not root: it holds no secret
        partial.replace(cached)  # whole or not at all


__all__ = ["debian_mirror", "make_debian_image"]
