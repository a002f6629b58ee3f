"""A ``docker build`` context assembled in memory, and the hash that says which of reglab's own
files an image was made from.

Every image reglab makes from its own files (a Dockerfile, a config file, a script) carries
:data:`SOURCE_LABEL`, the hash of those files: when they change, the image no longer matches
and ``reglab images`` makes it again (``reglab.images.build.image_current``).
"""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import docker

from reglab.base.errors import ImageError, docker_errors
from reglab.base.labels import BUILT_LABEL
from reglab.base.progress import ProgressCallback
from reglab.engine.transfer import follow

#: The hash of reglab's own files an image was made from.
SOURCE_LABEL = "org.reglab.source"


def source_digest(parts: Iterable[bytes]) -> str:
    """One hash over reglab's files that make an image, in a fixed order (one file: its
    sha256, the label the token and store images have always had)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()


def asset(name: str) -> bytes:
    """A file shipped in ``reglab/assets`` (the registry's config, hello.c)."""
    return resources.files("reglab").joinpath(f"assets/{name}").read_bytes()


def shared_libraries(binary: Path) -> list[Path]:
    """The shared libraries ``binary`` loads, as ldd reports them (none for a static binary)."""
    try:
        out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ImageError(
            "ldd is not installed, so the registry's libraries cannot be found",
            "install libc-bin (apt-get install libc-bin)",
        ) from None
    libs = []
    for line in out.stdout.splitlines():
        match = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if match:
            libs.append(Path(match.group(1)))
    return libs


class BuildContext:
    """A ``docker build`` context assembled in memory: a Dockerfile and the files it copies."""

    def __init__(self, dockerfile: bytes) -> None:
        self._buffer = io.BytesIO()
        # Closed by build(): the archive grows over several calls before it is sent.
        self._tar = tarfile.open(fileobj=self._buffer, mode="w")  # noqa: SIM115
        self.add_bytes(dockerfile, "Dockerfile")

    def add_bytes(self, data: bytes, arcname: str, mode: int = 0o644) -> None:
        info = tarfile.TarInfo(arcname)
        info.size, info.mode = len(data), mode
        self._tar.addfile(info, io.BytesIO(data))

    def add_file(self, source: Path, arcname: str, mode: int = 0o755) -> None:
        """Add a file's content (a symlink is followed: the image gets the real file)."""
        self.add_bytes(Path(source).read_bytes(), arcname, mode)

    def add_binary(self, binary: Path, arcname: str) -> None:
        """Add a program of this machine under ``rootfs/``, with the shared libraries it loads
        at their own paths: an image ``FROM scratch`` then runs it."""
        self.add_file(binary, f"rootfs/{arcname.lstrip('/')}")
        for lib in shared_libraries(binary):
            self.add_file(lib, f"rootfs{lib}")

    def add_symlink(self, arcname: str, target: str) -> None:
        info = tarfile.TarInfo(arcname)
        info.type, info.linkname = tarfile.SYMTYPE, target
        self._tar.addfile(info)

    def add_dir(self, arcname: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(arcname)
        info.type, info.mode = tarfile.DIRTYPE, mode
        self._tar.addfile(info)

    def build(
        self,
        client: docker.DockerClient,
        ref: str,
        progress: ProgressCallback | None = None,
        source: str | None = None,
    ) -> str:
        """Build the image ``ref`` (labelled as reglab's, and with ``source`` as its
        :data:`SOURCE_LABEL` when given); return ``ref``."""
        self._tar.close()
        labels = {BUILT_LABEL: "offline", **({SOURCE_LABEL: source} if source else {})}
        with docker_errors(
            f"build of {ref} failed",
            "check that the Docker engine is healthy ('docker info')",
            ImageError,
        ):
            stream = client.api.build(
                fileobj=io.BytesIO(self._buffer.getvalue()),
                custom_context=True,
                tag=ref,
                rm=True,
                forcerm=True,
                decode=True,
                labels=labels,
            )
            follow(stream, "build", ref, progress)
        return ref
